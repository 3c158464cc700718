// The compaction keep rule (src/storage/cleaner.ts), pure: the last record of a key wins,
// tombstones stay until delete.retention.ms, keyless and superseded records go, batches that
// must stay become markers, and a rewritten batch keeps its offsets, producer fields and codec
// (every codec: none, gzip, snappy, lz4, zstd) with a correct CRC-32C.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { crc32c } from '../../../src/protocol/crc32c.ts'
import { deflateRecords } from '../../../src/protocol/compression.ts'
import { CompressionCodec, compressionCodecOf, isControlBatch, readBatchHeader, validateBatch } from '../../../src/protocol/record-batch.ts'
import { batchWithRecords, markerBatch, openRecords } from '../../../src/protocol/records.ts'
import { groupSegments, hasRecordWithoutKey, keyAndValueOf, keyName, LatestOffsets, planBatch, recordsForCleaning } from '../../../src/storage/cleaner.ts'
import { buildBatch, type BatchOptions, type TestRecord } from '../../helpers/batches.ts'

const T0 = 1_700_000_000_000n

/** A batch of `records` at `baseOffset`, its record section compressed with `codec`. */
async function batchOf(records: TestRecord[], codec: number = CompressionCodec.none, options: BatchOptions = {}) {
  const { batch } = buildBatch(records, { baseTimestamp: T0, ...options })
  if (codec === CompressionCodec.none) return { batch, header: readBatchHeader(batch) }
  const section = await deflateRecords(codec, batch.subarray(61))
  const out = Buffer.concat([batch.subarray(0, 61), section])
  out.writeInt32BE(out.length - 12, 8)
  out.writeInt16BE(codec, 21)
  out.writeUInt32BE(crc32c(out.subarray(21)), 17)
  return { batch: out, header: validateBatch(out) }
}

test('the last record of each key wins by offset, across batches', async () => {
  const first = await batchOf([{ key: 'a', value: 'a1' }, { key: 'b', value: 'b1' }], CompressionCodec.none, { baseOffset: 0n })
  const second = await batchOf([{ key: 'a', value: 'a2' }, { key: 'c', value: 'c1' }], CompressionCodec.none, { baseOffset: 2n })
  const r1 = (await recordsForCleaning(first.batch, first.header))!
  const r2 = (await recordsForCleaning(second.batch, second.header))!
  const latest = new LatestOffsets()
  latest.observe(r1)
  latest.observe(r2)
  assert.equal(latest.size, 3)
  assert.equal(latest.get('a'), 2)
  const plan = planBatch(r1, latest, 0, false)
  assert.equal(plan.kind, 'rewrite')
  assert.deepEqual(plan.kind === 'rewrite' && plan.kept.map((v) => v.offsetDelta), [1], 'b1 stays, a1 is superseded')
  assert.equal(planBatch(r2, latest, 0, false).kind, 'copy')
})

test('a record whose key the map does not hold is kept: the map covers only the dirty part of the log', async () => {
  const { batch, header } = await batchOf([{ key: 'old', value: 'v' }])
  assert.equal(planBatch((await recordsForCleaning(batch, header))!, new LatestOffsets(), 0, false).kind, 'copy')
})

test('a tombstone stays until its timestamp is delete.retention.ms old, then goes', async () => {
  const { batch, header } = await batchOf([{ key: 'k', value: null, timestampDelta: 0 }])
  const records = (await recordsForCleaning(batch, header))!
  assert.equal(records[0]!.tombstone, true)
  const latest = new LatestOffsets()
  latest.observe(records)
  assert.equal(planBatch(records, latest, Number(T0), false).kind, 'copy', 'exactly at the horizon: kept')
  assert.equal(planBatch(records, latest, Number(T0) + 1, false).kind, 'drop', 'older than the horizon: removed')
  assert.equal(planBatch(records, latest, Number(T0) + 1, true).kind, 'marker', 'a batch that must stay becomes a marker')
})

