// The topic catalogue: creation, listing and reopening; deletion that never lets old data
// reappear under a recreated name (even after a crash mid-delete); growing partitions;
// configuration with broker defaults; Kafka's naming rules.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ManualClock } from '../../../src/clock.ts'
import { isTidewayError } from '../../../src/errors.ts'
import { nodeFileIO } from '../../../src/storage/file-io.ts'
import { TopicStore, type TopicStoreOptions } from '../../../src/storage/topic-store.ts'
import { appendValues, capturingLogger, readAllValues, tempDir } from './helpers.ts'

const opts = { timeout: 30_000 }
const isConfigError = (err: unknown) => isTidewayError(err, 'TIDEWAY_ERR_CONFIG')
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const openStore = (dataDir: string, more: Partial<TopicStoreOptions> = {}) =>
  TopicStore.open({ dataDir, io: nodeFileIO, clock: new ManualClock(), logger: capturingLogger(), flush: { mode: 'always' }, ...more })

test('topics, their ids, configs and data survive reopening the store', opts, async () => {
  const dir = tempDir()
  const store = await openStore(dir)
  const orders = await store.createTopic('orders', { partitions: 3, configs: { 'retention.ms': '1000' } })
  await store.createTopic('audit.log_v2', { partitions: 1, configs: {} })
  assert.match(orders.topicId, UUID)
  assert.equal(orders.configs['retention.ms'], 1000)
  await appendValues(store.partition('orders', 2)!, ['hello'])
  assert.deepEqual(
    store.listTopics().map((t) => t.name),
    ['audit.log_v2', 'orders'],
  )
  assert.equal(store.partition('orders', 3), undefined)
  await store.close()

  const reopened = await openStore(dir)
  assert.deepEqual(
    reopened.listTopics().map((t) => [t.name, t.partitions, t.topicId]),
    [
      ['audit.log_v2', 1, reopened.getTopic('audit.log_v2')!.topicId],
      ['orders', 3, orders.topicId],
    ],
  )
  assert.deepEqual(reopened.getTopic('orders')!.explicitConfigs, { 'retention.ms': '1000' })
  assert.deepEqual(await readAllValues(reopened.partition('orders', 2)!), ['hello'])
  await reopened.close()
})

test('a deleted topic can be created again, empty and with a new id', opts, async () => {
  const dir = tempDir()
  const store = await openStore(dir)
  const first = await store.createTopic('events', { partitions: 2, configs: {} })
  const oldLog = store.partition('events', 0)!
  await appendValues(oldLog, ['old'])
  await store.deleteTopic('events')
  assert.equal(store.getTopic('events'), undefined)
  assert.equal(store.partition('events', 0), undefined)
  assert.equal(existsSync(join(dir, 'events-0')), false)
  await assert.rejects(appendValues(oldLog, ['late']), (err) => isTidewayError(err, 'TIDEWAY_ERR_CLOSED'))
  const second = await store.createTopic('events', { partitions: 1, configs: {} })
  assert.notEqual(second.topicId, first.topicId)
  assert.equal(store.partition('events', 0)!.highWatermark, 0n)
  await store.close()
  const reopened = await openStore(dir)
  assert.equal(reopened.getTopic('events')!.topicId, second.topicId)
  assert.equal(reopened.partition('events', 0)!.highWatermark, 0n)
  await reopened.close()
})

test('a delete interrupted after its commit point is finished on open, and old data never reappears', opts, async () => {
  const dir = tempDir()
  const store = await openStore(dir)
  await store.createTopic('ghost', { partitions: 2, configs: {} })
  await appendValues(store.partition('ghost', 1)!, ['boo'])
  await store.close()
  // The crash hit right after the catalogue entry was removed, before the data directories went.
  unlinkSync(join(dir, '__topics', `${store.getTopic('ghost')!.topicId}.json`))
  mkdirSync(join(dir, '0000-half-removed.deleting'))
  const logger = capturingLogger()
  const reopened = await openStore(dir, { logger })
  assert.equal(reopened.getTopic('ghost'), undefined)
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.startsWith('ghost') || n.endsWith('.deleting')),
    [],
  )
  assert.ok(logger.entries.some((e) => e.level === 'warn' && e.fields.dir === 'ghost-1'))
  await reopened.createTopic('ghost', { partitions: 2, configs: {} })
  assert.equal(reopened.partition('ghost', 1)!.highWatermark, 0n)
  await reopened.close()
})

