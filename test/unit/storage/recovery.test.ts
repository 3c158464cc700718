// Recovery on open: a crash's torn tail is cut at the last whole valid batch and offsets
// continue densely from there; garbage after the tail is removed; index files are rebuilt when
// missing, stale or corrupt; corruption inside a sealed segment is reported loudly and costs
// only that segment's damaged part; interrupted writes and deletions leave nothing behind.
// "Crash" means copying the directory of a live log (helpers.crashCopy).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { appendFileSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { appendValues, capturingLogger, crashCopy, openLog, partitionDir, readAll, readAllValues, segmentFiles } from './helpers.ts'

const opts = { timeout: 30_000 }

/** Deterministic "random" numbers, so a failure can be replayed. */
function seeded(seed: number): (n: number) => number {
  let state = seed
  return (n) => {
    state = (state * 1103515245 + 12345) % 2 ** 31
    return state % n
  }
}

test('a torn tail loses only the torn batch and offsets continue densely after it', opts, async () => {
  const live = partitionDir()
  const log = await openLog(live)
  const sizes: number[] = []
  for (let i = 0; i < 10; i++) {
    await appendValues(log, [`r${i}-a`, `r${i}-b`])
    sizes.push(statSync(join(live, segmentFiles(readdirSync(live), '.log')[0]!)).size)
  }
  const lastBatchBytes = sizes[9]! - sizes[8]!
  for (const cut of [1, 5, 12, lastBatchBytes - 61, lastBatchBytes - 1]) {
    const dir = crashCopy(live)
    const segment = join(dir, segmentFiles(readdirSync(dir), '.log').at(-1)!)
    truncateSync(segment, sizes[9]! - cut)
    const logger = capturingLogger()
    const reopened = await openLog(dir, { logger })
    assert.equal(reopened.highWatermark, 18n, `cut ${cut} bytes`)
    assert.equal(statSync(segment).size, sizes[8]!, 'the file is cut at the last whole batch')
    const warning = logger.entries.find((e) => e.level === 'warn' && /torn tail/.test(e.msg))
    assert.deepEqual([warning?.fields.truncatedBytes, warning?.fields.keptUpToOffset], [lastBatchBytes - cut, 18n])
    assert.equal((await appendValues(reopened, ['after'])).baseOffset, 18n)
    const records = await readAll(reopened)
    assert.deepEqual(
      records.map((r) => r.offset),
      records.map((_, i) => BigInt(i)),
      'dense',
    )
    assert.deepEqual(
      records.slice(-3).map((r) => r.value?.toString()),
      ['r8-a', 'r8-b', 'after'],
    )
    await reopened.close()
  }
  await log.close()
})

test('garbage appended to the tail (1 to 1024 random bytes) is cut off, keeping every record', opts, async () => {
  // After Kafka's LogLoaderTest.testCorruptLog: ten rounds of 50-99 records plus nonsense.
  const random = seeded(20240607)
  for (let round = 0; round < 10; round++) {
    const live = partitionDir()
    const log = await openLog(live, { config: { segmentBytes: 4096 } })
    const count = 50 + random(50)
    for (let i = 0; i < count; i++) await appendValues(log, [`g${round}-${i}`])
    const expected = await readAllValues(log)
    const dir = round % 2 === 0 ? crashCopy(live) : live
    await log.close() // odd rounds: garbage after a clean close, which must not be trusted blindly
    const segment = join(dir, segmentFiles(readdirSync(dir), '.log').at(-1)!)
    const size = statSync(segment).size
    const garbage = 1 + random(1024)
    appendFileSync(segment, randomBytes(garbage))
    const reopened = await openLog(dir, { config: { segmentBytes: 4096 } })
    assert.equal(reopened.highWatermark, BigInt(count), `round ${round}: ${garbage} garbage bytes`)
    assert.equal(statSync(segment).size, size)
    assert.deepEqual(await readAllValues(reopened), expected)
    await reopened.close()
  }
})

test('missing, stale or corrupt index files are rebuilt from the log', opts, async () => {
  const dir = partitionDir()
  const config = { segmentBytes: 1024, indexIntervalBytes: 100 }
  const log = await openLog(dir, { config })
  for (let i = 0; i < 60; i++) await appendValues(log, [`i${i}`], { baseTimestamp: 2_000_000n + BigInt(i) })
  const expected = await readAllValues(log)
  const answers = await Promise.all([2_000_000n, 2_000_020n, 2_000_059n].map((t) => log.offsetForTimestamp(t)))
  await log.close()

  const indexes = segmentFiles(readdirSync(dir), '.index')
  const timeIndexes = segmentFiles(readdirSync(dir), '.timeindex')
  assert.ok(indexes.length >= 5)
  unlinkSync(join(dir, indexes[0]!)) // missing
  writeFileSync(join(dir, indexes[1]!), randomBytes(13)) // not a whole number of entries
  const plausible = readFileSync(join(dir, indexes[2]!))
  plausible.writeUInt32BE(plausible.readUInt32BE(plausible.length - 4) + 3, plausible.length - 4) // points mid-batch
  writeFileSync(join(dir, indexes[2]!), plausible)
  truncateSync(join(dir, timeIndexes[3]!), 0) // stale: empty for a non-empty segment
  writeFileSync(join(dir, indexes.at(-1)!), Buffer.alloc(16)) // the active segment's, after a clean close

  const reopened = await openLog(dir, { config })
  assert.deepEqual(await readAllValues(reopened), expected)
  for (let offset = 0n; offset < 60n; offset += 7n) {
    assert.deepEqual((await readAllValues(reopened, offset))[0], `i${offset}`, `read from ${offset}`)
  }
  assert.deepEqual(await Promise.all([2_000_000n, 2_000_020n, 2_000_059n].map((t) => reopened.offsetForTimestamp(t))), answers)
  await reopened.close()
  assert.deepEqual(segmentFiles(readdirSync(dir), '.index').length, indexes.length, 'rebuilt indexes are written back')
})

