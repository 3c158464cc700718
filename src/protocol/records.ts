// The records inside a RecordBatch v2 (protocol guide, "Record"), for the few places the broker
// opens a batch: ListOffsets by time (timestamps) and idempotency-key dedup (headers). Pure apart
// from the codecs' async inflate/deflate (compression.ts); never on the plain produce or fetch
// path, where batches stay opaque.
//
//   Record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
//           key varint-bytes, value varint-bytes, headers [count varint; key varint-string,
//           value varint-bytes (-1 = null)]
//
// Every read is bounds-checked and fails with TIDEWAY_ERR_DECODE, so a client's garbage is
// ordinary input. Two batch shapes are written here, both the shapes Kafka's own log cleaner
// leaves behind, so every client already reads them:
// - a batch with some records removed keeps its header's offset range (lastOffsetDelta, producer
//   sequence range) and the survivors keep their offset deltas: the removed records leave holes
//   that consumers step over (librdkafka and platformatic advance by lastOffsetDelta, KAFKA-5443);
// - a marker for a batch whose every record was removed: a control batch (bit 5, and bit 4 as on
//   every Kafka control batch) holding one COMMIT control record at the last offset delta. Every
//   client skips control records and moves past them, and the header keeps the producer's
//   sequence range, so an idempotent producer's next batch still follows on (research
//   kafka-protocol.md §2.3). A header-only empty batch would do the same for the producer, but
//   KafkaJS never moves its position past an empty batch at the end of a partition: it would
//   fetch it again and again.

import { TidewayError } from '../errors.ts'
import { crc32c } from './crc32c.ts'
import { deflateRecords, inflateRecords } from './compression.ts'
import { decodeError, Reader, Writer } from './primitives.ts'
import { BatchField, CompressionCodec, compressionCodecOf, LOG_OVERHEAD, type BatchHeader } from './record-batch.ts'

export interface RecordView {
  readonly offsetDelta: number
  readonly timestampDelta: bigint
  /** The whole record, its length prefix included: a view of the (inflated) record section. */
  readonly bytes: Buffer
  /**
   * The value of the header the records were opened for (its first occurrence): undefined when
   * the record has none, null when its value is null. Names are compared as bytes.
   */
  readonly headerValue: Buffer | null | undefined
}

export interface RecordTime {
  readonly offsetDelta: number
  readonly timestamp: bigint
}

/** The uncompressed record section of one whole batch (header included in `batch`). */
export function recordSection(batch: Buffer, header: BatchHeader): Promise<Buffer> {
  return inflateRecords(compressionCodecOf(header.attributes), batch.subarray(BatchField.records))
}

/**
 * Splits an uncompressed record section into its `count` records, checking each record's layout
 * down to its headers, and picking out the value of the header `headerName`. Throws
 * TIDEWAY_ERR_DECODE when a field runs past its record or the section, a header key is null, or
 * bytes are left over.
 */
export function parseRecords(section: Buffer, count: number, headerName?: Buffer): RecordView[] {
  const reader = new Reader(section)
  const records: RecordView[] = []
  for (let i = 0; i < count; i++) {
    const start = reader.pos
    const length = reader.varint()
    if (length < 0) throw decodeError(`record ${i} declares a negative length ${length}`)
    const body = reader.sub(length, `record ${i}`)
    body.int8() // attributes: unused in v2
    const timestampDelta = body.varlong()
    const offsetDelta = body.varint()
    skipBytes(body, 'key')
    skipBytes(body, 'value')
    let headerValue: Buffer | null | undefined
    const headerCount = body.checkedCount(body.varint(), 2, `record ${i} header count`)
    for (let h = 0; h < headerCount; h++) {
      const keyLength = body.varint()
      if (keyLength < 0) throw decodeError(`record ${i} header ${h} has a null key`)
      body.need(keyLength, 'header key')
      // Compared in place: no view is made of a header that is not the one asked for.
      const wanted = headerValue === undefined && headerName !== undefined && keyLength === headerName.length && headerName.compare(section, body.pos, body.pos + keyLength) === 0
      body.pos += keyLength
      const valueLength = body.varint()
      if (valueLength >= 0) body.need(valueLength, 'header value')
      if (wanted) headerValue = valueLength < 0 ? null : section.subarray(body.pos, body.pos + valueLength)
      if (valueLength > 0) body.pos += valueLength
    }
    if (body.remaining > 0) throw decodeError(`record ${i} has ${body.remaining} bytes after its headers`)
    records.push({ offsetDelta, timestampDelta, bytes: section.subarray(start, body.end), headerValue })
  }
  if (reader.remaining > 0) throw decodeError(`${reader.remaining} bytes follow the batch's ${count} records`)
  return records
}

/** Opens a batch: inflates and splits its records (see parseRecords). */
export async function openRecords(batch: Buffer, header: BatchHeader, headerName?: Buffer): Promise<RecordView[]> {
  return parseRecords(await recordSection(batch, header), header.recordCount, headerName)
}

