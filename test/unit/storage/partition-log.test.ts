import assert from 'node:assert/strict'
import { appendFileSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterEach, test } from 'node:test'
import { ManualClock } from '../../../src/clock.ts'
import { isTidewayError } from '../../../src/errors.ts'
import { silentLogger } from '../../../src/logger.ts'
import { readBatchHeader } from '../../../src/protocol/record-batch.ts'
import { nodeFileIO, type FileIO } from '../../../src/storage/file-io.ts'
import { PartitionLog, type LogConfig } from '../../../src/storage/partition-log.ts'
import { buildBatch, valuesOf } from '../../helpers/batches.ts'
import { tempDir } from '../../helpers/broker-process.ts'
import { FaultyFileIO } from '../../helpers/faulty-file-io.ts'

const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

const baseConfig: LogConfig = {
  segmentBytes: 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  retentionMs: -1,
  retentionBytes: -1,
  indexIntervalBytes: 256,
  flush: { mode: 'always' },
}

function newDir(): string {
  const d = tempDir('tideway-log-')
  dirs.push(d)
  return join(d.path, 'topic-0')
}

function open(dir: string, config: Partial<LogConfig> = {}, io: FileIO = nodeFileIO, clock = new ManualClock()) {
  return PartitionLog.open({ dir, topic: 'topic', partition: 0, io, clock, logger: silentLogger, config: { ...baseConfig, ...config } })
}

async function appendValues(log: PartitionLog, values: string[], baseTimestamp?: bigint) {
  const { batch, header } = buildBatch(values.map((value) => ({ value })), baseTimestamp === undefined ? {} : { baseTimestamp })
  return log.append(batch, header)
}

async function readAllValues(log: PartitionLog): Promise<string[]> {
  const values: string[] = []
  let offset = log.logStartOffset
  while (offset < log.highWatermark) {
    const { records } = await log.read(offset, 4096)
    const batchValues = valuesOf(records)
    let at = 0
    while (at < records.length) {
      const h = readBatchHeader(records, at)
      offset = h.baseOffset + BigInt(h.lastOffsetDelta) + 1n
      at += 12 + h.batchLength
    }
    values.push(...batchValues)
  }
  return values
}

test('appends get dense offsets across segment rolls and read back in order', { timeout: 30_000 }, async () => {
  const dir = newDir()
  const log = await open(dir, { segmentBytes: 1024 })
  const expected: string[] = []
  for (let i = 0; i < 40; i++) {
    const values = [`a${i}`, `b${i}`, `c${i}`]
    const result = await appendValues(log, values)
    assert.equal(result.baseOffset, BigInt(i * 3))
    assert.equal(result.lastOffset, BigInt(i * 3 + 2))
    expected.push(...values)
  }
  assert.ok(log.segmentCount > 3, `rolled into ${log.segmentCount} segments`)
  assert.equal(log.highWatermark, 120n)
  assert.deepEqual(await readAllValues(log), expected)
  await log.close()
})

test('a read starting mid-batch returns the whole batch that contains the offset', { timeout: 30_000 }, async () => {
  const log = await open(newDir())
  await appendValues(log, ['x0', 'x1', 'x2'])
  await appendValues(log, ['y0', 'y1'])
  const { records } = await log.read(4n, 1 << 20)
  assert.equal(readBatchHeader(records).baseOffset, 3n)
  assert.deepEqual(valuesOf(records), ['y0', 'y1'])
  await log.close()
})

test('maxBytes bounds a read but the first batch is returned whole even when larger', { timeout: 30_000 }, async () => {
  const log = await open(newDir())
  const big = 'z'.repeat(5000)
  await appendValues(log, [big])
  await appendValues(log, ['small'])
  const first = await log.read(0n, 100)
  assert.deepEqual(valuesOf(first.records), [big], 'one oversized batch, whole')
  const both = await log.read(0n, 1 << 20)
  assert.deepEqual(valuesOf(both.records), [big, 'small'])
  await log.close()
})

