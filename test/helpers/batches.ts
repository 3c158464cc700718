// Builds real RecordBatch v2 bytes (uncompressed records, correct CRC-32C) for tests that need
// batches without a client: the same layout a producer sends.
import { crc32c } from '../../src/protocol/crc32c.ts'
import { Writer } from '../../src/protocol/primitives.ts'
import { readBatchHeader, type BatchHeader } from '../../src/protocol/record-batch.ts'

export interface TestRecord {
  key?: string | null
  value: string | Buffer
  headers?: Record<string, string>
  timestampDelta?: number
}

export function buildBatch(
  records: TestRecord[],
  { baseTimestamp = 1_700_000_000_000n, producerId = -1n, producerEpoch = -1, baseSequence = -1 } = {},
): { batch: Buffer; header: BatchHeader } {
  const body = new Writer()
  let maxDelta = 0
  records.forEach((record, i) => {
    const r = new Writer()
    const delta = record.timestampDelta ?? i
    maxDelta = Math.max(maxDelta, delta)
    r.int8(0).varlong(BigInt(delta)).varint(i)
    if (record.key === undefined || record.key === null) r.varint(-1)
    else {
      const key = Buffer.from(record.key)
      r.varint(key.length).raw(key)
    }
    const value = Buffer.isBuffer(record.value) ? record.value : Buffer.from(record.value)
    r.varint(value.length).raw(value)
    const headers = Object.entries(record.headers ?? {})
    r.varint(headers.length)
    for (const [k, v] of headers) {
      const kb = Buffer.from(k)
      const vb = Buffer.from(v)
      r.varint(kb.length).raw(kb).varint(vb.length).raw(vb)
    }
    const encoded = r.toBuffer()
    body.varint(encoded.length).raw(encoded)
  })
  const payload = body.toBuffer()
  const afterCrc = new Writer()
  afterCrc
    .int16(0) // attributes: no compression, CreateTime
    .int32(records.length - 1)
    .int64(baseTimestamp)
    .int64(baseTimestamp + BigInt(maxDelta))
    .int64(producerId)
    .int16(producerEpoch)
    .int32(baseSequence)
    .int32(records.length)
    .raw(payload)
  const tail = afterCrc.toBuffer()
  const head = Buffer.alloc(21)
  head.writeBigInt64BE(0n, 0)
  head.writeInt32BE(9 + tail.length, 8) // partitionLeaderEpoch + magic + crc + tail
  head.writeInt32BE(-1, 12)
  head.writeInt8(2, 16)
  head.writeUInt32BE(crc32c(tail), 17)
  const batch = Buffer.concat([head, tail])
  return { batch, header: readBatchHeader(batch) }
}

/** Decodes the values of an uncompressed batch (enough for assertions). */
export function valuesOf(records: Buffer): string[] {
  const values: string[] = []
  let at = 0
  while (at < records.length) {
    const header = readBatchHeader(records, at)
    let p = at + 61
    const readVarint = () => {
      let result = 0
      let shift = 0
      for (;;) {
        const byte = records[p++]!
        result |= (byte & 0x7f) << shift
        if ((byte & 0x80) === 0) break
        shift += 7
      }
      return (result >>> 1) ^ -(result & 1)
    }
    for (let i = 0; i < header.recordCount; i++) {
      const length = readVarint()
      const end = p + length
      p += 1 // attributes
      readVarint() // timestamp delta (small in tests)
      readVarint() // offset delta
      const keyLength = readVarint()
      if (keyLength > 0) p += keyLength
      const valueLength = readVarint()
      values.push(records.toString('utf8', p, p + valueLength))
      p = end
    }
    at += 12 + header.batchLength
  }
  return values
}