test('records without a key are removed, as Kafka does; an empty key is a key', async () => {
  const { batch, header } = await batchOf([{ value: 'no key' }, { key: '', value: 'empty key' }])
  assert.equal(await hasRecordWithoutKey(batch, header), true)
  const records = (await recordsForCleaning(batch, header))!
  assert.deepEqual(records.map((r) => r.key), [null, ''])
  const latest = new LatestOffsets()
  latest.observe(records)
  const plan = planBatch(records, latest, 0, false)
  assert.deepEqual(plan.kind === 'rewrite' && plan.kept.map((v) => v.offsetDelta), [1])
  const keyed = await batchOf([{ key: 'k', value: 'v' }])
  assert.equal(await hasRecordWithoutKey(keyed.batch, keyed.header), false)
})

test('control batches go unless they must stay, and then are copied as they are', async () => {
  const { header } = await batchOf([{ key: 'k', value: 'v' }], CompressionCodec.none, { producerId: 7n, producerEpoch: 0, baseSequence: 0 })
  const marker = markerBatch(header)
  const markerHeader = validateBatch(marker, 'log')
  assert.equal(await recordsForCleaning(marker, markerHeader), null)
  assert.equal(planBatch(null, new LatestOffsets(), 0, false).kind, 'drop')
  assert.equal(planBatch(null, new LatestOffsets(), 0, true).kind, 'copy')
})

test('long keys are named by a digest, distinct from any short key', () => {
  const long = Buffer.alloc(200, 'k')
  assert.ok(keyName(long).length > 64)
  assert.notEqual(keyName(long), keyName(Buffer.alloc(201, 'k')))
  assert.equal(keyName(Buffer.from('short')), 'short')
})

test('keyAndValueOf reads key and null value from the record bytes', async () => {
  const { batch, header } = await batchOf([{ key: 'k1', value: null }, { key: null, value: 'v' }])
  const views = await openRecords(batch, header)
  assert.deepEqual(keyAndValueOf(views[0]!), { key: Buffer.from('k1'), valueIsNull: true })
  assert.deepEqual(keyAndValueOf(views[1]!), { key: null, valueIsNull: false })
})

for (const [name, codec] of Object.entries(CompressionCodec)) {
  test(`a ${name} batch with some records removed is rewritten with the same codec, offset range, producer fields and a valid CRC`, async () => {
    const records = Array.from({ length: 6 }, (_, i) => ({ key: `k${i % 3}`, value: `value-${i}`.repeat(20) }))
    const { batch, header } = await batchOf(records, codec, { baseOffset: 100n, producerId: 42n, producerEpoch: 3, baseSequence: 10 })
    const opened = (await recordsForCleaning(batch, header))!
    const latest = new LatestOffsets()
    latest.observe(opened)
    const plan = planBatch(opened, latest, 0, false)
    assert.equal(plan.kind, 'rewrite')
    if (plan.kind !== 'rewrite') return
    const rewritten = await batchWithRecords(batch, header, plan.kept)
    const out = validateBatch(rewritten, 'log')
    assert.equal(compressionCodecOf(out.attributes), codec)
    assert.equal(isControlBatch(out.attributes), false)
    assert.equal(out.baseOffset, 100n)
    assert.equal(out.lastOffsetDelta, 5)
    assert.equal(out.recordCount, 3)
    assert.deepEqual([out.producerId, out.producerEpoch, out.baseSequence], [42n, 3, 10])
    const survivors = await openRecords(rewritten, out)
    assert.deepEqual(survivors.map((v) => v.offsetDelta), [3, 4, 5])
    assert.deepEqual(survivors.map((v) => keyAndValueOf(v).key?.toString()), ['k0', 'k1', 'k2'])
  })
}

test('segments are grouped up to segment.bytes, a group never ends with an empty segment', () => {
  const seg = (base: number, size: number, next: number) => ({ baseOffset: BigInt(base), size, nextOffset: BigInt(next) })
  const segments = [seg(0, 100, 10), seg(10, 100, 20), seg(20, 900, 30), seg(30, 0, 30), seg(30, 50, 40), seg(40, 0, 40)]
  assert.deepEqual(groupSegments(segments, 1000, 2 ** 31 - 1), [[0, 2], [2, 5]])
  assert.deepEqual(groupSegments([seg(0, 5000, 10)], 1000, 2 ** 31 - 1), [[0, 1]], 'an oversized segment is a group of its own')
  assert.deepEqual(groupSegments([seg(0, 10, 10), seg(10, 10, 100)], 1000, 50), [[0, 1], [1, 2]], 'offsets must fit one index')
})
