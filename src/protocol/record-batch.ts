// RecordBatch v2 header codec (protocol guide, "Record Batch"; magic 2 only). Pure: no I/O.
//
// The broker treats a batch as opaque bytes: it validates the 61-byte header and the CRC,
// rewrites only baseOffset and partitionLeaderEpoch (both before the CRC-covered range, so the
// CRC stays valid), and does not open the records, which may be compressed: everything offset
// assignment, retention and fetching need is in the header (recordCount, lastOffsetDelta,
// timestamps, producer fields). Two features open records (records.ts): ListOffsets by time reads
// one batch's timestamps, and idempotency-key dedup reads the headers of topics that use it.
//
// Every read is bounds-checked and fails with TIDEWAY_ERR_CORRUPT_BATCH, the one error this
// module throws, so hostile bytes from a client or a torn file tail are ordinary input.

import { TidewayError } from '../errors.ts'
import { crc32c } from './crc32c.ts'

/** Byte offsets of the header fields, relative to the start of the batch. */
export const BatchField = {
  baseOffset: 0, // int64, assigned by the broker
  batchLength: 8, // int32, bytes after this field
  partitionLeaderEpoch: 12, // int32, assigned by the broker
  magic: 16, // int8, always 2
  crc: 17, // uint32, CRC-32C of bytes [attributes, end)
  attributes: 21, // int16
  lastOffsetDelta: 23, // int32
  baseTimestamp: 27, // int64
  maxTimestamp: 35, // int64
  producerId: 43, // int64, -1 when not idempotent
  producerEpoch: 51, // int16
  baseSequence: 53, // int32, -1 when not idempotent
  recordCount: 57, // int32
  records: 61, // the (possibly compressed) records
} as const

export const BATCH_HEADER_SIZE = BatchField.records
/** baseOffset + batchLength: the bytes a batch occupies beyond what batchLength counts. */
export const LOG_OVERHEAD = BatchField.partitionLeaderEpoch
const CRC_COVERS_FROM = BatchField.attributes
const MAGIC_V2 = 2

export interface BatchHeader {
  baseOffset: bigint
  batchLength: number
  partitionLeaderEpoch: number
  magic: number
  crc: number
  attributes: number
  lastOffsetDelta: number
  baseTimestamp: bigint
  maxTimestamp: bigint
  producerId: bigint
  producerEpoch: number
  baseSequence: number
  recordCount: number
}

function corrupt(detail: string): TidewayError {
  return new TidewayError('TIDEWAY_ERR_CORRUPT_BATCH', detail)
}

/** Reads the header of the batch starting at `at`. Checks only that the 61 header bytes exist. */
export function readBatchHeader(buf: Buffer, at = 0): BatchHeader {
  if (!Number.isInteger(at) || at < 0 || at + BATCH_HEADER_SIZE > buf.length) {
    throw corrupt(`a batch header needs ${BATCH_HEADER_SIZE} bytes at position ${at}, ${Math.max(0, buf.length - at)} remain`)
  }
  const f = BatchField
  return {
    baseOffset: buf.readBigInt64BE(at + f.baseOffset),
    batchLength: buf.readInt32BE(at + f.batchLength),
    partitionLeaderEpoch: buf.readInt32BE(at + f.partitionLeaderEpoch),
    magic: buf.readInt8(at + f.magic),
    crc: buf.readUInt32BE(at + f.crc),
    attributes: buf.readInt16BE(at + f.attributes),
    lastOffsetDelta: buf.readInt32BE(at + f.lastOffsetDelta),
    baseTimestamp: buf.readBigInt64BE(at + f.baseTimestamp),
    maxTimestamp: buf.readBigInt64BE(at + f.maxTimestamp),
    producerId: buf.readBigInt64BE(at + f.producerId),
    producerEpoch: buf.readInt16BE(at + f.producerEpoch),
    baseSequence: buf.readInt32BE(at + f.baseSequence),
    recordCount: buf.readInt32BE(at + f.recordCount),
  }
}

/**
 * Who wrote a batch. A producer's batch is dense: recordCount == lastOffsetDelta + 1 > 0. The log
 * may also hold batches with holes, 0 < recordCount <= lastOffsetDelta + 1, where idempotency-key
 * dedup removed records but kept the offset range (records.ts).
 */
