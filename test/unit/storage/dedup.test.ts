// Idempotency-key dedup (storage/dedup-window.ts, through a real partition log): a record whose
// key the partition stored within the window is not stored again and is answered with the
// original's offset; a batch mixing new and duplicate records keeps only the new ones at the
// offsets their producer expects; an idempotent producer's all-duplicate batch leaves a marker
// so its sequence goes on; the window survives a clean reopen and a crash, and forgets by time
// and by count.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { ManualClock } from '../../../src/clock.ts'
import { isTidewayError } from '../../../src/errors.ts'
import { crc32c } from '../../../src/protocol/crc32c.ts'
import { BatchField, CompressionCodec, readBatchHeader } from '../../../src/protocol/record-batch.ts'
import { dedupKeyOf, DedupWindow } from '../../../src/storage/dedup-window.ts'
import type { DedupConfig, PartitionLog } from '../../../src/storage/partition-log.ts'
import { buildBatch, type BatchOptions } from '../../helpers/batches.ts'
import { FaultyFileIO } from '../../helpers/faulty-file-io.ts'
import { crashCopy, openLog, partitionDir, readAll } from './helpers.ts'

const opts = { timeout: 20_000 }
const DEDUP: DedupConfig = { header: 'idempotency-key', windowMs: 60_000, windowRecords: 1_000 }

test('the window: duplicates inside a batch and across batches, by time and by offsets', () => {
  const window = new DedupWindow({ windowMs: 1_000, windowRecords: 10 })
  const undone = window.admit(['a', 'b'], [0, 1], 100, 0, 100)
  undone.undo()
  assert.equal(window.size, 0, 'undo forgets what the batch remembered')
  const { originals } = window.admit(['a', 'b', 'a', null, 'b'], [0, 1, 2, 3, 4], 100, 0, 100)
  assert.deepEqual(originals, [undefined, undefined, 100, undefined, 101], 'repeats in one batch point at their first')
  window.remember('b', 101, 500)
  assert.equal(window.lookup('a', 1_000, 105), 100)
  assert.equal(window.lookup('a', 1_001, 105), undefined, 'older than windowMs')
  assert.equal(window.lookup('b', 1_000, 112), undefined, 'more than windowRecords offsets behind the end')
  assert.equal(window.lookup('b', 1_000, 111), 101)
  assert.equal(window.evict(1_001, 105), 1, 'eviction stops at the first key still inside')
  assert.equal(window.size, 1)
  assert.deepEqual(window.admit(['b'], [0], 120, 2_000, 120).originals, [undefined], 'outside the window: new again')
  assert.equal(window.lookup('b', 2_000, 121), 120, 'a key stored again is remembered at its new offset')
})

test('keys: empty and null values are no key; long keys are remembered by digest without colliding with short ones', () => {
  assert.equal(dedupKeyOf(undefined), null)
  assert.equal(dedupKeyOf(null), null)
  assert.equal(dedupKeyOf(Buffer.alloc(0)), null)
  assert.equal(dedupKeyOf(Buffer.from('order-1')), 'order-1')
  assert.equal(dedupKeyOf(Buffer.alloc(64, 'x')), 'x'.repeat(64))
  const long = dedupKeyOf(Buffer.alloc(200, 'x'))!
  assert.ok(long.length > 64, 'longer than any raw key')
  assert.notEqual(long, dedupKeyOf(Buffer.alloc(201, 'x')))
  assert.equal(long, dedupKeyOf(Buffer.alloc(200, 'x')))
})

function keyedBatch(keys: (string | null)[], options: BatchOptions = {}) {
  return buildBatch(
    keys.map((key, i) => ({ value: `v-${key ?? 'none'}-${i}`, headers: key === null ? {} : ({ 'idempotency-key': key } as Record<string, string>) })),
    options,
  )
}

function appendKeys(log: PartitionLog, keys: (string | null)[], options: BatchOptions = {}) {
  const { batch, header } = keyedBatch(keys, options)
  return log.append(batch, header)
}

async function storedKeys(log: PartitionLog): Promise<[bigint, string][]> {
  return (await readAll(log)).map((r) => [r.offset, r.headers['idempotency-key'] ?? '-'])
}

