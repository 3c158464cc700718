// The durable offset log: what is acknowledged survives a reopen, a torn tail (a crash in the
// middle of a write) is dropped rather than trusted, and compaction keeps exactly the latest
// offset per (group, topic, partition).
import assert from 'node:assert/strict'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, test } from 'node:test'
import { FileOffsetStore, type GroupSnapshot, type OffsetCommitEntry } from '../../../src/broker/groups/offset-store.ts'
import { isTidewayError } from '../../../src/errors.ts'
import { FaultyFileIO } from '../../helpers/faulty-file-io.ts'

const opts = { timeout: 20_000 }
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tideway-offsets-'))
  dirs.push(dir)
  return join(dir, '__consumer_offsets')
}

const entry = (topic: string, partition: number, offset: bigint, metadata: string | null = null): OffsetCommitEntry => ({
  topic,
  partition,
  offset,
  leaderEpoch: 2,
  metadata,
  commitTimestampMs: 1_700_000_000_000,
})

async function open(dir: string, compactMinBytes?: number) {
  const store = new FileOffsetStore(compactMinBytes === undefined ? { dir } : { dir, compactMinBytes })
  const { offsets: loaded } = await store.load()
  const offsetOf = (group: string, topic: string, partition: number) => loaded.get(group)?.get(topic)?.get(partition)?.offset
  return { store, loaded, offsetOf }
}

test('committed offsets are there again after a reopen', opts, async () => {
  const dir = tempDir()
  const first = await open(dir)
  await first.store.commit('g1', [entry('orders', 0, 10n, 'meta'), entry('orders', 1, 2n ** 62n)])
  await first.store.commit('g2', [entry('payments', 3, 7n)])
  await first.store.commit('g1', [entry('orders', 0, 11n)])
  await first.store.close()

  const second = await open(dir)
  assert.equal(second.offsetOf('g1', 'orders', 0), 11n)
  assert.equal(second.offsetOf('g1', 'orders', 1), 2n ** 62n)
  assert.equal(second.offsetOf('g2', 'payments', 3), 7n)
  assert.deepEqual(second.loaded.get('g1')!.get('orders')!.get(0), {
    offset: 11n,
    leaderEpoch: 2,
    metadata: null,
    commitTimestampMs: 1_700_000_000_000,
  })
  await second.store.close()
})

test('deleted groups and deleted offsets stay deleted after a reopen', opts, async () => {
  const dir = tempDir()
  const first = await open(dir)
  await first.store.commit('gone', [entry('t', 0, 1n)])
  await first.store.commit('kept', [entry('t', 0, 1n), entry('t', 1, 2n)])
  await first.store.deleteGroup('gone')
  await first.store.deleteOffsets('kept', [{ topic: 't', partition: 0 }])
  await first.store.close()

  const second = await open(dir)
  assert.equal(second.loaded.has('gone'), false)
  assert.equal(second.offsetOf('kept', 't', 0), undefined)
  assert.equal(second.offsetOf('kept', 't', 1), 2n)
  await second.store.close()
})

test('concurrent commits all resolve and all survive (they share fsyncs)', opts, async () => {
  const dir = tempDir()
  const first = await open(dir)
  await Promise.all(Array.from({ length: 200 }, (_, i) => first.store.commit(`g${i % 7}`, [entry('t', i, BigInt(i))])))
  assert.ok(first.store.syncCount < 20, `${first.store.syncCount} fsyncs for 200 concurrent commits`)
  await first.store.close()
  const second = await open(dir)
  for (let i = 0; i < 200; i++) assert.equal(second.offsetOf(`g${i % 7}`, 't', i), BigInt(i))
  await second.store.close()
})

test('a torn tail record is dropped, the file is cut back to the last whole record, and appends continue', opts, async () => {
  const dir = tempDir()
  const log = join(dir, 'commits.log')
  const first = await open(dir)
  await first.store.commit('g', [entry('t', 0, 1n)])
  const goodSize = statSync(log).size
  await first.store.commit('g', [entry('t', 0, 2n)])
  await first.store.close()
  // A crash part-way through the second record's write.
  truncateSync(log, statSync(log).size - 5)

  const second = await open(dir)
  assert.equal(second.offsetOf('g', 't', 0), 1n)
  assert.equal(statSync(log).size, goodSize)
  await second.store.commit('g', [entry('t', 0, 3n)])
  await second.store.close()

  const third = await open(dir)
  assert.equal(third.offsetOf('g', 't', 0), 3n)
  await third.store.close()
})

test('a record whose CRC does not match ends the replay there', opts, async () => {
  const dir = tempDir()
  const log = join(dir, 'commits.log')
  const first = await open(dir)
  await first.store.commit('g', [entry('t', 0, 1n)])
  await first.store.commit('g', [entry('t', 0, 2n)])
  await first.store.close()
  const bytes = readFileSync(log)
  const at = bytes.length - 3 // inside the last record's body
  bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at)
  writeFileSync(log, bytes)
  appendFileSync(log, Buffer.from([0, 0, 0, 9, 1, 2, 3])) // and garbage after it

  const second = await open(dir)
  assert.equal(second.offsetOf('g', 't', 0), 1n)
  await second.store.close()
})