export type BatchSource = 'producer' | 'log'

/**
 * The full check of exactly one batch, done on every client batch before append and on every
 * batch recovery re-reads: the length field covers the buffer, magic is 2, the codec is known,
 * the record count fits the offset range (see BatchSource), and the CRC-32C of bytes 21..end
 * matches.
 */
export function validateBatch(batch: Buffer, source: BatchSource = 'producer'): BatchHeader {
  const header = readBatchHeader(batch)
  if (header.batchLength !== batch.length - LOG_OVERHEAD) {
    throw corrupt(`batchLength field says ${header.batchLength} bytes but ${batch.length - LOG_OVERHEAD} follow it`)
  }
  if (header.magic !== MAGIC_V2) throw corrupt(`magic ${header.magic} is not supported (only RecordBatch v2)`)
  const codec = compressionCodecOf(header.attributes)
  if (codec > CompressionCodec.zstd) throw corrupt(`unknown compression codec ${codec} in attributes`)
  if (header.recordCount <= 0) throw corrupt(`recordCount ${header.recordCount} must be positive`)
  if (source === 'producer' && header.recordCount !== header.lastOffsetDelta + 1) {
    throw corrupt(`recordCount ${header.recordCount} does not equal lastOffsetDelta ${header.lastOffsetDelta} + 1`)
  }
  if (header.recordCount > header.lastOffsetDelta + 1) {
    throw corrupt(`recordCount ${header.recordCount} exceeds the ${header.lastOffsetDelta + 1} offsets of the batch`)
  }
  const computed = crc32c(batch.subarray(CRC_COVERS_FROM))
  if (computed !== header.crc) {
    throw corrupt(`CRC-32C mismatch: header says ${hex(header.crc)}, bytes give ${hex(computed)}`)
  }
  return header
}

/**
 * Zero-copy views of each whole batch in a record set (the `records` field of a Produce
 * request). Only lengths are checked here; validate each batch separately. A trailing partial
 * batch is an error: a producer never sends one.
 */
export function splitBatches(records: Buffer): Buffer[] {
  const batches: Buffer[] = []
  let at = 0
  while (at < records.length) {
    const remaining = records.length - at
    if (remaining < LOG_OVERHEAD) throw corrupt(`${remaining} trailing bytes at position ${at} are not a whole batch`)
    const length = records.readInt32BE(at + BatchField.batchLength)
    if (length < BATCH_HEADER_SIZE - LOG_OVERHEAD) {
      throw corrupt(`batch at position ${at} declares ${length} bytes, less than a header`)
    }
    if (LOG_OVERHEAD + length > remaining) {
      throw corrupt(`batch at position ${at} declares ${length} bytes but only ${remaining - LOG_OVERHEAD} remain`)
    }
    batches.push(records.subarray(at, at + LOG_OVERHEAD + length))
    at += LOG_OVERHEAD + length
  }
  return batches
}

export function writeBaseOffset(batch: Buffer, offset: bigint): void {
  batch.writeBigInt64BE(offset, BatchField.baseOffset)
}

export function writePartitionLeaderEpoch(batch: Buffer, epoch: number): void {
  batch.writeInt32BE(epoch, BatchField.partitionLeaderEpoch)
}

export function lastOffsetOf(header: Pick<BatchHeader, 'baseOffset' | 'lastOffsetDelta'>): bigint {
  return header.baseOffset + BigInt(header.lastOffsetDelta)
}

/** Attribute bits 0-2. */
export const CompressionCodec = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const
/** Attribute bit 3. */
export const TimestampType = { createTime: 0, logAppendTime: 1 } as const

export const compressionCodecOf = (attributes: number): number => attributes & 0x07
export const timestampTypeOf = (attributes: number): number => (attributes >> 3) & 1
/** Bit 4: the batch belongs to a transaction (KIP-98). */
export const isTransactionalBatch = (attributes: number): boolean => (attributes & 0x10) !== 0
/** Bit 5: a transaction marker written by the coordinator; clients may not produce one. */
export const isControlBatch = (attributes: number): boolean => (attributes & 0x20) !== 0

const hex = (n: number): string => '0x' + n.toString(16).padStart(8, '0')
