// Log compaction through the PartitionLog API (src/storage/compaction.ts): after a pass a read
// from offset 0 gives exactly each live key's last value at its original offset, tombstones go
// after delete.retention.ms, the active segment and records younger than min.compaction.lag.ms
// are untouched, and a crash at any step of a pass (kill -9 and power loss, an image after every
// file operation) recovers to a log that still holds every key's latest record.
import assert from 'node:assert/strict'
import { cpSync, readdirSync, rmSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ManualClock } from '../../../src/clock.ts'
import { deflateRecords } from '../../../src/protocol/compression.ts'
import { crc32c } from '../../../src/protocol/crc32c.ts'
import { CompressionCodec, compressionCodecOf, validateBatch } from '../../../src/protocol/record-batch.ts'
import { openRecords } from '../../../src/protocol/records.ts'
import { IoThrottle } from '../../../src/storage/compaction.ts'
import { nodeFileIO, type FileHandle, type FileIO } from '../../../src/storage/file-io.ts'
import type { LogConfig, PartitionLog } from '../../../src/storage/partition-log.ts'
import { buildBatch, decodeRecords, type BatchOptions } from '../../helpers/batches.ts'
import { FaultyFileIO } from '../../helpers/faulty-file-io.ts'
import { SimDisk } from '../../helpers/sim-disk.ts'
import { crashCopy, openLog, partitionDir, readAll, tempDir } from './helpers.ts'

const opts = { timeout: 120_000 }
const unlimited = (clock: ManualClock) => new IoThrottle(0, clock)
const compaction = { minLagMs: 0, deleteRetentionMs: 60_000 }

/** What was appended: offset → [key, value (null: tombstone)]. */
type Written = Map<number, [string, string | null]>

async function appendKeyed(log: PartitionLog, clock: ManualClock, written: Written, records: [string, string | null][], options: BatchOptions = {}) {
  const { batch, header } = buildBatch(records.map(([key, value]) => ({ key, value, timestampDelta: 0 })), { baseTimestamp: BigInt(clock.wallMs()), ...options })
  const result = await log.append(batch, header)
  records.forEach((r, i) => written.set(Number(result.baseOffset) + i, r))
  return result
}

/** Forces the active segment to seal: segment.ms passes, then one more record (key "roll") arrives. */
async function roll(log: PartitionLog, clock: ManualClock, written: Written, segmentMs: number) {
  clock.advance(segmentMs)
  await appendKeyed(log, clock, written, [['roll', `roll-${clock.wallMs()}`]])
}

/** Each key's last record: offset and value. */
function lastOfEachKey(written: Written): Map<string, { offset: number; value: string | null }> {
  const last = new Map<string, { offset: number; value: string | null }>()
  for (const [offset, [key, value]] of [...written].sort((a, b) => a[0] - b[0])) last.set(key, { offset, value })
  return last
}

async function stored(log: PartitionLog) {
  return (await readAll(log, 0n, 64 * 1024)).map((r) => ({ offset: Number(r.offset), key: r.key!.toString(), value: r.value === null ? null : r.value.toString() }))
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, name) => n + statSync(join(dir, name)).size, 0)
}

/**
 * The compaction invariants of a log read back (after a crash at any point): each stored record
 * is the one written at its offset, offsets ascend, and each key's latest record is there, or,
 * for a tombstone, nothing of its key is.
 */
function assertConsistent(written: Written, records: { offset: number; key: string; value: string | null }[], what: string) {
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!
    assert.deepEqual([r.key, r.value], written.get(r.offset), `${what}: offset ${r.offset} holds what was written there`)
    if (i > 0) assert.ok(r.offset > records[i - 1]!.offset, `${what}: offsets ascend`)
  }
  const present = new Set(records.map((r) => r.offset))
  const keysPresent = new Set(records.map((r) => r.key))
  for (const [key, last] of lastOfEachKey(written)) {
    if (last.value !== null) assert.ok(present.has(last.offset), `${what}: the latest value of ${key} (offset ${last.offset}) is present`)
    else assert.ok(present.has(last.offset) || !keysPresent.has(key), `${what}: ${key} was deleted; an older value must not come back`)
  }
}

