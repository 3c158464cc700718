// Durability of appends: nothing is acknowledged or visible before the fsync that covers it
// (policy `always`), concurrent appends share fsyncs (group commit), a failed write or fsync
// fences the partition without ever acknowledging what it covered, and the relaxed policies
// acknowledge after the write. The disk is real; FaultyFileIO counts, holds and fails calls.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isTidewayError } from '../../../src/errors.ts'
import { FaultyFileIO } from '../../helpers/faulty-file-io.ts'
import { waitFor } from '../../helpers/wait.ts'
import { appendValues, capturingLogger, crashCopy, openLog, partitionDir, readAllValues } from './helpers.ts'

const opts = { timeout: 30_000 }

test('under flush=always a batch is neither acknowledged nor readable until its fsync completes', opts, async () => {
  const io = new FaultyFileIO()
  const log = await openLog(partitionDir(), { io })
  await appendValues(log, ['synced'])
  const held = io.holdNextDatasync()
  let acknowledged = false
  const pending = appendValues(log, ['in flight']).then((r) => ((acknowledged = true), r))
  await held.started
  assert.equal(acknowledged, false)
  assert.equal(log.highWatermark, 1n, 'the high watermark waits for the fsync')
  assert.equal(log.logEndOffset, 2n, 'the offset is already assigned')
  assert.deepEqual(await readAllValues(log), ['synced'], 'readers stop at the high watermark')
  held.release()
  assert.equal((await pending).baseOffset, 1n)
  assert.equal(log.highWatermark, 2n)
  assert.deepEqual(await readAllValues(log), ['synced', 'in flight'])
  await log.close()
})

test('appends made while an fsync is in flight share the next one (group commit), in call order', opts, async () => {
  const io = new FaultyFileIO()
  const log = await openLog(partitionDir(), { io })
  const before = io.datasyncs
  const held = io.holdNextDatasync()
  const first = appendValues(log, ['c0'])
  await held.started
  const rest = Array.from({ length: 49 }, (_, i) => appendValues(log, [`c${i + 1}`]))
  held.release()
  const results = await Promise.all([first, ...rest])
  assert.deepEqual(
    results.map((r) => r.baseOffset),
    results.map((_, i) => BigInt(i)),
    'offsets follow call order',
  )
  assert.equal(io.datasyncs - before, 2, 'one fsync for the first append, one shared by the other 49')
  assert.deepEqual(await readAllValues(log), results.map((_, i) => `c${i}`))
  await log.close()
})

test('50 concurrent appends complete with fewer fdatasyncs than appends', opts, async () => {
  const io = new FaultyFileIO()
  const log = await openLog(partitionDir(), { io })
  const before = io.datasyncs
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => appendValues(log, [`c${i}`])))
  const syncs = io.datasyncs - before
  assert.deepEqual(
    results.map((r) => r.baseOffset),
    results.map((_, i) => BigInt(i)),
  )
  assert.ok(syncs >= 1 && syncs < 50, `50 appends used ${syncs} fdatasyncs`)
  await log.close()
})