test('a key stored before is not stored again and is answered with the original offset', opts, async () => {
  const log = await openLog(partitionDir(), { config: { dedup: DEDUP } })
  assert.equal((await appendKeys(log, ['a'])).baseOffset, 0n)
  assert.equal((await appendKeys(log, ['b'])).baseOffset, 1n)
  const again = await appendKeys(log, ['a'])
  assert.equal(again.baseOffset, 0n)
  assert.deepEqual(again.duplicateOffsets, [0n])
  assert.equal(log.logEndOffset, 2n, 'a batch of only duplicates from a plain producer stores nothing')
  assert.equal((await appendKeys(log, [null])).baseOffset, 2n, 'records without a key are never deduplicated')
  assert.equal((await appendKeys(log, [null])).baseOffset, 3n)
  assert.deepEqual(await storedKeys(log), [[0n, 'a'], [1n, 'b'], [2n, '-'], [3n, '-']])
  await log.close()
})

test('a mixed batch keeps only its new records, at the offsets their producer computes', opts, async () => {
  const log = await openLog(partitionDir(), { config: { dedup: DEDUP } })
  await appendKeys(log, ['a', 'b'])
  const mixed = await appendKeys(log, ['c', 'a', 'd', 'd', 'b'])
  assert.equal(mixed.baseOffset, 2n)
  assert.deepEqual(mixed.duplicateOffsets, [0n, 4n, 1n], 'a repeat inside the batch points at its first occurrence')
  assert.equal(log.logEndOffset, 7n, 'the batch keeps its offset range; the dropped records leave holes')
  assert.deepEqual(await storedKeys(log), [[0n, 'a'], [1n, 'b'], [2n, 'c'], [4n, 'd']])
  const next = await appendKeys(log, ['e', 'c'])
  assert.equal(next.baseOffset, 7n)
  assert.deepEqual(await storedKeys(log), [[0n, 'a'], [1n, 'b'], [2n, 'c'], [4n, 'd'], [7n, 'e']])
  await log.close()
})

test('a compressed mixed batch is rewritten with its codec', opts, async () => {
  const log = await openLog(partitionDir(), { config: { dedup: DEDUP } })
  await appendKeys(log, ['a'])
  const plain = keyedBatch(['x', 'a', 'y'])
  const batch = Buffer.concat([plain.batch.subarray(0, BatchField.records), gzipSync(plain.batch.subarray(BatchField.records))])
  batch.writeInt16BE(CompressionCodec.gzip, BatchField.attributes)
  batch.writeInt32BE(batch.length - 12, BatchField.batchLength)
  batch.writeUInt32BE(crc32c(batch.subarray(BatchField.attributes)), BatchField.crc)
  const result = await log.append(batch, readBatchHeader(batch))
  assert.deepEqual(result.duplicateOffsets, [0n])
  const { records } = await log.read(1n, 1 << 20)
  assert.equal(readBatchHeader(records).attributes & 7, CompressionCodec.gzip, 'stored compressed, as sent')
  assert.equal(readBatchHeader(records).recordCount, 2)
  await log.close()
})

test('an idempotent producer\'s batch of only duplicates leaves a marker, so its next batch follows on, also after a crash', opts, async () => {
  const dir = partitionDir()
  const log = await openLog(dir, { config: { dedup: DEDUP } })
  await appendKeys(log, ['a', 'b'])
  const producer = (baseSequence: number) => ({ producerId: 7n, producerEpoch: 0, baseSequence })
  assert.equal((await appendKeys(log, ['c'], producer(0))).baseOffset, 2n)
  const duplicates = await appendKeys(log, ['b', 'a'], producer(1))
  assert.equal(duplicates.baseOffset, 1n, 'answered with the first record\'s original')
  assert.equal(log.logEndOffset, 5n, 'the marker holds the batch\'s two offsets')
  assert.equal((await appendKeys(log, ['b', 'a'], producer(1))).baseOffset, 1n, 'a retry of it is answered the same')
  assert.equal((await appendKeys(log, ['d'], producer(3))).baseOffset, 5n, 'the next sequence follows the marker\'s')
  assert.deepEqual(await storedKeys(log), [[0n, 'a'], [1n, 'b'], [2n, 'c'], [5n, 'd']], 'consumers never see the marker')

  const crashed = await openLog(crashCopy(dir), { config: { dedup: DEDUP } })
  await assert.rejects(appendKeys(crashed, ['e'], producer(9)), (err) => isTidewayError(err, 'TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'))
  assert.equal((await appendKeys(crashed, ['e'], producer(4))).baseOffset, 6n, 'the rebuilt producer state counts the marker')
  assert.equal((await appendKeys(crashed, ['a'])).baseOffset, 0n, 'the rebuilt window still knows a')
  await crashed.close()
  await log.close()
})