test('a file that is not an offset log is refused rather than overwritten', opts, async () => {
  const dir = tempDir()
  const first = await open(dir)
  await first.store.close()
  writeFileSync(join(dir, 'commits.log'), 'something else entirely')
  await assert.rejects(open(dir), (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_IO'))
})

test('compaction keeps the latest offset per partition, shrinks the log, and survives a reopen', opts, async () => {
  const dir = tempDir()
  const log = join(dir, 'commits.log')
  const first = await open(dir, 4096)
  let written = 0
  for (let round = 0; round < 300; round++) {
    await first.store.commit('g', [entry('orders', round % 3, BigInt(round))])
    written += 60 // at least this many bytes per record
    if (round === 100) await first.store.deleteOffsets('g', [{ topic: 'orders', partition: 2 }])
  }
  await first.store.commit('other', [entry('x', 0, 5n)])
  await first.store.deleteGroup('other')
  await first.store.close()
  assert.ok(statSync(log).size < written / 2, `log is ${statSync(log).size} bytes after ${written}+ bytes of commits`)

  const second = await open(dir, 4096)
  assert.equal(second.offsetOf('g', 'orders', 0), 297n)
  assert.equal(second.offsetOf('g', 'orders', 1), 298n)
  assert.equal(second.offsetOf('g', 'orders', 2), 299n)
  assert.equal(second.loaded.has('other'), false)
  await second.store.close()
})

test('a compaction that crashed before its rename leaves the old log in charge', opts, async () => {
  const dir = tempDir()
  const first = await open(dir)
  await first.store.commit('g', [entry('t', 0, 8n)])
  await first.store.close()
  writeFileSync(join(dir, 'commits.log.compact'), 'half a compaction')

  const second = await open(dir)
  assert.equal(second.offsetOf('g', 't', 0), 8n)
  assert.throws(() => statSync(join(dir, 'commits.log.compact')), /ENOENT/)
  await second.store.close()
})

test('a closed store refuses commits instead of losing them', opts, async () => {
  const dir = tempDir()
  const { store } = await open(dir)
  await store.close()
  await assert.rejects(store.commit('g', [entry('t', 0, 1n)]), (err) => isTidewayError(err, 'TIDEWAY_ERR_CLOSED'))
})

test('a failed fsync refuses the commit and fences the store; a reopen recovers what was acknowledged', opts, async () => {
  const dir = tempDir()
  const io = new FaultyFileIO()
  const store = new FileOffsetStore({ dir, io })
  await store.load()
  await store.commit('g', [entry('t', 0, 1n)])
  io.failDatasyncAt = io.datasyncs + 1
  await assert.rejects(store.commit('g', [entry('t', 0, 2n)]), (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_FENCED'))
  io.failDatasyncAt = Number.POSITIVE_INFINITY
  // Never retried into an acknowledgement, even once the disk works again.
  await assert.rejects(store.commit('g', [entry('t', 0, 3n)]), (err) => isTidewayError(err, 'TIDEWAY_ERR_STORAGE_FENCED'))
  await store.close()

  const reopened = await open(dir)
  // 2 may or may not have reached the disk (its fsync failed, so it was never acknowledged); 3 did not.
  assert.ok([1n, 2n].includes(reopened.offsetOf('g', 't', 0)!))
  await reopened.store.close()
})

const snapshot = (generationId: number, members: string[]): GroupSnapshot => ({
  generationId,
  protocolType: 'consumer',
  protocolName: 'range',
  leaderId: members[0] ?? null,
  wallMs: 1_700_000_000_000 + generationId,
  members: members.map((memberId, i) => ({
    memberId,
    groupInstanceId: i === 0 ? `instance-${memberId}` : null,
    clientId: 'client',
    clientHost: '/127.0.0.1',
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    metadata: Buffer.from([0, 1, 2, 255]),
    assignment: Buffer.from(`for ${memberId}`),
  })),
})

test('group snapshots survive a reopen and compaction; the latest wins and deleteGroup removes it', opts, async () => {
  const dir = tempDir()
  const first = new FileOffsetStore({ dir, compactMinBytes: 4096 })
  await first.load()
  await first.saveGroup('g', snapshot(1, ['a', 'b']))
  await first.saveGroup('gone', snapshot(1, ['x']))
  await first.deleteGroup('gone')
  // Enough commits to trigger compaction (which must keep the snapshot).
  for (let i = 0; i < 100; i++) await first.commit('g', [entry('orders', 0, BigInt(i))])
  await first.saveGroup('g', snapshot(2, ['b']))
  await first.close()

  const second = new FileOffsetStore({ dir, compactMinBytes: 4096 })
  const loaded = await second.load()
  assert.deepEqual([...loaded.snapshots.keys()], ['g'])
  assert.deepEqual(loaded.snapshots.get('g'), snapshot(2, ['b']))
  assert.equal(loaded.offsets.get('g')!.get('orders')!.get(0)!.offset, 99n)
  await second.close()
  assert.ok(statSync(join(dir, 'commits.log')).size < 100 * 60, 'the log was compacted')
})

test('a version 1 log (offsets only) is read, and its header upgraded so older brokers refuse it', opts, async () => {
  const dir = tempDir()
  const first = new FileOffsetStore({ dir })
  await first.load()
  await first.commit('g', [entry('orders', 0, 5n)])
  await first.close()
  const path = join(dir, 'commits.log')
  const bytes = readFileSync(path)
  bytes.writeUInt32BE(1, 4)
  writeFileSync(path, bytes)

  const second = new FileOffsetStore({ dir })
  const loaded = await second.load()
  assert.equal(loaded.offsets.get('g')!.get('orders')!.get(0)!.offset, 5n)
  await second.close()
  assert.equal(readFileSync(path).readUInt32BE(4), 2)
})