test('corruption inside a sealed segment is logged as an error and later segments keep their data', opts, async () => {
  const dir = partitionDir()
  const config = { segmentBytes: 1024 }
  const log = await openLog(dir, { config })
  for (let i = 0; i < 40; i++) await appendValues(log, [`c${i}`.padEnd(60, '.')])
  await log.close()
  const logs = segmentFiles(readdirSync(dir), '.log')
  assert.ok(logs.length >= 4)
  const victim = join(dir, logs[1]!)
  const bytes = readFileSync(victim)
  const middle = Math.floor(bytes.length / 2) // somewhere inside a batch in the middle
  bytes[middle] = bytes[middle]! ^ 0xff
  writeFileSync(victim, bytes)
  unlinkSync(join(dir, logs[1]!.replace('.log', '.index'))) // so recovery re-reads it

  const logger = capturingLogger()
  const reopened = await openLog(dir, { config, logger })
  const errors = logger.entries.filter((e) => e.level === 'error')
  assert.equal(errors.length, 1)
  assert.match(errors[0]!.msg, /corruption inside a sealed segment/)
  assert.ok(statSync(victim).size < bytes.length, 'the damaged segment is cut')
  const values = (await readAllValues(reopened)).map((v) => v.replace(/\.+$/, ''))
  assert.ok(values.includes('c39') && values.includes('c0'), 'earlier and later segments are intact')
  assert.ok(values.length < 40, `${40 - values.length} records lost, only from the damaged segment`)
  assert.equal(reopened.highWatermark, 40n, 'the log end is unchanged, so offsets are never reused')
  assert.equal((await appendValues(reopened, ['next'])).baseOffset, 40n)
  await reopened.close()
})

test('stray temp files, interrupted deletions and orphaned index files are removed on open', opts, async () => {
  const dir = partitionDir()
  const log = await openLog(dir, { config: { segmentBytes: 1024 } })
  for (let i = 0; i < 30; i++) await appendValues(log, [`f${i}`])
  await log.close()
  const orphanBase = '00000000000000999999'
  writeFileSync(join(dir, `${orphanBase}.index`), Buffer.alloc(8))
  writeFileSync(join(dir, `${orphanBase}.timeindex`), Buffer.alloc(12))
  writeFileSync(join(dir, '00000000000000000000.index.tmp'), Buffer.alloc(3))
  writeFileSync(join(dir, '00000000000000888888.log.deleted'), Buffer.alloc(100))
  const reopened = await openLog(dir, { config: { segmentBytes: 1024 } })
  const names = readdirSync(dir)
  assert.deepEqual(
    names.filter((n) => n.startsWith(orphanBase) || n.endsWith('.tmp') || n.endsWith('.deleted')),
    [],
  )
  assert.equal(reopened.highWatermark, 30n)
  await reopened.close()
})

test('an empty last segment (a crash right after a roll) continues from its base offset', opts, async () => {
  const dir = partitionDir()
  const log = await openLog(dir, { config: { segmentBytes: 1024 } })
  for (let i = 0; i < 20; i++) await appendValues(log, [`e${i}`])
  await log.close()
  writeFileSync(join(dir, '00000000000000000020.log'), Buffer.alloc(0))
  const reopened = await openLog(dir, { config: { segmentBytes: 1024 } })
  assert.equal(reopened.highWatermark, 20n)
  assert.equal((await appendValues(reopened, ['e20'])).baseOffset, 20n)
  assert.deepEqual((await readAllValues(reopened)).slice(-2), ['e19', 'e20'])
  await reopened.close()
})

test('a clean reopen followed by a crash CRC-checks the tail again (the marker is consumed on open)', opts, async () => {
  const dir = partitionDir()
  const log = await openLog(dir)
  for (let i = 0; i < 5; i++) await appendValues(log, [`m${i}`])
  await log.close()
  const reopened = await openLog(dir)
  assert.equal(readdirSync(dir).includes('clean-shutdown'), false)
  await appendValues(reopened, ['m5'])
  const crashed = crashCopy(dir)
  await reopened.close()
  // A flipped bit inside the last batch keeps every length intact: only a CRC check finds it.
  const segment = join(crashed, segmentFiles(readdirSync(crashed), '.log')[0]!)
  const bytes = readFileSync(segment)
  bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 0x01
  writeFileSync(segment, bytes)
  const recovered = await openLog(crashed)
  assert.deepEqual(await readAllValues(recovered), ['m0', 'm1', 'm2', 'm3', 'm4'])
  await recovered.close()
})
