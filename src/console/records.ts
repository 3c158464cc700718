// Reading a partition's records for the console, straight from the log: whole batches from an
// offset, opened (inflated, split) with the broker's own record codec, each record's key, value
// and headers cut out, in the shape `tideway consume` gives them (so dlq-plan reads them too). Control batches (transaction markers, the markers of batches whose every
// record was removed) hold no records to show and are stepped over; a batch whose records do not
// open is reported in their place, so one bad batch does not hide the rest of the partition.

import type { ConsumedRecord } from '../cli/consume-plan.ts'
import type { PartitionLog } from '../storage/partition-log.ts'
import { Reader } from '../protocol/primitives.ts'
import { openRecords, type RecordView } from '../protocol/records.ts'
import { isControlBatch, LOG_OVERHEAD, lastOffsetOf, readBatchHeader, TimestampType, timestampTypeOf } from '../protocol/record-batch.ts'

export interface UnreadableBatch {
  readonly offset: bigint
  readonly lastOffset: bigint
  readonly error: string
}

export interface RecordPage {
  readonly records: (ConsumedRecord | UnreadableBatch)[]
  /** Where the next page starts: the offset after the last one returned (or looked at). */
  readonly next: bigint
}

/** Bytes asked of the log per read; the log returns one batch whole however large it is. */
const READ_BYTES = 1024 * 1024

/**
 * Up to `limit` records from `from` (clamped into the log), stopping early once `budgetBytes` of
 * keys, values and headers are held, so that a page of large records stays bounded too.
 */
export async function readRecordPage(log: PartitionLog, from: bigint, limit: number, budgetBytes: number): Promise<RecordPage> {
  const start = from < log.logStartOffset ? log.logStartOffset : from > log.highWatermark ? log.highWatermark : from
  const records: (ConsumedRecord | UnreadableBatch)[] = []
  let offset = start
  let held = 0
  while (records.length < limit && held < budgetBytes && offset < log.highWatermark) {
    const { records: chunk } = await log.read(offset, READ_BYTES)
    if (chunk.length === 0) break
    const before = offset
    for (let at = 0; at < chunk.length && records.length < limit && held < budgetBytes; ) {
      const header = readBatchHeader(chunk, at)
      const batch = chunk.subarray(at, at + LOG_OVERHEAD + header.batchLength)
      at += batch.length
      const lastOffset = lastOffsetOf(header)
      if (lastOffset < offset) continue
      if (isControlBatch(header.attributes)) {
        offset = lastOffset + 1n
        continue
      }
      let views: RecordView[]
      try {
        views = await openRecords(batch, header)
      } catch (err) {
        records.push({ offset: header.baseOffset, lastOffset, error: err instanceof Error ? err.message : String(err) })
        offset = lastOffset + 1n
        continue
      }
      const logAppendTime = timestampTypeOf(header.attributes) === TimestampType.logAppendTime
      for (const view of views) {
        const recordOffset = header.baseOffset + BigInt(view.offsetDelta)
        if (recordOffset < offset) continue
        const record = decodeRecord(log, view, recordOffset, logAppendTime ? header.maxTimestamp : header.baseTimestamp + view.timestampDelta)
        records.push(record)
        held += view.bytes.length
        offset = recordOffset + 1n
        if (records.length >= limit || held >= budgetBytes) break
      }
      if (records.length < limit && held < budgetBytes) offset = lastOffset + 1n
    }
    if (offset === before) break // nothing past `offset` in what the log returned: never spin
  }
  return { records, next: offset }
}

/** Key, value and headers of one record; openRecords has already checked its layout. */
function decodeRecord(log: PartitionLog, view: RecordView, offset: bigint, timestamp: bigint): ConsumedRecord {
  const r = new Reader(view.bytes)
  r.varint() // length
  r.int8() // attributes
  r.varlong() // timestamp delta
  r.varint() // offset delta
  const bytes = () => {
    const length = r.varint()
    return length < 0 ? null : r.bytes(length)
  }
  const key = bytes()
  const value = bytes()
  const headers: [Buffer, Buffer | null][] = []
  for (let count = r.varint(); count > 0; count--) headers.push([r.bytes(r.varint()), bytes()])
  return { topic: log.topic, partition: log.partition, offset, timestamp, key, value, headers }
}
