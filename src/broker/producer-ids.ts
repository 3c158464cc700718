// Producer ids for idempotent producers (InitProducerId). An id must never be handed out twice,
// not even across a crash: a second producer with a used id would have its batches taken for the
// first one's retries. Ids are reserved in blocks: `<dataDir>/producer-ids.json` records the end
// of the reserved range and is rewritten durably before any id of a new block is given out, so
// a restart (clean or not) starts after everything that may have been used. A crash wastes at
// most the rest of one block.

import { writeFileDurably, type FileIO } from '../storage/file-io.ts'
import { TidewayError } from '../errors.ts'

const FILE = 'producer-ids.json'
const BLOCK = 1000n

export class ProducerIdAllocator {
  readonly #io: FileIO
  readonly #dataDir: string
  #next: bigint
  #reservedEnd: bigint
  /** Serializes reservations, so concurrent requests never share or skip a block. */
  #tail: Promise<unknown> = Promise.resolve()

  private constructor(io: FileIO, dataDir: string, reservedEnd: bigint) {
    this.#io = io
    this.#dataDir = dataDir
    this.#next = reservedEnd
    this.#reservedEnd = reservedEnd
  }

  static async open(io: FileIO, dataDir: string): Promise<ProducerIdAllocator> {
    const path = `${dataDir}/${FILE}`
    let reservedEnd = 0n
    if (await io.exists(path)) {
      const text = (await io.readFile(path)).toString('utf8')
      const parsed = JSON.parse(text) as { reservedEnd?: unknown }
      if (typeof parsed.reservedEnd !== 'string' || !/^\d+$/.test(parsed.reservedEnd)) {
        throw new TidewayError('TIDEWAY_ERR_CONFIG', `${path} does not hold a reserved producer id range: ${text.slice(0, 200)}`)
      }
      reservedEnd = BigInt(parsed.reservedEnd)
    }
    return new ProducerIdAllocator(io, dataDir, reservedEnd)
  }

  /** A producer id no one has had before; resolves once that is durable. */
  next(): Promise<bigint> {
    const result = this.#tail.then(async () => {
      if (this.#next >= this.#reservedEnd) {
        const end = this.#next + BLOCK
        await writeFileDurably(this.#io, this.#dataDir, FILE, Buffer.from(JSON.stringify({ reservedEnd: end.toString() }) + '\n'))
        this.#reservedEnd = end
      }
      return this.#next++
    })
    this.#tail = result.catch(() => {})
    return result
  }
}