/**
 * Opens a batch a producer sent, for the broker to act on its records: they must inflate and
 * parse, and their offset deltas must be 0, 1, 2, ... as a producer writes them. Anything else
 * is TIDEWAY_ERR_INVALID_RECORD (Kafka's INVALID_RECORD: the batch is refused whole).
 */
export async function openProducedRecords(batch: Buffer, header: BatchHeader, headerName?: Buffer): Promise<RecordView[]> {
  let records: RecordView[]
  try {
    records = await openRecords(batch, header, headerName)
  } catch (err) {
    throw new TidewayError('TIDEWAY_ERR_INVALID_RECORD', err instanceof Error ? err.message : String(err), { cause: err })
  }
  records.forEach((record, i) => {
    if (record.offsetDelta !== i) throw new TidewayError('TIDEWAY_ERR_INVALID_RECORD', `record ${i} has offset delta ${record.offsetDelta}`)
  })
  return records
}

/** Offset deltas and create-time timestamps of every record in a batch (ListOffsets by time). */
export async function recordTimes(batch: Buffer, header: BatchHeader): Promise<RecordTime[]> {
  return (await openRecords(batch, header)).map((r) => ({ offsetDelta: r.offsetDelta, timestamp: header.baseTimestamp + r.timestampDelta }))
}

function skipBytes(reader: Reader, what: string): void {
  const length = reader.varint()
  if (length >= 0) reader.skip(length, what)
}

/**
 * The batch without some of its records: same offset range, producer fields, attributes and
 * codec; the kept records (a non-empty subset of the original's, in order) are copied byte for
 * byte, recompressed, and the count, maxTimestamp and CRC are set anew. baseOffset and
 * partitionLeaderEpoch are the original's (the log assigns them).
 */
export async function batchWithRecords(original: Buffer, header: BatchHeader, kept: readonly RecordView[]): Promise<Buffer> {
  if (kept.length === 0) throw new RangeError('a rewritten batch keeps at least one record (write a marker instead)')
  const codec = compressionCodecOf(header.attributes)
  const section = await deflateRecords(codec, Buffer.concat(kept.map((r) => r.bytes)))
  let maxDelta = kept[0]!.timestampDelta
  for (const r of kept) if (r.timestampDelta > maxDelta) maxDelta = r.timestampDelta
  const batch = Buffer.allocUnsafe(BatchField.records + section.length)
  original.copy(batch, 0, 0, BatchField.records)
  section.copy(batch, BatchField.records)
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BatchField.batchLength)
  batch.writeBigInt64BE(header.baseTimestamp + maxDelta, BatchField.maxTimestamp)
  batch.writeInt32BE(kept.length, BatchField.recordCount)
  return sealCrc(batch)
}

const CONTROL_ATTRIBUTES = 0x20 | 0x10 // control, transactional (as every Kafka control batch)
const CONTROL_RECORD_VERSION = 0
const CONTROL_TYPE_COMMIT = 1

/**
 * A control batch standing in for `header`'s batch when none of its records is kept: the same
 * offset range, timestamps and producer fields, one COMMIT control record at the last offset
 * delta (key: version int16, type int16; value: version int16, coordinator epoch int32).
 */
export function markerBatch(header: BatchHeader): Buffer {
  const record = new Writer()
    .int8(0)
    .varlong(0n)
    .varint(header.lastOffsetDelta)
    .varint(4)
    .int16(CONTROL_RECORD_VERSION)
    .int16(CONTROL_TYPE_COMMIT)
    .varint(6)
    .int16(0)
    .int32(0)
    .varint(0)
    .toBuffer()
  const body = new Writer().varint(record.length).raw(record).toBuffer()
  const batch = Buffer.alloc(BatchField.records + body.length)
  batch.writeBigInt64BE(header.baseOffset, BatchField.baseOffset)
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BatchField.batchLength)
  batch.writeInt32BE(header.partitionLeaderEpoch, BatchField.partitionLeaderEpoch)
  batch.writeInt8(2, BatchField.magic)
  batch.writeInt16BE(CONTROL_ATTRIBUTES | CompressionCodec.none, BatchField.attributes)
  batch.writeInt32BE(header.lastOffsetDelta, BatchField.lastOffsetDelta)
  // Both timestamps the original's base: the record's delta is 0, and retention and the time
  // index judge the marker like the batch it replaces.
  batch.writeBigInt64BE(header.baseTimestamp, BatchField.baseTimestamp)
  batch.writeBigInt64BE(header.baseTimestamp, BatchField.maxTimestamp)
  batch.writeBigInt64BE(header.producerId, BatchField.producerId)
  batch.writeInt16BE(header.producerEpoch, BatchField.producerEpoch)
  batch.writeInt32BE(header.baseSequence, BatchField.baseSequence)
  batch.writeInt32BE(1, BatchField.recordCount)
  body.copy(batch, BatchField.records)
  return sealCrc(batch)
}

function sealCrc(batch: Buffer): Buffer {
  batch.writeUInt32BE(crc32c(batch.subarray(BatchField.attributes)), BatchField.crc)
  return batch
}
