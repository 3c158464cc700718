// Reading record timestamps out of a batch, for ListOffsets by time: plain record sections and
// each codec (gzip, snappy raw and xerial-framed, lz4 frame, zstd), timestamps out of order
// within a batch, and records that do not inflate or parse.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { gzipSync, zstdCompressSync } from 'node:zlib'
import { compressFrameSync } from 'lz4-napi'
import { compressSync as snappyCompress } from 'snappy'
import { isTidewayError } from '../../../src/errors.ts'
import { BatchField, CompressionCodec, readBatchHeader } from '../../../src/protocol/record-batch.ts'
import { recordTimes } from '../../../src/protocol/record-timestamps.ts'
import { buildBatch } from '../../helpers/batches.ts'

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