test('partitions can be added and the existing ones keep their data', opts, async () => {
  const dir = tempDir()
  const store = await openStore(dir)
  await store.createTopic('grow', { partitions: 1, configs: {} })
  await appendValues(store.partition('grow', 0)!, ['kept'])
  const grown = await store.addPartitions('grow', 4)
  assert.equal(grown.partitions, 4)
  assert.equal(store.partition('grow', 0)!.highWatermark, 1n)
  assert.equal(store.partition('grow', 3)!.highWatermark, 0n)
  await assert.rejects(store.addPartitions('grow', 4), isConfigError)
  await assert.rejects(store.addPartitions('grow', 2), isConfigError)
  await assert.rejects(store.addPartitions('missing', 2), isConfigError)
  await store.close()
  const reopened = await openStore(dir)
  assert.equal(reopened.getTopic('grow')!.partitions, 4)
  assert.deepEqual(await readAllValues(reopened.partition('grow', 0)!), ['kept'])
  await reopened.close()
})

test('broker defaults apply beneath a topic’s own settings, and setTopicConfig persists', opts, async () => {
  const dir = tempDir()
  const defaults = { 'retention.ms': '3600000', 'segment.bytes': '1048576' }
  const store = await openStore(dir, { defaults })
  const info = await store.createTopic('tuned', { partitions: 1, configs: { 'segment.bytes': '4096' } })
  assert.equal(info.configs['retention.ms'], 3600000)
  assert.equal(info.configs['segment.bytes'], 4096)
  assert.deepEqual(info.explicitConfigs, { 'segment.bytes': '4096' })
  await store.setTopicConfig('tuned', { 'retention.bytes': '100000' })
  await assert.rejects(store.setTopicConfig('tuned', { 'retention.bytes': 'lots' }), isConfigError)
  await store.close()
  const reopened = await openStore(dir, { defaults })
  assert.deepEqual(reopened.getTopic('tuned')!.explicitConfigs, { 'retention.bytes': '100000' })
  assert.equal(reopened.getTopic('tuned')!.configs['segment.bytes'], 1048576)
  await reopened.close()
  await assert.rejects(openStore(dir, { defaults: { 'retention.ms': 'never' } }), isConfigError)
})

test('invalid names, duplicate names, bad partition counts and unknown configs are refused', opts, async () => {
  const store = await openStore(tempDir())
  for (const bad of ['', '.', '..', 'has space', 'slash/name', 'ünïcode', 'x'.repeat(250)]) {
    await assert.rejects(store.createTopic(bad, { partitions: 1, configs: {} }), isConfigError, JSON.stringify(bad))
  }
  await store.createTopic('x'.repeat(249), { partitions: 1, configs: {} })
  await store.createTopic('once', { partitions: 1, configs: {} })
  await assert.rejects(store.createTopic('once', { partitions: 1, configs: {} }), isConfigError)
  for (const partitions of [0, -1, 1.5, 10_001]) {
    await assert.rejects(store.createTopic('counted', { partitions, configs: {} }), isConfigError, String(partitions))
  }
  await assert.rejects(store.createTopic('cfg', { partitions: 1, configs: { 'no.such': '1' } }), isConfigError)
  await assert.rejects(store.createTopic('cfg', { partitions: 1, configs: { 'retention.ms': 'soon' } }), isConfigError)
  assert.equal(store.getTopic('cfg'), undefined)
  await store.close()
  await assert.rejects(store.createTopic('late', { partitions: 1, configs: {} }), (err) => isTidewayError(err, 'TIDEWAY_ERR_CLOSED'))
})

test('a damaged catalogue file stops the store from opening instead of being guessed at', opts, async () => {
  const dir = tempDir()
  const store = await openStore(dir)
  const { topicId } = await store.createTopic('fine', { partitions: 1, configs: {} })
  await store.close()
  writeFileSync(join(dir, '__topics', `${topicId}.json`), '{"name": "fi')
  await assert.rejects(openStore(dir), (err) => isConfigError(err) && (err as Error).message.includes(`${topicId}.json`))
})

test('applyRetention runs over every partition of every topic', opts, async () => {
  const clock = new ManualClock(50_000_000)
  const store = await openStore(tempDir(), { clock })
  await store.createTopic('short', { partitions: 2, configs: { 'segment.bytes': '1024', 'retention.ms': '1000' } })
  for (const p of [0, 1]) {
    for (let i = 0; i < 30; i++) {
      await appendValues(store.partition('short', p)!, [`${p}-${i}`.padEnd(40, '.')], { baseTimestamp: BigInt(clock.wallMs()) })
    }
  }
  clock.advance(10_000)
  const deleted = await store.applyRetention()
  assert.ok(deleted >= 2)
  assert.ok(store.partition('short', 0)!.logStartOffset > 0n && store.partition('short', 1)!.logStartOffset > 0n)
  await store.close()
})
