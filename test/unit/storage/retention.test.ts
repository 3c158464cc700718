// Retention deletes whole sealed segments, oldest first, by size and by time (a ManualClock
// moves time), never the active one; logStartOffset moves to the new first segment, offsets
// are never reused, and an interrupted deletion finishes on the next open.
import assert from 'node:assert/strict'
import { readdirSync, renameSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ManualClock } from '../../../src/clock.ts'
import { isTidewayError } from '../../../src/errors.ts'
import { valuesOf } from '../../helpers/batches.ts'
import { FaultyFileIO } from '../../helpers/faulty-file-io.ts'
import { appendValues, crashCopy, openLog, partitionDir, readAll, readAllValues, segmentFiles } from './helpers.ts'

const opts = { timeout: 30_000 }
const outOfRange = (err: unknown) => isTidewayError(err, 'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE')

function logBytes(dir: string): number[] {
  return segmentFiles(readdirSync(dir), '.log').map((n) => statSync(join(dir, n)).size)
}

test('retention by size keeps at least retention.bytes, moves logStartOffset, and offsets are never reused', opts, async () => {
  const dir = partitionDir()
  const config = { segmentBytes: 1024, retentionBytes: 2500 }
  const log = await openLog(dir, { config })
  for (let i = 0; i < 60; i++) await appendValues(log, [`s${i}`.padEnd(40, '.')])
  const before = logBytes(dir)
  const { deletedSegments } = await log.applyRetention()
  const after = logBytes(dir)
  assert.equal(after.length, before.length - deletedSegments)
  assert.ok(deletedSegments > 0)
  const kept = after.reduce((a, b) => a + b, 0)
  assert.ok(kept >= 2500, `kept ${kept} bytes`)
  assert.ok(kept - after[0]! < 2500, 'deleting one more segment would drop below retention.bytes')
  assert.equal(log.size(), kept)

  const start = log.logStartOffset
  assert.equal(start, BigInt(segmentFiles(readdirSync(dir), '.log')[0]!.slice(0, 20)), 'the new first segment')
  await assert.rejects(log.read(0n, 100), outOfRange)
  await assert.rejects(log.read(start - 1n, 100), outOfRange)
  assert.equal((await readAll(log))[0]!.offset, start)
  assert.equal((await log.applyRetention()).deletedSegments, 0, 'nothing more to delete')
  await log.close()

  const reopened = await openLog(dir, { config })
  assert.equal(reopened.logStartOffset, start)
  assert.equal((await appendValues(reopened, ['later'])).baseOffset, 60n)
  await reopened.close()
})

test('retention by time deletes segments whose newest record is older than retention.ms', opts, async () => {
  const clock = new ManualClock(10_000_000)
  const config = { segmentBytes: 1024, retentionMs: 60_000 }
  const log = await openLog(partitionDir(), { clock, config })
  const at = () => ({ baseTimestamp: BigInt(clock.wallMs()) })
  for (let i = 0; i < 20; i++) await appendValues(log, [`old${i}`.padEnd(40, '.')], at())
  clock.advance(30_000)
  for (let i = 0; i < 20; i++) await appendValues(log, [`new${i}`.padEnd(40, '.')], at())
  assert.equal((await log.applyRetention()).deletedSegments, 0, 'nothing is older than retention.ms yet')
  clock.advance(40_000) // the old records are now 70 s old, the new ones 40 s
  const { deletedSegments } = await log.applyRetention()
  assert.ok(deletedSegments > 0)
  const remaining = (await readAllValues(log)).map((v) => v.replace(/\.+$/, ''))
  assert.ok(remaining.includes('new0') && remaining.includes('new19'), 'segments with recent records stay')
  assert.ok(!remaining.includes('old0'))
  assert.ok(log.logStartOffset > 0n && log.logStartOffset <= 20n)
  await log.close()
})

test('the active segment is never deleted, so the log end survives even when everything expired', opts, async () => {
  const clock = new ManualClock(10_000_000)
  const dir = partitionDir()
  const config = { segmentBytes: 1024, retentionMs: 1_000, retentionBytes: 0 }
  const log = await openLog(dir, { clock, config })
  for (let i = 0; i < 30; i++) await appendValues(log, [`x${i}`.padEnd(40, '.')], { baseTimestamp: 0n })
  clock.advance(1_000_000)
  await log.applyRetention()
  assert.equal(log.segmentCount, 1)
  assert.equal(log.highWatermark, 30n)
  assert.ok(log.logStartOffset > 0n && log.logStartOffset < 30n)
  await log.close()
  const reopened = await openLog(dir, { clock, config })
  assert.equal((await appendValues(reopened, ['next'])).baseOffset, 30n)
  await reopened.close()
})

test('unlimited retention (-1) deletes nothing', opts, async () => {
  const log = await openLog(partitionDir(), { config: { segmentBytes: 1024, retentionMs: -1, retentionBytes: -1 } })
  for (let i = 0; i < 30; i++) await appendValues(log, [`k${i}`.padEnd(40, '.')], { baseTimestamp: 0n })
  assert.equal((await log.applyRetention()).deletedSegments, 0)
  assert.equal(log.logStartOffset, 0n)
  await log.close()
})

