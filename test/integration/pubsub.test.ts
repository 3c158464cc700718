// Topic kinds with a real client (KafkaJS): on a pubsub topic a consumer group that subscribes
// after 1,000 records sees none of them, even asking for the beginning, and sees what comes
// next; once every subscribed group has committed past them, the old segments are deleted
// from disk. A stream topic keeps them, and a new group replays from offset 0.
import assert from 'node:assert/strict'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { createTopic } from '../helpers/admin.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { logStartOffset, RawClient } from '../helpers/raw-client.ts'
import { waitFor } from '../helpers/wait.ts'

let broker: EmbeddedBroker
let kafka: kafkajs.Kafka
let raw: RawClient
const toClose: { disconnect(): Promise<void> }[] = []

before(async () => {
  broker = await embeddedBroker({ retentionCheckIntervalMs: 100 })
  kafka = new kafkajs.Kafka({ brokers: [broker.bootstrap], clientId: 'pubsub-test', logLevel: kafkajs.logLevel.NOTHING })
  raw = await RawClient.connect(broker.bootstrap)
})
after(async () => {
  for (const c of toClose.splice(0).reverse()) await c.disconnect().catch(() => {})
  raw?.socket.destroy()
  await broker?.dispose()
})

/** 1 KiB segments: each 100-record request below becomes a segment of its own. */
const SMALL_SEGMENTS = { 'segment.bytes': '1024' }

async function produce(topic: string, from: number, count: number): Promise<void> {
  const producer = kafka.producer()
  toClose.push(producer)
  await producer.connect()
  for (let start = from; start < from + count; start += 100) {
    const messages = Array.from({ length: Math.min(100, from + count - start) }, (_, i) => ({ value: `m-${start + i}-${'x'.repeat(80)}` }))
    await producer.send({ topic, acks: -1, messages })
  }
  await producer.disconnect()
}

/** A group member that asks for the beginning; returns the offsets it is handed. */
async function subscribe(topic: string, groupId: string): Promise<bigint[]> {
  const offsets: bigint[] = []
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, heartbeatInterval: 500 })
  toClose.push(consumer)
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
  await consumer.run({ eachMessage: async ({ message }) => void offsets.push(BigInt(message.offset)) })
  await joined
  return offsets
}

const startOf = (topic: string) => logStartOffset(raw, topic)

function bytesOnDisk(topic: string): number {
  const dir = join(broker.dataDir, `${topic}-0`)
  return readdirSync(dir).filter((n) => n.endsWith('.log')).reduce((sum, n) => sum + statSync(join(dir, n)).size, 0)
}

test('pubsub: late subscribers start at the end, and segments go once every group has them', { timeout: 90_000 }, async (t) => {
  const topic = uniqueName('pubsub')
  await createTopic(broker.bootstrap, topic, 1, { 'tideway.topic.kind': 'pubsub', ...SMALL_SEGMENTS })
  const admin = kafka.admin()
  toClose.push(admin)
  await admin.connect()
  const described = await admin.describeConfigs({ resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false })
  const kind = described.resources[0]!.configEntries.find((e) => e.configName === 'tideway.topic.kind')
  assert.equal(kind?.configValue, 'pubsub', 'DescribeConfigs shows the kind')

  // Nobody is subscribed yet, so these go as soon as their segments are sealed.
  await produce(topic, 0, 1000)
  const firstGroup = await subscribe(topic, uniqueName('sub-a'))
  const secondGroup = await subscribe(topic, uniqueName('sub-b'))
  await produce(topic, 1000, 300)
  const expected = Array.from({ length: 300 }, (_, i) => BigInt(1000 + i))
  await waitFor(() => firstGroup.length >= 300 && secondGroup.length >= 300, { timeoutMs: 30_000, what: 'both groups to read the new records' })
  assert.deepEqual(firstGroup, expected, 'the first group saw only what came after it subscribed')
  assert.deepEqual(secondGroup, expected, 'so did the second')

  // Once both have committed (KafkaJS commits after each batch), everything below is deleted.
  const start = await waitFor(async () => {
    const s = await startOf(topic)
    return s >= 1200n ? s : undefined
  }, { timeoutMs: 30_000, what: 'consumed segments to be deleted' })
  const bytes = bytesOnDisk(topic)
  t.diagnostic(`log start ${start}, ${bytes} bytes left on disk for 1,300 records of about 100 bytes`)
  assert.ok(bytes < 40_000, `${bytes} bytes left`)
})

test('stream: the same records stay, and a new group replays from offset 0', { timeout: 90_000 }, async () => {
  const topic = uniqueName('stream')
  await createTopic(broker.bootstrap, topic, 1, SMALL_SEGMENTS)
  await produce(topic, 0, 1000)
  const replay = await subscribe(topic, uniqueName('replay'))
  await waitFor(() => replay.length >= 1000, { timeoutMs: 30_000, what: 'the group to replay the topic' })
  assert.equal(replay[0], 0n)
  await new Promise((resolve) => setTimeout(resolve, 500)) // several retention passes
  assert.equal(await startOf(topic), 0n, 'nothing deleted')
  assert.ok(bytesOnDisk(topic) > 1000 * 80, 'every record still on disk')
})
