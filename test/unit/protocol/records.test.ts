// Opening record batches (src/protocol/records.ts). For ListOffsets by time: record timestamps
// from plain record sections and each codec (gzip, snappy raw and xerial-framed, lz4 frame, zstd),
// timestamps out of order within a batch, and records that do not inflate or parse. For
// idempotency-key dedup: headers, rewritten batches with holes, markers, and refused records.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { gzipSync, zstdCompressSync } from 'node:zlib'
import { compressFrameSync } from 'lz4-napi'
import { compressSync as snappyCompress } from 'snappy'
import { isTidewayError } from '../../../src/errors.ts'
import { crc32c } from '../../../src/protocol/crc32c.ts'
import { BatchField, CompressionCodec, compressionCodecOf, isControlBatch, readBatchHeader, validateBatch } from '../../../src/protocol/record-batch.ts'
import { batchWithRecords, markerBatch, openProducedRecords, openRecords, recordTimes } from '../../../src/protocol/records.ts'
import { buildBatch, decodeRecords } from '../../helpers/batches.ts'

// Timestamps 5, 1, 9, 3 ms after the base: producers may stamp records out of order.
const deltas = [5, 1, 9, 3]
const plain = buildBatch(
  deltas.map((timestampDelta, i) => ({ key: `k${i}`, value: 'v'.repeat(i * 50), headers: { h: String(i) }, timestampDelta })),
  { baseTimestamp: 1_000n },
)
const expected = deltas.map((d, offsetDelta) => ({ offsetDelta, timestamp: 1_000n + BigInt(d) }))

/** The same batch with its record section compressed and the codec set in the attributes. */
function compressed(codec: number, compress: (b: Buffer) => Buffer) {
  const batch = Buffer.concat([plain.batch.subarray(0, BatchField.records), compress(plain.batch.subarray(BatchField.records))])
  batch.writeInt16BE(codec, BatchField.attributes)
  return { batch, header: readBatchHeader(batch) }
}

test('record offsets and timestamps come out of an uncompressed batch in offset order', async () => {
  assert.deepEqual(await recordTimes(plain.batch, plain.header), expected)
})

/** Java clients' snappy: the xerial magic and versions, then length-prefixed raw snappy blocks. */
function xerialSnappy(data: Buffer): Buffer {
  const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1])
  const half = Math.floor(data.length / 2)
  const blocks = [data.subarray(0, half), data.subarray(half)].map((part) => {
    const block = snappyCompress(part)
    const length = Buffer.alloc(4)
    length.writeInt32BE(block.length)
    return Buffer.concat([length, block])
  })
  return Buffer.concat([header, ...blocks])
}

test('each codec\'s record section is inflated first', async () => {
  const codecs: [string, number, (b: Buffer) => Buffer][] = [
    ['gzip', CompressionCodec.gzip, gzipSync],
    ['snappy (raw, librdkafka)', CompressionCodec.snappy, (b) => snappyCompress(b)],
    ['snappy (xerial framing, Java)', CompressionCodec.snappy, xerialSnappy],
    ['lz4 frame', CompressionCodec.lz4, (b) => compressFrameSync(b)],
    ['zstd', CompressionCodec.zstd, zstdCompressSync],
  ]
  for (const [name, codec, compress] of codecs) {
    const { batch, header } = compressed(codec, compress)
    assert.deepEqual(await recordTimes(batch, header), expected, name)
  }
})

test('records that do not inflate or parse are TIDEWAY_ERR_DECODE', async () => {
  const isDecodeError = (err: unknown) => isTidewayError(err, 'TIDEWAY_ERR_DECODE')
  const garbage = compressed(CompressionCodec.lz4, () => Buffer.from('not lz4 at all'))
  await assert.rejects(recordTimes(garbage.batch, garbage.header), isDecodeError)
  const unknownCodec = compressed(5, (b) => b)
  await assert.rejects(recordTimes(unknownCodec.batch, unknownCodec.header), isDecodeError)
  const truncated = plain.batch.subarray(0, BatchField.records + 5)
  await assert.rejects(recordTimes(truncated, plain.header), isDecodeError)
})

// Opening records for idempotency-key dedup, and the two shapes written when records are dropped.

const keyed = buildBatch(
  ['a', 'b', 'c', 'd'].map((k, i) => ({ key: k, value: `value-${k}`, headers: { 'idempotency-key': `key-${k}`, other: 'x' }, timestampDelta: [3, 7, 1, 4][i] })),
  { baseTimestamp: 5_000n, producerId: 9n, producerEpoch: 2, baseSequence: 40 },
)
const IDEMPOTENCY_KEY = Buffer.from('idempotency-key')

