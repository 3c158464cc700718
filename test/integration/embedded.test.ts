// The broker as a library: started in-process on port 0 with a temp directory, a KafkaJS client
// round-trips through it, and close() leaves no handle behind (sockets, servers, timers).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import kafkajs from 'kafkajs'
import { startBroker } from '../../src/index.ts'
import { silentLogger } from '../../src/logger.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs

function liveResources(): string[] {
  return process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'FSReqCallback')
}

test('an embedded broker serves a KafkaJS round trip and close() leaves no open handles', { timeout: 120_000 }, async () => {
  const before = liveResources()
  const dir = tempDir()
  const broker = await startBroker({ port: 0, dataDir: dir.path, logger: silentLogger })
  try {
    assert.ok(broker.port > 0)
    const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'embedded-test', logLevel: logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: 'embedded', numPartitions: 2 }] })
    await admin.disconnect()
    const messages = Array.from({ length: 100 }, (_, i) => ({ key: `k${i % 5}`, value: `value-${i}` }))
    await producer.send({ topic: 'embedded', acks: -1, messages })
    await producer.disconnect()

    const consumer = kafka.consumer({ groupId: 'embedded-group' })
    await consumer.connect()
    await consumer.subscribe({ topic: 'embedded', fromBeginning: true })
    const received: string[] = []
    await consumer.run({ eachMessage: async ({ message }) => void received.push(message.value!.toString()) })
    await waitFor(() => received.length >= messages.length, { timeoutMs: 60_000, what: '100 records consumed' })
    await consumer.disconnect()
    assert.deepEqual(received.sort(), messages.map((m) => m.value).sort())
  } finally {
    await broker.close()
    dir.remove()
  }
  await waitFor(() => liveResources().length <= before.length, { timeoutMs: 10_000, what: 'handles released' }).catch(() => {})
  assert.deepEqual(liveResources().sort(), before.sort(), 'no handle left behind')
})
