import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { systemClock } from '../../../src/clock.ts'
import { isTidewayError } from '../../../src/errors.ts'
import { silentLogger } from '../../../src/logger.ts'
import { nodeFileIO } from '../../../src/storage/file-io.ts'
import { TopicStore } from '../../../src/storage/topic-store.ts'
import { buildBatch } from '../../helpers/batches.ts'
import { tempDir } from '../../helpers/broker-process.ts'

const openStore = (dataDir: string) =>
  TopicStore.open({ dataDir, io: nodeFileIO, clock: systemClock, logger: silentLogger, flush: { mode: 'always' } })

test('topics, their configs and data survive reopening the store', { timeout: 30_000 }, async () => {
  const dir = tempDir()
  try {
    const store = await openStore(dir.path)
    const info = await store.createTopic('orders', { partitions: 3, configs: { 'retention.ms': '1000' } })
    assert.equal(info.partitions, 3)
    assert.equal(info.configs['retention.ms'], 1000)
    const { batch, header } = buildBatch([{ value: 'hello' }])
    await store.partition('orders', 2)!.append(batch, header)
    await store.close()

    const reopened = await openStore(dir.path)
    assert.deepEqual(reopened.listTopics().map((t) => [t.name, t.partitions, t.topicId]), [['orders', 3, info.topicId]])
    assert.deepEqual(reopened.getTopic('orders')!.explicitConfigs, { 'retention.ms': '1000' })
    assert.equal(reopened.partition('orders', 2)!.highWatermark, 1n)
    await reopened.close()
  } finally {
    dir.remove()
  }
})

test('a deleted topic can be created again, empty and with a new id', { timeout: 30_000 }, async () => {
  const dir = tempDir()
  try {
    const store = await openStore(dir.path)
    const first = await store.createTopic('events', { partitions: 1, configs: {} })
    const { batch, header } = buildBatch([{ value: 'old' }])
    await store.partition('events', 0)!.append(batch, header)
    await store.deleteTopic('events')
    assert.equal(store.getTopic('events'), undefined)
    assert.equal(existsSync(join(dir.path, 'events-0')), false)
    const second = await store.createTopic('events', { partitions: 1, configs: {} })
    assert.notEqual(second.topicId, first.topicId)
    assert.equal(store.partition('events', 0)!.highWatermark, 0n)
    await store.close()
  } finally {
    dir.remove()
  }
})

test('partitions can be added but the existing ones keep their data', { timeout: 30_000 }, async () => {
  const dir = tempDir()
  try {
    const store = await openStore(dir.path)
    await store.createTopic('grow', { partitions: 1, configs: {} })
    const { batch, header } = buildBatch([{ value: 'kept' }])
    await store.partition('grow', 0)!.append(batch, header)
    await store.addPartitions('grow', 4)
    assert.equal(store.getTopic('grow')!.partitions, 4)
    assert.equal(store.partition('grow', 0)!.highWatermark, 1n)
    assert.equal(store.partition('grow', 3)!.highWatermark, 0n)
    await assert.rejects(store.addPartitions('grow', 2), (err) => isTidewayError(err, 'TIDEWAY_ERR_CONFIG'))
    await store.close()
  } finally {
    dir.remove()
  }
})

test('invalid names, duplicate names and unknown configs are refused', { timeout: 30_000 }, async () => {
  const dir = tempDir()
  try {
    const store = await openStore(dir.path)
    const isConfig = (err: unknown) => isTidewayError(err, 'TIDEWAY_ERR_CONFIG')
    for (const bad of ['', '.', '..', 'has space', 'slash/name', 'x'.repeat(250)]) {
      await assert.rejects(store.createTopic(bad, { partitions: 1, configs: {} }), isConfig, JSON.stringify(bad))
    }
    await store.createTopic('once', { partitions: 1, configs: {} })
    await assert.rejects(store.createTopic('once', { partitions: 1, configs: {} }), isConfig)
    await assert.rejects(store.createTopic('cfg', { partitions: 1, configs: { 'no.such': '1' } }), isConfig)
    await assert.rejects(store.createTopic('cfg', { partitions: 1, configs: { 'retention.ms': 'soon' } }), isConfig)
    await store.close()
  } finally {
    dir.remove()
  }
})