test('each record is split out whole, with its offset delta, timestamp delta and headers', async () => {
  const records = await openRecords(keyed.batch, keyed.header, IDEMPOTENCY_KEY)
  assert.deepEqual(records.map((r) => r.offsetDelta), [0, 1, 2, 3])
  assert.deepEqual(records.map((r) => r.timestampDelta), [3n, 7n, 1n, 4n])
  assert.deepEqual(records.map((r) => r.headerValue?.toString()), ['key-a', 'key-b', 'key-c', 'key-d'])
  assert.equal((await openRecords(keyed.batch, keyed.header, Buffer.from('missing')))[0]!.headerValue, undefined)
  assert.equal((await openRecords(keyed.batch, keyed.header))[0]!.headerValue, undefined, 'no header asked for')
  assert.equal(Buffer.concat(records.map((r) => r.bytes)).length, keyed.batch.length - BatchField.records, 'the records cover the section exactly')
  const nullValued = buildBatch([{ value: 'v', headers: {} }])
  assert.equal((await openRecords(nullValued.batch, nullValued.header, IDEMPOTENCY_KEY))[0]!.headerValue, undefined)
})

test('a rewritten batch keeps its offset range, producer fields and codec, and only the kept records', async () => {
  const codecs: [string, number, (b: Buffer) => Buffer][] = [
    ['none', CompressionCodec.none, (b) => b],
    ['gzip', CompressionCodec.gzip, gzipSync],
    ['snappy', CompressionCodec.snappy, (b) => snappyCompress(b)],
    ['lz4', CompressionCodec.lz4, (b) => compressFrameSync(b)],
    ['zstd', CompressionCodec.zstd, zstdCompressSync],
  ]
  for (const [name, codec, compress] of codecs) {
    const source = Buffer.concat([keyed.batch.subarray(0, BatchField.records), compress(keyed.batch.subarray(BatchField.records))])
    source.writeInt16BE(codec, BatchField.attributes)
    source.writeInt32BE(source.length - 12, BatchField.batchLength)
    source.writeUInt32BE(crc32c(source.subarray(BatchField.attributes)), BatchField.crc)
    const header = validateBatch(source)
    const records = await openRecords(source, header)
    const rewritten = await batchWithRecords(source, header, [records[1]!, records[3]!])
    const h = validateBatch(rewritten, 'log')
    assert.throws(() => validateBatch(rewritten), /does not equal lastOffsetDelta/, `${name}: holes are a log shape, not a producer's`)
    assert.equal(compressionCodecOf(h.attributes), codec, name)
    assert.deepEqual(
      { lastOffsetDelta: h.lastOffsetDelta, recordCount: h.recordCount, producerId: h.producerId, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence, baseTimestamp: h.baseTimestamp, maxTimestamp: h.maxTimestamp },
      { lastOffsetDelta: 3, recordCount: 2, producerId: 9n, producerEpoch: 2, baseSequence: 40, baseTimestamp: 5_000n, maxTimestamp: 5_007n },
      name,
    )
    const kept = await openRecords(rewritten, h, IDEMPOTENCY_KEY)
    assert.deepEqual(kept.map((r) => r.offsetDelta), [1, 3], name)
    assert.deepEqual(kept.map((r) => r.headerValue?.toString()), ['key-b', 'key-d'], name)
  }
})

test('a marker stands in for a batch with no record kept: a control batch with the same range and one COMMIT record at its end', async () => {
  const marker = markerBatch({ ...keyed.header, baseOffset: 100n })
  const h = validateBatch(marker, 'log')
  assert.ok(isControlBatch(h.attributes))
  assert.deepEqual(
    { baseOffset: h.baseOffset, lastOffsetDelta: h.lastOffsetDelta, recordCount: h.recordCount, producerId: h.producerId, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence, codec: compressionCodecOf(h.attributes) },
    { baseOffset: 100n, lastOffsetDelta: 3, recordCount: 1, producerId: 9n, producerEpoch: 2, baseSequence: 40, codec: CompressionCodec.none },
  )
  const [record] = decodeRecords(marker)
  assert.equal(record!.offset, 103n, 'the control record sits at the last offset, so clients move past the whole range')
  assert.deepEqual(record!.key, Buffer.from([0, 0, 0, 1]), 'control key: version 0, type COMMIT')
  assert.deepEqual(record!.value, Buffer.from([0, 0, 0, 0, 0, 0]), 'value: version 0, coordinator epoch 0')
})

test('a producer batch to act on must decode and count its offset deltas 0, 1, 2, ...', async () => {
  const isInvalidRecord = (err: unknown) => isTidewayError(err, 'TIDEWAY_ERR_INVALID_RECORD')
  assert.equal((await openProducedRecords(keyed.batch, keyed.header)).length, 4)
  const skipped = Buffer.from(keyed.batch)
  // The second record's offset delta (varint 1 = 0x02) sits after its length, attributes and
  // timestamp delta; make it 2 (0x04).
  const second = (await openRecords(keyed.batch, keyed.header))[1]!
  const at = BatchField.records + second.bytes.byteOffset - keyed.batch.subarray(BatchField.records).byteOffset + 3
  assert.equal(skipped[at], 0x02)
  skipped[at] = 0x04
  await assert.rejects(openProducedRecords(skipped, keyed.header), isInvalidRecord)
  const garbage = compressed(CompressionCodec.gzip, () => Buffer.from('not gzip'))
  await assert.rejects(openProducedRecords(garbage.batch, garbage.header), isInvalidRecord)
  const badHeader = Buffer.from(keyed.batch)
  badHeader.writeInt32BE(keyed.header.recordCount + 1, BatchField.recordCount)
  await assert.rejects(openProducedRecords(badHeader, readBatchHeader(badHeader)), isInvalidRecord)
})