test('100,000 records over 1,000 keys, 100 deleted: after cleaning, a read from offset 0 gives exactly each live key\'s last value at its original offset, and disk usage drops', opts, async (t) => {
  const dir = partitionDir()
  const clock = new ManualClock()
  const segmentMs = 3_600_000
  const config: Partial<LogConfig> = { segmentBytes: 256 * 1024, segmentMs, flush: { mode: 'never' }, compaction }
  const log = await openLog(dir, { clock, config })
  const written: Written = new Map()
  const KEYS = 1000
  for (let n = 0; n < 99_900; n += 100) {
    await appendKeyed(log, clock, written, Array.from({ length: 100 }, (_, i) => [`key-${(n + i) % KEYS}`, `value-${n + i}-`.padEnd(40, '.')]))
    clock.advance(1)
  }
  await appendKeyed(log, clock, written, Array.from({ length: 100 }, (_, i) => [`key-${i}`, null]))
  await roll(log, clock, written, segmentMs)
  assert.equal(written.size, 100_001)
  clock.advance(compaction.deleteRetentionMs + 1) // the tombstones are now old enough to go
  const segmentsBefore = log.segmentCount
  const bytesBefore = dirBytes(dir)
  const result = await log.clean(unlimited(clock))
  assert.ok(result && result.groupsSwapped > 0)
  const bytesAfter = dirBytes(dir)

  const expected = [...lastOfEachKey(written)].filter(([, last]) => last.value !== null).map(([key, last]) => ({ offset: last.offset, key, value: last.value }))
  expected.sort((a, b) => a.offset - b.offset)
  assert.equal(expected.length, 901, '900 live keys and the roll record')
  assert.deepEqual(await stored(log), expected)
  assert.ok(bytesAfter < bytesBefore / 20, `disk usage dropped: ${bytesBefore} -> ${bytesAfter} bytes`)
  assert.equal(await log.clean(unlimited(clock)), null, 'nothing left to do until more segments are sealed')
  t.diagnostic(`100,001 records, 1,000 keys, 100 tombstones: ${segmentsBefore} segments, ${bytesBefore} bytes -> ${log.segmentCount} segments, ${bytesAfter} bytes; ${result.recordsRemoved} records removed; ${expected.length} read back from offset 0`)

  assert.deepEqual(await stored(log), expected)
  const copy = crashCopy(dir)
  await log.close()
  for (const path of [dir, copy]) {
    const reopened = await openLog(path, { clock, config })
    assert.deepEqual(await stored(reopened), expected, path === dir ? 'after a clean restart' : 'after a crash')
    assert.equal(reopened.logEndOffset, 100_001n)
    await reopened.close()
  }
})

test('the active segment and records younger than min.compaction.lag.ms are never compacted', opts, async () => {
  const dir = partitionDir()
  const clock = new ManualClock()
  const segmentMs = 60_000
  const log = await openLog(dir, { clock, config: { segmentMs, compaction: { minLagMs: 10 * 60_000, deleteRetentionMs: 0 } } })
  const written: Written = new Map()
  await appendKeyed(log, clock, written, [['a', 'a1'], ['b', 'b1']])
  await roll(log, clock, written, segmentMs)
  await appendKeyed(log, clock, written, [['a', 'a2'], ['b', null]])
  assert.equal(await log.clean(unlimited(clock)), null, 'everything is younger than the lag')
  assert.equal((await stored(log)).length, 5)
  clock.advance(10 * 60_000)
  await log.clean(unlimited(clock))
  // The first segment is old enough now; the second (active) one holds a2 and b's tombstone,
  // which supersede a1 and b1 only once they are below the cleaning point themselves.
  assert.deepEqual((await stored(log)).map((r) => r.value), ['a1', 'b1', `roll-${1_700_000_060_000}`, 'a2', null])
  await roll(log, clock, written, segmentMs)
  clock.advance(10 * 60_000)
  await log.clean(unlimited(clock))
  // a1, b1 and b's tombstone (delete.retention.ms 0) are gone; the first roll record stays, as
  // the record superseding it is in the active segment.
  assert.deepEqual((await stored(log)).map((r) => r.value), ['roll-1700000060000', 'a2', 'roll-1700000720000'])
  await log.close()
})

