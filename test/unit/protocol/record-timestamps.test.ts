// Reading record timestamps out of a batch, for ListOffsets by time: plain, gzip and zstd record
// sections, timestamps out of order within a batch, and codecs not inflated here.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { gzipSync, zstdCompressSync } from 'node:zlib'
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

test('gzip and zstd record sections are inflated first', async () => {
  for (const [codec, compress] of [[CompressionCodec.gzip, gzipSync], [CompressionCodec.zstd, zstdCompressSync]] as const) {
    const { batch, header } = compressed(codec, compress)
    assert.deepEqual(await recordTimes(batch, header), expected, `codec ${codec}`)
  }
})

test('codecs not inflated here give undefined; records that do not parse throw', async () => {
  const snappy = compressed(CompressionCodec.snappy, (b) => b)
  assert.equal(await recordTimes(snappy.batch, snappy.header), undefined)
  const truncated = plain.batch.subarray(0, BatchField.records + 5)
  await assert.rejects(recordTimes(truncated, plain.header))
})
