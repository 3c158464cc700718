// The partition log's everyday contract: dense offsets across segment rolls, reads by offset
// (containing batch, maxBytes with KIP-74, the high watermark as the ceiling), timestamp
// lookups, reopening, and what a closed log refuses.
import assert from 'node:assert/strict'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ManualClock } from '../../../src/clock.ts'
import { isTidewayError } from '../../../src/errors.ts'
import { readBatchHeader } from '../../../src/protocol/record-batch.ts'
import { buildBatch, valuesOf } from '../../helpers/batches.ts'
import { FaultyFileIO } from '../../helpers/faulty-file-io.ts'
import { appendValues, crashCopy, openLog, partitionDir, readAll, readAllValues, segmentFiles } from './helpers.ts'

const opts = { timeout: 30_000 }

test('appends get dense offsets across segment rolls and read back in order', opts, async () => {
  const dir = partitionDir()
  const log = await openLog(dir, { config: { segmentBytes: 1024 } })
  const expected: string[] = []
  for (let i = 0; i < 40; i++) {
    const values = [`a${i}`, `b${i}`, `c${i}`]
    const result = await appendValues(log, values)
    assert.deepEqual([result.baseOffset, result.lastOffset, result.logAppendTimeMs], [BigInt(i * 3), BigInt(i * 3 + 2), -1n])
    expected.push(...values)
  }
  assert.ok(log.segmentCount > 3, `rolled into ${log.segmentCount} segments`)
  assert.equal(log.highWatermark, 120n)
  assert.equal(log.logEndOffset, 120n)
  assert.deepEqual(await readAllValues(log), expected)
  const records = await readAll(log)
  assert.deepEqual(
    records.map((r) => r.offset),
    records.map((_, i) => BigInt(i)),
    'every record carries its own dense offset',
  )
  // Each segment is named by its first offset, zero-padded so `ls` sorts numerically, and none
  // grew past segment.bytes.
  const logs = segmentFiles(readdirSync(dir), '.log')
  for (const name of logs) {
    assert.match(name, /^\d{20}\.log$/)
    assert.ok(statSync(join(dir, name)).size <= 1024)
    const first = (await log.read(BigInt(name.slice(0, 20)), 1)).records
    assert.equal(readBatchHeader(first).baseOffset, BigInt(name.slice(0, 20)))
  }
  await log.close()
})

test('a read starting mid-batch returns the whole batch that contains the offset', opts, async () => {
  const log = await openLog(partitionDir(), { config: { indexIntervalBytes: 1 } })
  for (let i = 0; i < 20; i++) await appendValues(log, [`x${i}`, `y${i}`, `z${i}`])
  for (const offset of [0n, 1n, 2n, 31n, 59n]) {
    const { records } = await log.read(offset, 1)
    const header = readBatchHeader(records)
    assert.ok(header.baseOffset <= offset && offset <= header.baseOffset + 2n, `offset ${offset} in its batch`)
    assert.equal(records.length, 12 + header.batchLength, 'exactly one batch')
  }
  await log.close()
})

test('maxBytes bounds a read, but the first batch is returned whole even when larger (KIP-74)', opts, async () => {
  const log = await openLog(partitionDir())
  const big = 'z'.repeat(5000)
  await appendValues(log, [big])
  for (let i = 0; i < 10; i++) await appendValues(log, [`small${i}`])
  assert.deepEqual(valuesOf((await log.read(0n, 100)).records), [big], 'one oversized batch, whole')
  const fromSmall = await log.read(1n, 300)
  assert.ok(fromSmall.records.length <= 300, `${fromSmall.records.length} bytes within maxBytes`)
  assert.ok(valuesOf(fromSmall.records).length >= 2, 'as many whole batches as fit')
  assert.deepEqual(valuesOf((await log.read(0n, 1 << 20)).records).length, 11)
  await log.close()
})

test('reads outside [logStartOffset, highWatermark] are refused and the high watermark reads empty', opts, async () => {
  const log = await openLog(partitionDir())
  await appendValues(log, ['only'])
  const atEnd = await log.read(1n, 100)
  assert.deepEqual([atEnd.records.length, atEnd.highWatermark, atEnd.logStartOffset], [0, 1n, 0n])
  const outOfRange = (err: unknown) => isTidewayError(err, 'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE') && !err.retriable
  await assert.rejects(log.read(2n, 100), outOfRange)
  await assert.rejects(log.read(-1n, 100), outOfRange)
  await log.close()
})

