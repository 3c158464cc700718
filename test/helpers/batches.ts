// Builds real RecordBatch v2 bytes (uncompressed records with varint fields, correct CRC-32C),
// the layout a producer sends, and decodes them back for assertions. Written independently of
// src/protocol's primitives on purpose, so a codec bug there cannot hide in both directions.
import { crc32c } from '../../src/protocol/crc32c.ts'
import { readBatchHeader, type BatchHeader } from '../../src/protocol/record-batch.ts'

export interface TestRecord {
  key?: string | Buffer | null
  value: string | Buffer | null
  headers?: Record<string, string>
  /** Milliseconds after the batch's baseTimestamp; defaults to the record's index. */
  timestampDelta?: number
}

export interface BatchOptions {
  baseTimestamp?: bigint
  producerId?: bigint
  producerEpoch?: number
  baseSequence?: number
  /** Raw attributes (codec bits, timestamp type, transactional, control); records stay uncompressed. */
  attributes?: number
  baseOffset?: bigint
  partitionLeaderEpoch?: number
}

class Bytes {
  readonly #parts: Buffer[] = []
  #length = 0
  raw(b: Buffer): this {
    this.#parts.push(b)
    this.#length += b.length
    return this
  }
  int8(v: number): this {
    const b = Buffer.alloc(1)
    b.writeInt8(v)
    return this.raw(b)
  }
  int16(v: number): this {
    const b = Buffer.alloc(2)
    b.writeInt16BE(v)
    return this.raw(b)
  }
  int32(v: number): this {
    const b = Buffer.alloc(4)
    b.writeInt32BE(v)
    return this.raw(b)
  }
  int64(v: bigint): this {
    const b = Buffer.alloc(8)
    b.writeBigInt64BE(v)
    return this.raw(b)
  }
  /** Zigzag varint of up to 64 bits (varint and varlong share the encoding). */
  varlong(v: bigint): this {
    let z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n))
    const out: number[] = []
    while (z >= 0x80n) {
      out.push(Number(z & 0x7fn) | 0x80)
      z >>= 7n
    }
    out.push(Number(z))
    return this.raw(Buffer.from(out))
  }
  varint(v: number): this {
    return this.varlong(BigInt(v))
  }
  bytes(b: Buffer | null): this {
    return b === null ? this.varint(-1) : this.varint(b.length).raw(b)
  }
  get length(): number {
    return this.#length
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.#parts, this.#length)
  }
}

const toBuffer = (v: string | Buffer | null | undefined): Buffer | null =>
  v === null || v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v)

export function buildBatch(records: TestRecord[], options: BatchOptions = {}): { batch: Buffer; header: BatchHeader } {
  const { baseTimestamp = 1_700_000_000_000n, producerId = -1n, producerEpoch = -1, baseSequence = -1 } = options
  if (records.length === 0) throw new Error('a batch holds at least one record')
  const body = new Bytes()
  let maxDelta = 0
  records.forEach((record, i) => {
    const delta = record.timestampDelta ?? i
    maxDelta = Math.max(maxDelta, delta)
    const r = new Bytes().int8(0).varlong(BigInt(delta)).varint(i).bytes(toBuffer(record.key)).bytes(toBuffer(record.value))
    const headers = Object.entries(record.headers ?? {})
    r.varint(headers.length)
    for (const [k, v] of headers) r.bytes(Buffer.from(k)).bytes(Buffer.from(v))
    body.varint(r.length).raw(r.toBuffer())
  })
  const crcCovered = new Bytes()
    .int16(options.attributes ?? 0)
    .int32(records.length - 1) // lastOffsetDelta
    .int64(baseTimestamp)
    .int64(baseTimestamp + BigInt(maxDelta)) // maxTimestamp
    .int64(producerId)
    .int16(producerEpoch)
    .int32(baseSequence)
    .int32(records.length)
    .raw(body.toBuffer())
    .toBuffer()
  const batch = new Bytes()
    .int64(options.baseOffset ?? 0n)
    .int32(4 + 1 + 4 + crcCovered.length) // partitionLeaderEpoch + magic + crc + the rest
    .int32(options.partitionLeaderEpoch ?? -1)
    .int8(2)
    .int32(0) // crc, filled in below
    .raw(crcCovered)
    .toBuffer()
  batch.writeUInt32BE(crc32c(crcCovered), 17)
  return { batch, header: readBatchHeader(batch) }
}

export interface DecodedRecord {
  /** From a control batch (a transaction or dedup marker), which consumers skip. */
  control: boolean
  offset: bigint
  timestamp: bigint
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, string>
}

/** Decodes every record of a run of uncompressed batches. */
export function decodeRecords(records: Buffer): DecodedRecord[] {
  const out: DecodedRecord[] = []
  let at = 0
  while (at < records.length) {
    const header = readBatchHeader(records, at)
    let p = at + 61
    const varlong = (): bigint => {
      let z = 0n
      let shift = 0n
      for (;;) {
        const byte = records[p++]
        if (byte === undefined) throw new Error('record runs past the batch')
        z |= BigInt(byte & 0x7f) << shift
        if ((byte & 0x80) === 0) break
        shift += 7n
      }
      return (z >> 1n) ^ -(z & 1n)
    }
    const varint = () => Number(varlong())
    const bytes = (): Buffer | null => {
      const n = varint()
      if (n < 0) return null
      const b = records.subarray(p, p + n)
      p += n
      return b
    }
    for (let i = 0; i < header.recordCount; i++) {
      const length = varint()
      const end = p + length
      p += 1 // record attributes
      const timestamp = header.baseTimestamp + varlong()
      const offset = header.baseOffset + varlong()
      const key = bytes()
      const value = bytes()
      const headers: Record<string, string> = {}
      for (let h = varint(); h > 0; h--) headers[bytes()!.toString()] = bytes()?.toString() ?? ''
      out.push({ control: (header.attributes & 0x20) !== 0, offset, timestamp, key, value, headers })
      p = end
    }
    at += 12 + header.batchLength
  }
  return out
}

/** The values of a run of uncompressed batches, control records left out, as strings. */
export function valuesOf(records: Buffer): string[] {
  return decodeRecords(records)
    .filter((r) => !r.control)
    .map((r) => r.value?.toString('utf8') ?? '')
}

/** The offset after the last batch of a run of batches (where the next fetch starts). */
export function nextOffsetAfter(records: Buffer): bigint | undefined {
  let next: bigint | undefined
  for (let at = 0; at + 61 <= records.length; ) {
    const header = readBatchHeader(records, at)
    if (at + 12 + header.batchLength > records.length) break
    next = header.baseOffset + BigInt(header.lastOffsetDelta) + 1n
    at += 12 + header.batchLength
  }
  return next
}