test('reads outside [logStartOffset, highWatermark] are refused and the end reads empty', { timeout: 30_000 }, async () => {
  const log = await open(newDir())
  await appendValues(log, ['only'])
  assert.equal((await log.read(1n, 100)).records.length, 0)
  await assert.rejects(log.read(2n, 100), (err) => isTidewayError(err, 'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE'))
  await log.close()
})

test('offsetForTimestamp finds the first batch whose newest record is at or after the time', { timeout: 30_000 }, async () => {
  const log = await open(newDir(), { segmentBytes: 1024 })
  for (let i = 0; i < 30; i++) await appendValues(log, [`t${i}`, `u${i}`], 1_000_000n + BigInt(i) * 100n)
  // Batch i holds two records at 1_000_000 + 100i and one ms later.
  assert.deepEqual(await log.offsetForTimestamp(1_000_000n + 1501n), { offset: 30n, timestampMs: 1_001_501n })
  assert.deepEqual(await log.offsetForTimestamp(1_000_000n + 1502n), { offset: 32n, timestampMs: 1_001_601n })
  assert.deepEqual(await log.offsetForTimestamp(0n), { offset: 0n, timestampMs: 1_000_001n })
  assert.equal(await log.offsetForTimestamp(9_999_999n), null)
  await log.close()
})

test('a log reopened after a clean close has every batch and continues its offsets', { timeout: 30_000 }, async () => {
  const dir = newDir()
  const log = await open(dir, { segmentBytes: 1024 })
  const expected: string[] = []
  for (let i = 0; i < 30; i++) {
    expected.push(`v${i}`)
    await appendValues(log, [`v${i}`])
  }
  await log.close()
  const reopened = await open(dir, { segmentBytes: 1024 })
  assert.equal(reopened.highWatermark, 30n)
  assert.deepEqual(await readAllValues(reopened), expected)
  assert.equal((await appendValues(reopened, ['next'])).baseOffset, 30n)
  await reopened.close()
})

test('a torn tail loses only the torn batch and offsets continue densely after it', { timeout: 30_000 }, async () => {
  const dir = newDir()
  const log = await open(dir)
  for (let i = 0; i < 10; i++) await appendValues(log, [`r${i}-a`, `r${i}-b`])
  await log.close()
  const segment = join(dir, readdirSync(dir).filter((n) => n.endsWith('.log')).sort().at(-1)!)
  truncateSync(segment, statSync(segment).size - 5)
  const reopened = await open(dir)
  assert.equal(reopened.highWatermark, 18n)
  assert.equal((await appendValues(reopened, ['after'])).baseOffset, 18n)
  assert.deepEqual((await readAllValues(reopened)).slice(-3), ['r8-a', 'r8-b', 'after'])
  await reopened.close()
})

test('garbage appended to the tail (1 to 1024 bytes) is cut off on recovery', { timeout: 30_000 }, async () => {
  for (const size of [1, 13, 61, 200, 1024]) {
    const dir = newDir()
    const log = await open(dir)
    for (let i = 0; i < 5; i++) await appendValues(log, [`g${i}`])
    await log.close()
    const segment = join(dir, readdirSync(dir).find((n) => n.endsWith('.log'))!)
    const before = statSync(segment).size
    appendFileSync(segment, randomBytes(size))
    const reopened = await open(dir)
    assert.equal(reopened.highWatermark, 5n, `${size} garbage bytes`)
    assert.equal(statSync(segment).size, before)
    await reopened.close()
  }
})

test('missing or corrupt index files are rebuilt from the log', { timeout: 30_000 }, async () => {
  const dir = newDir()
  const log = await open(dir, { segmentBytes: 1024 })
  const expected: string[] = []
  for (let i = 0; i < 40; i++) {
    expected.push(`i${i}`)
    await appendValues(log, [`i${i}`], 2_000_000n + BigInt(i))
  }
  await log.close()
  const indexes = readdirSync(dir).filter((n) => n.endsWith('.index')).sort()
  assert.ok(indexes.length >= 2)
  unlinkSync(join(dir, indexes[0]!))
  writeFileSync(join(dir, indexes[1]!), randomBytes(13))
  const reopened = await open(dir, { segmentBytes: 1024 })
  assert.deepEqual(await readAllValues(reopened), expected)
  assert.deepEqual(await reopened.offsetForTimestamp(2_000_020n), { offset: 20n, timestampMs: 2_000_020n })
  await reopened.close()
})