test('the window is rebuilt after a clean reopen and after a crash, and forgets by time and by count', opts, async () => {
  const clock = new ManualClock()
  const dir = partitionDir()
  const config = { dedup: { ...DEDUP, windowMs: 10_000, windowRecords: 6 } }
  const log = await openLog(dir, { clock, config })
  // Records carry the clock's time, as a producer's CreateTime would.
  const at = () => ({ baseTimestamp: BigInt(clock.wallMs()) })
  await appendKeys(log, ['old'], at())
  clock.advance(8_000)
  await appendKeys(log, ['a', 'b'], at())
  const crashed = crashCopy(dir)
  await log.close()

  for (const [name, reopened] of [['clean reopen', dir], ['crash', crashed]] as const) {
    const copy = crashCopy(reopened)
    const again = await openLog(copy, { clock, config })
    assert.deepEqual((await appendKeys(again, ['old', 'a', 'b'], at())).duplicateOffsets, [0n, 1n, 2n], name)
    await again.close()
  }

  clock.advance(3_000) // 'old' is now 11 s old, 'a' and 'b' 3 s
  const later = await openLog(crashCopy(dir), { clock, config })
  const result = await appendKeys(later, ['old', 'a'], at())
  assert.equal(result.baseOffset, 3n, 'a key older than windowMs is stored again')
  assert.deepEqual(result.duplicateOffsets, [1n])
  await appendKeys(later, ['p', 'q', 'r', 's'], at()) // offsets 5-8: 'b' at 2 is now 7 behind the end
  assert.equal((await appendKeys(later, ['b'], at())).duplicateOffsets, undefined, 'a key more than windowRecords behind is stored again')
  await later.close()
})

test('a duplicate of an original still being written is answered only once the original is durable', opts, async () => {
  const io = new FaultyFileIO()
  const log = await openLog(partitionDir(), { io, config: { dedup: DEDUP } })
  await appendKeys(log, ['warm-up'])
  const hold = io.holdNextDatasync()
  const original = appendKeys(log, ['a'])
  await hold.started
  let answered = false
  const duplicate = appendKeys(log, ['a']).then((r) => ((answered = true), r))
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(answered, false, 'not acknowledged while the original is not durable')
  hold.release()
  assert.equal((await original).baseOffset, 1n)
  assert.equal((await duplicate).baseOffset, 1n)
  await log.close()
})

test('batches are admitted in call order even when an earlier one takes longer to open', opts, async () => {
  const log = await openLog(partitionDir(), { config: { dedup: DEDUP } })
  const producer = (baseSequence: number) => ({ producerId: 3n, producerEpoch: 0, baseSequence })
  const big = keyedBatch(Array.from({ length: 2_000 }, (_, i) => `k${i}`), producer(0))
  const compressedBig = Buffer.concat([big.batch.subarray(0, BatchField.records), gzipSync(big.batch.subarray(BatchField.records))])
  compressedBig.writeInt16BE(CompressionCodec.gzip, BatchField.attributes)
  compressedBig.writeInt32BE(compressedBig.length - 12, BatchField.batchLength)
  compressedBig.writeUInt32BE(crc32c(compressedBig.subarray(BatchField.attributes)), BatchField.crc)
  const first = log.append(compressedBig, readBatchHeader(compressedBig))
  const second = appendKeys(log, ['k1999', 'new'], producer(2_000))
  assert.equal((await first).baseOffset, 0n)
  const answer = await second
  assert.equal(answer.baseOffset, 2_000n, 'the small batch waited for the big one: its sequence follows on')
  assert.deepEqual(answer.duplicateOffsets, [1_999n], 'and it saw the big one\'s keys')
  await log.close()
})

test('records that do not decode are refused with TIDEWAY_ERR_INVALID_RECORD and nothing is stored', opts, async () => {
  const log = await openLog(partitionDir(), { config: { dedup: DEDUP } })
  const { batch } = keyedBatch(['a'])
  const broken = Buffer.concat([batch.subarray(0, BatchField.records), Buffer.from([0x7f, 0x01])])
  broken.writeInt32BE(broken.length - 12, BatchField.batchLength)
  broken.writeUInt32BE(crc32c(broken.subarray(BatchField.attributes)), BatchField.crc)
  await assert.rejects(log.append(broken, readBatchHeader(broken)), (err) => isTidewayError(err, 'TIDEWAY_ERR_INVALID_RECORD'))
  assert.equal(log.logEndOffset, 0n)
  assert.equal((await appendKeys(log, ['a'])).baseOffset, 0n, 'the next batch is unaffected')
  await log.close()
})
