// A minimal Kafka-protocol client over a raw socket, for tests that must craft or inspect frames
// (bad input, exact response shapes). Real clients (kcat, KafkaJS, ...) cover normal use.
import { connect, type Socket } from 'node:net'
import { FrameSplitter } from '../../src/protocol/framing.ts'
import { readResponseHeader, responseHeaderIsFlexible, writeRequestHeader } from '../../src/protocol/headers.ts'
import { Reader, Writer } from '../../src/protocol/primitives.ts'
import type { Api, RequestInput, ResponseOf } from '../../src/protocol/schema.ts'
import { Fetch, ListOffsets } from '../../src/protocol/apis/index.ts'
import { decodeRecords, nextOffsetAfter, type DecodedRecord } from './batches.ts'

export class RawClient {
  readonly socket: Socket
  readonly #pending = new Map<number, (frame: Buffer) => void>()
  readonly #splitter = new FrameSplitter(256 * 1024 * 1024)
  #nextCorrelationId = 1
  readonly closed: Promise<void>
  /** Frames received that matched no pending request (e.g. answers to raw writes). */
  readonly unsolicited: Buffer[] = []

  private constructor(socket: Socket) {
    this.socket = socket
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.#splitter.push(chunk)) {
        const correlationId = frame.readInt32BE(0)
        const resolve = this.#pending.get(correlationId)
        if (resolve) {
          this.#pending.delete(correlationId)
          resolve(frame)
        } else this.unsolicited.push(frame)
      }
    })
  }

  static connect(bootstrap: string): Promise<RawClient> {
    const [host, port] = bootstrap.split(':')
    return new Promise((resolve, reject) => {
      const socket = connect({ host: host!, port: Number(port) }, () => resolve(new RawClient(socket)))
      socket.once('error', reject)
    })
  }

  get isClosed(): boolean {
    return this.socket.destroyed
  }

  async request<A extends Api>(api: A, version: number, body: RequestInput<A>, timeoutMs = 10_000): Promise<ResponseOf<A>> {
    const correlationId = this.#nextCorrelationId++
    const w = new Writer()
    w.int32(0)
    writeRequestHeader(w, { apiKey: api.key, apiVersion: version, correlationId, clientId: 'raw-client' }, api.isFlexible(version))
    api.encodeRequest(version, w, body as never)
    const frame = w.toBuffer()
    frame.writeInt32BE(frame.length - 4, 0)
    const response = await this.#await(correlationId, timeoutMs, () => this.socket.write(frame))
    const r = new Reader(response)
    readResponseHeader(r, responseHeaderIsFlexible(api.key, api.isFlexible(version)))
    return api.decodeResponse(version, r) as ResponseOf<A>
  }

  /** Sends a hand-made frame (size prefix included) and returns the raw answer, if any. */
  rawRequest(correlationId: number, bytes: Buffer, timeoutMs = 10_000): Promise<Buffer> {
    return this.#await(correlationId, timeoutMs, () => this.socket.write(bytes))
  }

  #await(correlationId: number, timeoutMs: number, send: () => void): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(correlationId)
        reject(new Error(`no response to correlation id ${correlationId} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(correlationId, (frame) => {
        clearTimeout(timer)
        resolve(frame)
      })
      this.closed.then(() => {
        if (this.#pending.delete(correlationId)) {
          clearTimeout(timer)
          reject(new Error('connection closed before the response'))
        }
      })
      send()
    })
  }

  /** Resolves true if the broker closes the connection within the timeout. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))
    const result = await Promise.race([this.closed.then(() => true), timeout])
    clearTimeout(timer)
    return result
  }

  close(): void {
    this.socket.destroy()
  }
}

/**
 * Every record stored in one partition (uncompressed batches), control records left out, in
 * offset order, read with Fetch v11 from `from` (default 0). Steps over holes by each batch's
 * offset range.
 */
export async function partitionRecords(client: RawClient, topic: string, partition: number, from = 0n): Promise<DecodedRecord[]> {
  const records: DecodedRecord[] = []
  for (let offset = from; ; ) {
    const response = await client.request(Fetch, 11, {
      maxWaitMs: 0,
      minBytes: 0,
      topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [],
    })
    const bytes = response.responses[0]!.partitions[0]!.records ?? Buffer.alloc(0)
    const next = nextOffsetAfter(bytes)
    if (next === undefined) return records
    records.push(...decodeRecords(bytes).filter((r) => !r.control && r.offset >= offset))
    offset = next
  }
}

/** The values of partitionRecords, as strings. */
export async function partitionValues(client: RawClient, topic: string, partition: number): Promise<string[]> {
  return (await partitionRecords(client, topic, partition)).map((r) => r.value?.toString('utf8') ?? '')
}

/** The partition's log start offset, as ListOffsets v5 (earliest) answers it. */
export async function logStartOffset(client: RawClient, topic: string, partition = 0): Promise<bigint> {
  const response = await client.request(ListOffsets, 5, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp: -2n }] }],
  })
  return response.topics[0]!.partitions[0]!.offset
}