test('a deletion interrupted after its first rename finishes on the next open', opts, async () => {
  const dir = partitionDir()
  const config = { segmentBytes: 1024 }
  const log = await openLog(dir, { config })
  for (let i = 0; i < 30; i++) await appendValues(log, [`d${i}`.padEnd(40, '.')])
  await log.close()
  // The crash hit after the .log was renamed but before its index files were.
  const first = segmentFiles(readdirSync(dir), '.log')[0]!
  renameSync(join(dir, first), join(dir, `${first}.deleted`))
  const reopened = await openLog(dir, { config })
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.startsWith(first.slice(0, 20))),
    [],
    'the renamed log and its orphaned indexes are gone',
  )
  assert.ok(reopened.logStartOffset > 0n)
  assert.equal(reopened.highWatermark, 30n)
  await reopened.close()
})

test('a read in flight when retention deletes its segment still completes; later reads are out of range', opts, async () => {
  const io = new FaultyFileIO()
  const log = await openLog(partitionDir(), { io, config: { segmentBytes: 1024, retentionBytes: 0 } })
  for (let i = 0; i < 30; i++) await appendValues(log, [`r${i}`.padEnd(40, '.')])
  const held = io.holdNextRead()
  const reading = log.read(0n, 200)
  await held.started
  assert.ok((await log.applyRetention()).deletedSegments > 0)
  assert.ok(log.logStartOffset > 0n)
  held.release()
  assert.match(valuesOf((await reading).records)[0]!, /^r0\./, 'the reader that started first finishes')
  await assert.rejects(log.read(0n, 200), outOfRange)
  await log.close()
})

test('close waits for reads in flight before closing files', opts, async () => {
  const io = new FaultyFileIO()
  const log = await openLog(partitionDir(), { io })
  await appendValues(log, ['a'])
  const held = io.holdNextRead()
  const reading = log.read(0n, 200)
  await held.started
  let closed = false
  const closing = log.close().then(() => (closed = true))
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(closed, false)
  held.release()
  assert.deepEqual(valuesOf((await reading).records), ['a'])
  await closing
})

test('a consumed-below floor (pubsub) deletes exactly the sealed segments wholly under it, never the active one', opts, async () => {
  const dir = partitionDir()
  const log = await openLog(dir, { config: { segmentBytes: 1024 } })
  for (let i = 0; i < 60; i++) await appendValues(log, [`p${i}`.padEnd(40, '.')])
  const bases = segmentFiles(readdirSync(dir), '.log').map((n) => BigInt(n.slice(0, 20)))
  assert.ok(bases.length >= 4, `${bases.length} segments`)
  // Everyone has consumed up to just inside the third segment: the first two go.
  const floor = bases[2]! + 1n
  assert.equal((await log.applyRetention(floor)).deletedSegments, 2)
  assert.equal(log.logStartOffset, bases[2])
  assert.equal((await log.applyRetention(floor)).deletedSegments, 0, 'nothing more below the floor')
  // Consumed to the end: every sealed segment goes, the active one stays.
  await log.applyRetention(log.highWatermark)
  assert.equal(log.segmentCount, 1)
  assert.equal(log.logStartOffset, bases.at(-1))
  assert.deepEqual((await readAllValues(log)).at(-1), 'p59'.padEnd(40, '.'))
  await log.close()
})

test('DeleteRecords moves the start offset durably, deletes the sealed segments wholly below it, and survives a crash', opts, async () => {
  const dir = partitionDir()
  const log = await openLog(dir, { config: { segmentBytes: 1024 } })
  for (let i = 0; i < 60; i++) await appendValues(log, [`d${i}`.padEnd(40, '.')])
  const segmentsBefore = log.segmentCount
  assert.equal(await log.deleteRecordsBefore(0n), 0n, 'at or below the start: nothing to do')
  assert.equal(await log.deleteRecordsBefore(37n), 37n)
  assert.equal(log.logStartOffset, 37n)
  assert.ok(log.segmentCount < segmentsBefore, 'segments wholly below 37 are gone')
  assert.ok(BigInt(segmentFiles(readdirSync(dir), '.log')[0]!.slice(0, 20)) <= 37n, 'the segment holding 37 stays')
  await assert.rejects(log.read(36n, 100), outOfRange)
  const records = await readAll(log, 37n)
  assert.equal(records.find((r) => r.offset >= 37n)!.offset, 37n)
  assert.equal(records.filter((r) => r.offset >= 37n).length, 23)
  await assert.rejects(log.deleteRecordsBefore(61n), outOfRange, 'past the high watermark')
  assert.equal(await log.deleteRecordsBefore(20n), 37n, 'the start never moves back')

  // A crash right after the answer: the new start was durable before it.
  const crashed = crashCopy(dir)
  const reopened = await openLog(crashed, { config: { segmentBytes: 1024 } })
  assert.equal(reopened.logStartOffset, 37n)
  await assert.rejects(reopened.read(10n, 100), outOfRange)
  assert.equal(await reopened.deleteRecordsBefore(-1n), 60n, '-1 means the high watermark')
  assert.equal((await appendValues(reopened, ['next'])).baseOffset, 60n, 'offsets go on')
  await reopened.close()
  const again = await openLog(crashed, { config: { segmentBytes: 1024 } })
  assert.equal(again.logStartOffset, 60n)
  assert.deepEqual(await readAllValues(again), ['next'])
  await again.close()
  await log.close()
})
