// Where each record of a v2 batch sits in time, for ListOffsets by timestamp (protocol guide,
// "Record"): per record, its offset delta and timestamp. Only the fields before the key are
// read; the rest is skipped by the record's length. The broker opens batches only for this
// rare query, never on the produce or fetch path. Compressed record sections are inflated first
// (compression.ts).

import { inflateRecords } from './compression.ts'
import { Reader } from './primitives.ts'
import { BatchField, compressionCodecOf, type BatchHeader } from './record-batch.ts'

export interface RecordTime {
  readonly offsetDelta: number
  readonly timestamp: bigint
}

/**
 * Offset deltas and create-time timestamps of every record in `batch` (one whole batch, header
 * included). Throws TIDEWAY_ERR_DECODE on records that do not inflate or parse.
 */
export async function recordTimes(batch: Buffer, header: BatchHeader): Promise<RecordTime[]> {
  const records = await inflateRecords(compressionCodecOf(header.attributes), batch.subarray(BatchField.records))
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