test('offsetForTimestamp names the first record whose timestamp is at or after the time', opts, async () => {
  // Producer timestamps are not monotonic: a sparse time index must still give the exact batch.
  const dir = partitionDir()
  const config = { segmentBytes: 2048, indexIntervalBytes: 300 }
  const log = await openLog(dir, { config })
  const batches: { offset: bigint; maxTimestamp: bigint }[] = []
  let seed = 7
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  for (let i = 0; i < 120; i++) {
    const baseTimestamp = 1_000_000n + BigInt(i * 100) + BigInt(Math.floor(random() * 700) - 350)
    const result = await appendValues(log, [`t${i}`, `u${i}`], { baseTimestamp })
    batches.push({ offset: result.baseOffset, maxTimestamp: baseTimestamp + 1n })
  }
  // Each batch holds two records, at maxTimestamp - 1 and maxTimestamp.
  const expected = (target: bigint) => {
    const hit = batches.find((b) => b.maxTimestamp >= target)
    if (!hit) return null
    const first = hit.maxTimestamp - 1n
    return first >= target ? { offset: hit.offset, timestampMs: first } : { offset: hit.offset + 1n, timestampMs: hit.maxTimestamp }
  }
  const targets = [0n, 999_000n, 1_000_000n, 1_004_321n, 1_006_000n, 1_011_800n, 1_012_400n, 2_000_000n]
  for (let t = 1_000_000n; t < 1_012_500n; t += 137n) targets.push(t)
  const check = async (label: string, subject: typeof log) => {
    for (const target of targets) assert.deepEqual(await subject.offsetForTimestamp(target), expected(target), `${label} @${target}`)
  }
  await check('live', log)
  const crashed = crashCopy(dir)
  await log.close()
  const reopened = await openLog(dir, { config })
  await check('after a clean reopen', reopened)
  await reopened.close()
  const recovered = await openLog(crashed, { config })
  await check('after crash recovery', recovered)
  assert.equal(await recovered.offsetForTimestamp(9_999_999n), null)
  await recovered.close()
})

test('scanBatchHeaders yields every durable batch from the one containing the offset', opts, async () => {
  const log = await openLog(partitionDir(), { config: { segmentBytes: 1024 } })
  for (let i = 0; i < 30; i++) await appendValues(log, [`s${i}`, `t${i}`], { producerId: 5n, producerEpoch: 0, baseSequence: i * 2 })
  const seen = []
  for await (const { offset, header, batch } of log.scanBatchHeaders(21n)) {
    assert.equal(batch.length, 12 + header.batchLength)
    assert.equal(readBatchHeader(batch).baseOffset, offset)
    seen.push([offset, header.baseSequence])
  }
  assert.deepEqual(seen[0], [20n, 20])
  assert.equal(seen.length, 20)
  assert.deepEqual(seen.at(-1), [58n, 58])
  await log.close()
})

test('a log reopened after a clean close has every batch and continues its offsets', opts, async () => {
  const dir = partitionDir()
  const config = { segmentBytes: 1024 }
  const log = await openLog(dir, { config })
  const expected: string[] = []
  for (let i = 0; i < 30; i++) {
    expected.push(`v${i}`)
    await appendValues(log, [`v${i}`])
  }
  await log.close()
  const io = new FaultyFileIO()
  const reopened = await openLog(dir, { config, io })
  const logBytes = segmentFiles(readdirSync(dir), '.log').reduce((sum, n) => sum + statSync(join(dir, n)).size, 0)
  assert.ok(io.bytesRead < logBytes / 2, `a clean open trusts the indexes: read ${io.bytesRead} of ${logBytes} bytes`)
  assert.equal(reopened.highWatermark, 30n)
  assert.deepEqual(await readAllValues(reopened), expected)
  assert.equal((await appendValues(reopened, ['next'])).baseOffset, 30n)
  await reopened.close()
})

test('the active segment rolls once it is older than segment.ms', opts, async () => {
  const clock = new ManualClock()
  const log = await openLog(partitionDir(), { clock, config: { segmentMs: 60_000 } })
  await appendValues(log, ['first'])
  clock.advance(59_999)
  await appendValues(log, ['still young'])
  assert.equal(log.segmentCount, 1)
  clock.advance(1)
  await appendValues(log, ['rolled'])
  assert.equal(log.segmentCount, 2)
  assert.deepEqual(await readAllValues(log), ['first', 'still young', 'rolled'])
  await log.close()
})

test('high-watermark listeners hear each advance until they unsubscribe', opts, async () => {
  const log = await openLog(partitionDir())
  const heard: bigint[] = []
  const unsubscribe = log.onHighWatermark((hw) => heard.push(hw))
  await appendValues(log, ['a', 'b'])
  await appendValues(log, ['c'])
  unsubscribe()
  await appendValues(log, ['d'])
  assert.deepEqual(heard, [2n, 3n])
  await log.close()
})

test('a listener that throws does not stop appends from being acknowledged', opts, async () => {
  const log = await openLog(partitionDir())
  log.onHighWatermark(() => {
    throw new Error('listener bug')
  })
  assert.equal((await appendValues(log, ['a'])).baseOffset, 0n)
  assert.equal((await appendValues(log, ['b'])).baseOffset, 1n)
  await log.close()
})

test('an append whose header does not describe its bytes is refused before taking an offset', opts, async () => {
  const log = await openLog(partitionDir())
  const { batch, header } = buildBatch([{ value: 'x' }])
  await assert.rejects(log.append(batch.subarray(0, batch.length - 1), header), (err) => isTidewayError(err, 'TIDEWAY_ERR_CORRUPT_BATCH'))
  assert.equal(log.logEndOffset, 0n)
  await log.close()
})

test('after close every call fails with TIDEWAY_ERR_CLOSED', opts, async () => {
  const log = await openLog(partitionDir())
  await appendValues(log, ['a'])
  await log.close()
  await log.close() // idempotent
  const closed = (err: unknown) => isTidewayError(err, 'TIDEWAY_ERR_CLOSED')
  await assert.rejects(appendValues(log, ['b']), closed)
  await assert.rejects(log.read(0n, 100), closed)
  await assert.rejects(log.offsetForTimestamp(0n), closed)
  await assert.rejects(log.applyRetention(), closed)
})