for (const [name, codec] of [['gzip', CompressionCodec.gzip], ['snappy', CompressionCodec.snappy], ['lz4', CompressionCodec.lz4], ['zstd', CompressionCodec.zstd]] as const) {
  test(`a ${name} batch keeps its codec, offset range and a valid CRC through compaction`, opts, async () => {
    const dir = partitionDir()
    const clock = new ManualClock()
    const log = await openLog(dir, { clock, config: { segmentMs: 1000, compaction } })
    const { batch } = buildBatch([{ key: 'a', value: 'a1' }, { key: 'b', value: 'b1' }, { key: 'a', value: 'a2' }], { baseTimestamp: BigInt(clock.wallMs()) })
    const section = await deflateRecords(codec, batch.subarray(61))
    const compressed = Buffer.concat([batch.subarray(0, 61), section])
    compressed.writeInt32BE(compressed.length - 12, 8)
    compressed.writeInt16BE(codec, 21)
    compressed.writeUInt32BE(crc32c(compressed.subarray(21)), 17)
    await log.append(compressed, validateBatch(compressed))
    await roll(log, clock, new Map(), 1000)
    await log.clean(unlimited(clock))
    const read = await log.read(0n, 1 << 20)
    const header = validateBatch(read.records.subarray(0, 12 + read.records.readInt32BE(8)), 'log')
    assert.equal(compressionCodecOf(header.attributes), codec)
    assert.deepEqual([header.baseOffset, header.lastOffsetDelta, header.recordCount], [0n, 2, 2], 'offsets 0..2, two records left')
    const records = await openRecords(read.records.subarray(0, 12 + header.batchLength), header)
    assert.deepEqual(records.map((r) => r.offsetDelta), [1, 2])
    await log.close()
    const reopened = await openLog(dir, { clock, config: { segmentMs: 1000, compaction } })
    assert.equal((await reopened.read(0n, 1 << 20)).records.readInt32BE(57), 2, 'recovery accepts the rewritten batch')
    await reopened.close()
  })
}

test('an idempotent producer\'s retry is still recognised after compaction and a restart without the producer snapshot', opts, async () => {
  const dir = partitionDir()
  const clock = new ManualClock()
  const config = { segmentMs: 1000, compaction }
  const log = await openLog(dir, { clock, config })
  const written: Written = new Map()
  const producer = (seq: number) => ({ producerId: 9n, producerEpoch: 0, baseSequence: seq })
  for (let seq = 0; seq < 20; seq += 2) await appendKeyed(log, clock, written, [['same', `v${seq}`], ['same', `v${seq + 1}`]], producer(seq))
  await roll(log, clock, written, 1000)
  await log.clean(unlimited(clock))
  assert.deepEqual((await stored(log)).map((r) => r.value).slice(0, 1), ['v19'])
  const copy = crashCopy(dir)
  await log.close()
  unlinkSync(join(copy, 'producers.snapshot'))
  const reopened = await openLog(copy, { clock, config })
  const retry = await appendKeyed(reopened, clock, new Map(), [['same', 'v18'], ['same', 'v19']], producer(18))
  assert.equal(retry.repeated, true, 'the last batch is recognised as a retry')
  assert.equal(retry.baseOffset, 18n, 'and answered with its original offsets')
  const next = await appendKeyed(reopened, clock, new Map(), [['same', 'v20']], producer(20))
  assert.equal(next.repeated, undefined)
  await reopened.close()
})

test('a read in flight while its segment is swapped finishes on the old file; later reads see the cleaned one', opts, async () => {
  const dir = partitionDir()
  const clock = new ManualClock()
  const io = new FaultyFileIO()
  const log = await openLog(dir, { clock, io, config: { segmentMs: 1000, compaction } })
  const written: Written = new Map()
  for (let i = 0; i < 50; i++) await appendKeyed(log, clock, written, [[`k${i % 5}`, `v${i}`]])
  await roll(log, clock, written, 1000)
  const held = io.holdNextRead()
  const reading = log.read(0n, 1 << 20)
  await held.started
  await log.clean(unlimited(clock))
  held.release()
  const old = decodeRecords((await reading).records).map((r) => r.value?.toString())
  assert.deepEqual(old.slice(0, 50), [...written.values()].slice(0, 50).map(([, v]) => v), 'the read started before the swap sees the old file whole')
  assert.deepEqual((await stored(log)).map((r) => r.value).slice(0, 5), ['v45', 'v46', 'v47', 'v48', 'v49'])
  await log.close()
})

test('close() stops a throttled pass promptly and leaves the log as it was', opts, async () => {
  const dir = partitionDir()
  const clock = new ManualClock()
  const config = { segmentMs: 1000, segmentBytes: 2048, compaction }
  const log = await openLog(dir, { clock, config })
  const written: Written = new Map()
  for (let i = 0; i < 200; i++) await appendKeyed(log, clock, written, [[`k${i % 5}`, `value-${i}`.padEnd(50, '.')]])
  await roll(log, clock, written, 1000)
  const before = await stored(log)
  // 100 bytes a second: this pass would take minutes. The throttle waits on real time.
  const pass = log.clean(new IoThrottle(100, { wallMs: () => clock.wallMs(), monotonicMs: () => performance.now() }))
  await new Promise((resolve) => setImmediate(resolve))
  await log.close()
  assert.equal(await pass, null)
  assert.deepEqual(readdirSync(dir).filter((n) => /\.(cleaned|swap|deleted)$/.test(n)), [])
  const reopened = await openLog(dir, { clock, config })
  assert.deepEqual(await stored(reopened), before)
  await reopened.close()
})