test('a failed fdatasync fences the partition: covered and later appends fail, acknowledged data stays', opts, async () => {
  const dir = partitionDir()
  const io = new FaultyFileIO()
  const logger = capturingLogger()
  const log = await openLog(dir, { io, logger })
  for (let i = 0; i < 5; i++) await appendValues(log, [`ok${i}`])

  io.failDatasyncAt = io.datasyncs + 1
  const held = io.holdNextDatasync()
  const covered = appendValues(log, ['covered'])
  await held.started
  const queued = appendValues(log, ['queued behind the failing sync'])
  held.release()
  await assert.rejects(covered, (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_IO') && err.retriable)
  await assert.rejects(queued, (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_FENCED') && err.retriable)
  assert.equal((log.fenced?.cause as NodeJS.ErrnoException | undefined)?.code, 'EIO', 'fenced, with the cause')

  io.failDatasyncAt = Number.POSITIVE_INFINITY // the disk "recovers": the fsync must not be retried into an ack
  for (let i = 0; i < 3; i++) {
    await assert.rejects(appendValues(log, ['later']), (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_FENCED'))
  }
  assert.equal(log.highWatermark, 5n, 'nothing unsynced became visible')
  assert.deepEqual(await readAllValues(log), ['ok0', 'ok1', 'ok2', 'ok3', 'ok4'], 'reads keep serving durable data')
  assert.equal(logger.entries.filter((e) => e.level === 'error').length, 1, 'the failure is logged once')

  const crashed = crashCopy(dir)
  await log.close()
  for (const where of [dir, crashed]) {
    const reopened = await openLog(where)
    const values = await readAllValues(reopened)
    assert.deepEqual(values.slice(0, 5), ['ok0', 'ok1', 'ok2', 'ok3', 'ok4'], 'every acknowledged batch is there after reopen')
    assert.ok(values.length <= 7, 'only the two unacknowledged batches could have reached the disk')
    assert.equal((await appendValues(reopened, ['resumed'])).baseOffset, BigInt(values.length), 'a reopened log accepts appends')
    await reopened.close()
  }
})

test('a failed write fences the partition with a retriable error', opts, async () => {
  const io = new FaultyFileIO()
  io.failureCode = 'ENOSPC'
  const log = await openLog(partitionDir(), { io })
  await appendValues(log, ['first'])
  io.failWriteAt = io.writes + 1
  await assert.rejects(appendValues(log, ['full']), (err) => isTidewayError(err) && err.retriable)
  await assert.rejects(appendValues(log, ['after']), (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_FENCED'))
  assert.equal(log.highWatermark, 1n)
  assert.deepEqual(await readAllValues(log), ['first'])
  await log.close()
})

test('a failure while rolling a segment fences the partition too', opts, async () => {
  const io = new FaultyFileIO()
  const log = await openLog(partitionDir(), { io, config: { segmentBytes: 1024 } })
  const value = (i: number) => `r${i}`.padEnd(200, '.') // three such batches fill a segment
  for (let i = 0; i < 3; i++) await appendValues(log, [value(i)])
  // The fourth append rolls: fsync of the sealed segment, then its index file's fsync fails.
  io.failDatasyncAt = io.datasyncs + 2
  await assert.rejects(appendValues(log, [value(3)]), (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_IO') && err.retriable)
  assert.equal(log.segmentCount, 1, 'the roll did not complete')
  assert.ok(log.fenced)
  assert.equal(log.highWatermark, 3n)
  assert.deepEqual((await readAllValues(log)).length, 3)
  await assert.rejects(appendValues(log, ['after']), (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_FENCED'))
  await log.close()
})

test('under flush=never appends are acknowledged after the write, without fsyncs; close syncs', opts, async () => {
  const io = new FaultyFileIO()
  const dir = partitionDir()
  const log = await openLog(dir, { io, config: { flush: { mode: 'never' } } })
  const before = io.datasyncs
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => appendValues(log, [`n${i}`])))
  assert.equal(io.datasyncs, before, 'no fsync on the append path')
  assert.equal(log.highWatermark, 10n, 'visible once written')
  assert.equal(results.at(-1)!.lastOffset, 9n)
  await log.close()
  assert.ok(io.datasyncs > before, 'close syncs')
  const reopened = await openLog(dir)
  assert.equal(reopened.highWatermark, 10n)
  await reopened.close()
})

test('under flush=interval appends are acknowledged after the write and a timer syncs them', opts, async () => {
  const io = new FaultyFileIO()
  const log = await openLog(partitionDir(), { io, config: { flush: { mode: 'interval', intervalMs: 5 } } })
  const before = io.datasyncs
  await appendValues(log, ['i0'])
  assert.equal(log.highWatermark, 1n)
  await waitFor(() => io.datasyncs > before, { what: 'the periodic fsync', timeoutMs: 5_000 })
  await log.close()
})