test('retention by size moves the log start offset and offsets are never reused after restart', { timeout: 30_000 }, async () => {
  const dir = newDir()
  const log = await open(dir, { segmentBytes: 1024, retentionBytes: 2048 })
  for (let i = 0; i < 60; i++) await appendValues(log, [`s${i}`])
  const { deletedSegments } = await log.applyRetention()
  assert.ok(deletedSegments > 0)
  assert.ok(log.logStartOffset > 0n)
  assert.ok(log.size() >= 2048 - 1024 && log.size() <= 2048 + 1024)
  const start = log.logStartOffset
  await assert.rejects(log.read(0n, 100), (err) => isTidewayError(err, 'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE'))
  await log.close()
  const reopened = await open(dir, { segmentBytes: 1024, retentionBytes: 2048 })
  assert.equal(reopened.logStartOffset, start)
  assert.equal((await appendValues(reopened, ['later'])).baseOffset, 60n)
  await reopened.close()
})

test('retention by time deletes segments whose newest record is older than retention.ms', { timeout: 30_000 }, async () => {
  const clock = new ManualClock(10_000_000)
  const log = await open(newDir(), { segmentBytes: 1024, retentionMs: 60_000 }, nodeFileIO, clock)
  for (let i = 0; i < 20; i++) await appendValues(log, [`old${i}`], BigInt(clock.wallMs()))
  clock.advance(120_000)
  for (let i = 0; i < 20; i++) await appendValues(log, [`new${i}`], BigInt(clock.wallMs()))
  await log.applyRetention()
  const remaining = await readAllValues(log)
  assert.ok(remaining.includes('new19'))
  assert.ok(!remaining.includes('old0'), 'expired segments are gone')
  assert.ok(log.logStartOffset > 0n && log.logStartOffset <= 20n)
  await log.close()
})

test('concurrent appends share fdatasyncs (group commit) and get offsets in call order', { timeout: 30_000 }, async () => {
  const io = new FaultyFileIO()
  const log = await open(newDir(), {}, io)
  const before = io.datasyncs
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => appendValues(log, [`c${i}`])))
  const syncs = io.datasyncs - before
  assert.deepEqual(results.map((r) => r.baseOffset), results.map((_, i) => BigInt(i)))
  assert.ok(syncs < 50 && syncs >= 1, `50 appends used ${syncs} fdatasyncs`)
  await log.close()
})

test('a failed fdatasync fences the partition: nothing unsynced is acknowledged, acked data survives', { timeout: 30_000 }, async () => {
  const dir = newDir()
  const io = new FaultyFileIO()
  const log = await open(dir, {}, io)
  for (let i = 0; i < 5; i++) await appendValues(log, [`ok${i}`])
  io.failDatasyncAt = io.datasyncs + 1
  await assert.rejects(appendValues(log, ['lost']), (err) => isTidewayError(err) && err.retriable)
  assert.ok(log.fenced, 'partition fenced')
  io.failDatasyncAt = Number.POSITIVE_INFINITY // the disk "recovers": the partition must stay fenced
  await assert.rejects(appendValues(log, ['later']), (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_FENCED'))
  assert.equal(log.highWatermark, 5n, 'the unsynced batch never became visible')
  assert.deepEqual(await readAllValues(log), ['ok0', 'ok1', 'ok2', 'ok3', 'ok4'])
  await log.close()
  const reopened = await open(dir)
  const values = await readAllValues(reopened)
  assert.deepEqual(values.slice(0, 5), ['ok0', 'ok1', 'ok2', 'ok3', 'ok4'])
  await reopened.close()
})

test('a failed write fences the partition with a retriable error', { timeout: 30_000 }, async () => {
  const io = new FaultyFileIO()
  io.failureCode = 'ENOSPC'
  const log = await open(newDir(), {}, io)
  await appendValues(log, ['first'])
  io.failWriteAt = io.writes + 1
  await assert.rejects(appendValues(log, ['full']), (err) => isTidewayError(err) && err.retriable)
  assert.equal(log.highWatermark, 1n)
  await log.close()
})