/** A workload with many small segments (merged by the pass), tombstones old enough to go, and superseded values. */
async function smallWorkload(log: PartitionLog, clock: ManualClock): Promise<Written> {
  const written: Written = new Map()
  for (let i = 0; i < 120; i++) {
    await appendKeyed(log, clock, written, [[`k${i % 12}`, `v${i}`.padEnd(30, '.')], [`k${(i * 7) % 12}`, i % 25 === 0 ? null : `w${i}`]])
    clock.advance(1)
  }
  await roll(log, clock, written, 1000)
  clock.advance(compaction.deleteRetentionMs + 1)
  return written
}
const smallConfig = { segmentMs: 1000, segmentBytes: 1024, compaction }

/** A FileIO over the real disk that calls `after` after every call that changes the disk. */
function observedIO(after: () => void): FileIO {
  const wrapHandle = (h: FileHandle): FileHandle => ({
    read: (b, p) => h.read(b, p),
    write: async (b, p) => void (await h.write(b, p), after()),
    datasync: async () => void (await h.datasync(), after()),
    truncate: async (n) => void (await h.truncate(n), after()),
    size: () => h.size(),
    close: () => h.close(),
  })
  return {
    ...nodeFileIO,
    open: async (path, mode) => wrapHandle(await nodeFileIO.open(path, mode)),
    rename: async (a, b) => void (await nodeFileIO.rename(a, b), after()),
    unlink: async (p) => void (await nodeFileIO.unlink(p), after()),
    syncDir: async (p) => void (await nodeFileIO.syncDir(p), after()),
  }
}

test('kill -9 after every file operation of a pass: each recovers to a consistent log, with nothing half-swapped left', opts, async (t) => {
  const dir = partitionDir()
  const clock = new ManualClock()
  let capturing = false
  const images: string[] = []
  const io = observedIO(() => {
    if (!capturing) return
    const copy = join(tempDir('tideway-compaction-kill-'), 'topic-0')
    cpSync(dir, copy, { recursive: true })
    images.push(copy)
  })
  const log = await openLog(dir, { clock, io, config: smallConfig })
  const written = await smallWorkload(log, clock)
  const segmentsBefore = log.segmentCount
  capturing = true
  const result = await log.clean(unlimited(clock))
  capturing = false
  assert.ok(result && result.groupsSwapped > 1)
  const final = await stored(log)
  await log.close()
  for (const [i, image] of images.entries()) {
    const recovered = await openLog(image, { clock, config: smallConfig })
    assertConsistent(written, await stored(recovered), `crash after operation ${i + 1}`)
    assert.deepEqual(readdirSync(image).filter((n) => /\.(cleaned|swap|deleted|tmp)$/.test(n)), [], `crash after operation ${i + 1}: no leftovers`)
    await recovered.clean(unlimited(clock))
    assert.deepEqual(await stored(recovered), final, `crash after operation ${i + 1}: a later pass gives the same log`)
    await recovered.close()
    rmSync(image, { recursive: true, force: true })
  }
  t.diagnostic(`${written.size} records, ${segmentsBefore} segments -> ${result.groupsSwapped} cleaned; ${images.length} crash points, each consistent`)
})

test('power loss after every file operation of a pass (unsynced writes and renames lost): each recovers to a consistent log', opts, async (t) => {
  const disk = new SimDisk()
  const clock = new ManualClock()
  const dir = '/data/topic-0'
  const log = await openLog(dir, { clock, io: disk, config: smallConfig })
  const written = await smallWorkload(log, clock)
  let seed = 11
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const images: ReturnType<SimDisk['crashImage']>[] = []
  disk.onOperation = () => void images.push(disk.crashImage(random))
  await log.clean(unlimited(clock))
  disk.onOperation = undefined
  const final = await stored(log)
  await log.close()
  for (const [i, image] of images.entries()) {
    const restarted = SimDisk.fromImage(image)
    const recovered = await openLog(dir, { clock, io: restarted, config: smallConfig })
    assertConsistent(written, await stored(recovered), `power loss after operation ${i + 1}`)
    await recovered.clean(unlimited(clock))
    assert.deepEqual(await stored(recovered), final, `power loss after operation ${i + 1}: a later pass gives the same log`)
    await recovered.close()
  }
  t.diagnostic(`${written.size} records; ${images.length} power-loss points, each consistent`)
})
