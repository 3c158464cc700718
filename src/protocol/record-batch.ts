// RecordBatch v2 header codec (DefaultRecordBatch layout; protocol guide, "Record Batch").
// Pure: no I/O. The broker treats a batch as opaque bytes: it validates the header and CRC,
// rewrites only baseOffset and partitionLeaderEpoch (both outside the CRC, so the CRC stays
// valid), and never opens the records (which may be compressed).
//
//   baseOffset int64 @0 | batchLength int32 @8 | partitionLeaderEpoch int32 @12 | magic int8 @16
//   crc uint32 @17 (CRC-32C of bytes 21..end) | attributes int16 @21 | lastOffsetDelta int32 @23
//   baseTimestamp int64 @27 | maxTimestamp int64 @35 | producerId int64 @43
//   producerEpoch int16 @51 | baseSequence int32 @53 | recordCount int32 @57 | records @61

import { TidewayError } from '../errors.ts'
import { crc32c } from './crc32c.ts'

export const BATCH_HEADER_SIZE = 61
/** Bytes before the batchLength field's coverage starts (baseOffset + batchLength). */
export const LOG_OVERHEAD = 12
const CRC_START = 21

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

/** Reads the header of the batch starting at `at`; checks only that the header fits. */
export function readBatchHeader(buf: Buffer, at = 0): BatchHeader {
  if (at < 0 || at + BATCH_HEADER_SIZE > buf.length) {
    throw corrupt(`batch header needs ${BATCH_HEADER_SIZE} bytes at ${at}, ${buf.length - at} available`)
  }
  return {
    baseOffset: buf.readBigInt64BE(at),
    batchLength: buf.readInt32BE(at + 8),
    partitionLeaderEpoch: buf.readInt32BE(at + 12),
    magic: buf.readInt8(at + 16),
    crc: buf.readUInt32BE(at + 17),
    attributes: buf.readInt16BE(at + 21),
    lastOffsetDelta: buf.readInt32BE(at + 23),
    baseTimestamp: buf.readBigInt64BE(at + 27),
    maxTimestamp: buf.readBigInt64BE(at + 35),
    producerId: buf.readBigInt64BE(at + 43),
    producerEpoch: buf.readInt16BE(at + 51),
    baseSequence: buf.readInt32BE(at + 53),
    recordCount: buf.readInt32BE(at + 57),
  }
}

/** Full check of one whole batch: length field, magic 2, record count, CRC-32C. */
export function validateBatch(batch: Buffer): BatchHeader {
  const header = readBatchHeader(batch)
  if (header.batchLength !== batch.length - LOG_OVERHEAD) {
    throw corrupt(`batchLength ${header.batchLength} does not match ${batch.length - LOG_OVERHEAD} bytes`)
  }
  if (header.magic !== 2) throw corrupt(`magic ${header.magic} is not supported (only RecordBatch v2)`)
  if (header.recordCount <= 0 || header.recordCount !== header.lastOffsetDelta + 1) {
    throw corrupt(`recordCount ${header.recordCount} does not match lastOffsetDelta ${header.lastOffsetDelta}`)
  }
  const actual = crc32c(batch.subarray(CRC_START))
  if (actual !== header.crc) throw corrupt(`CRC-32C mismatch: stored ${header.crc}, computed ${actual}`)
  return header
}

/** Zero-copy views of each whole batch in a record set; a trailing partial batch is an error. */
export function splitBatches(records: Buffer): Buffer[] {
  const batches: Buffer[] = []
  let at = 0
  while (at < records.length) {
    if (at + LOG_OVERHEAD > records.length) throw corrupt(`${records.length - at} trailing bytes are not a batch`)
    const length = records.readInt32BE(at + 8)
    if (length < BATCH_HEADER_SIZE - LOG_OVERHEAD || at + LOG_OVERHEAD + length > records.length) {
      throw corrupt(`batch at ${at} declares ${length} bytes, ${records.length - at - LOG_OVERHEAD} available`)
    }
    batches.push(records.subarray(at, at + LOG_OVERHEAD + length))
    at += LOG_OVERHEAD + length
  }
  return batches
}

export function writeBaseOffset(batch: Buffer, offset: bigint): void {
  batch.writeBigInt64BE(offset, 0)
}

export function writePartitionLeaderEpoch(batch: Buffer, epoch: number): void {
  batch.writeInt32BE(epoch, 12)
}

export function lastOffsetOf(header: BatchHeader): bigint {
  return header.baseOffset + BigInt(header.lastOffsetDelta)
}

/** 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
export const compressionCodecOf = (attributes: number): number => attributes & 0x07
/** 0 CreateTime, 1 LogAppendTime. */
export const timestampTypeOf = (attributes: number): number => (attributes >> 3) & 1
export const isTransactionalBatch = (attributes: number): boolean => (attributes & 0x10) !== 0
export const isControlBatch = (attributes: number): boolean => (attributes & 0x20) !== 0
