// Where each record of a v2 batch sits in time, for ListOffsets by timestamp (protocol guide,
// "Record"): per record, its offset delta and timestamp. Only the fields before the key are
// read; the rest is skipped by the record's length. The broker opens batches only for this
// rare query, never on the produce or fetch path. Pure, except that compressed record sections
// are inflated with node:zlib (gzip, zstd); snappy and lz4 are not inflated here yet, and a
// caller falls back to the batch as a whole for them.

import { gunzip, zstdDecompress } from 'node:zlib'
import { promisify } from 'node:util'
import { Reader } from './primitives.ts'
import { BatchField, CompressionCodec, compressionCodecOf, type BatchHeader } from './record-batch.ts'

const inflaters: Partial<Record<number, (data: Buffer) => Promise<Buffer>>> = {
  [CompressionCodec.gzip]: promisify(gunzip),
  [CompressionCodec.zstd]: promisify(zstdDecompress),
}

export interface RecordTime {
  readonly offsetDelta: number
  readonly timestamp: bigint
}

/**
 * Offset deltas and create-time timestamps of every record in `batch` (one whole batch, header
 * included), or undefined when its codec is not one inflated here. Throws TIDEWAY_ERR_DECODE on
 * records that do not parse.
 */
export async function recordTimes(batch: Buffer, header: BatchHeader): Promise<RecordTime[] | undefined> {
  const section = batch.subarray(BatchField.records)
  const codec = compressionCodecOf(header.attributes)
  let records: Buffer
  if (codec === CompressionCodec.none) records = section
  else {
    const inflate = inflaters[codec]
    if (!inflate) return undefined
    records = await inflate(section)
  }
  const reader = new Reader(records)
  const times: RecordTime[] = []
  for (let i = 0; i < header.recordCount; i++) {
    const length = reader.varint()
    const end = reader.pos + length
    reader.int8() // attributes (unused)
    const timestampDelta = reader.varlong()
    const offsetDelta = reader.varint()
    times.push({ offsetDelta, timestamp: header.baseTimestamp + timestampDelta })
    reader.pos = end
  }
  return times
}
