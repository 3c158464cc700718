// Compacted topics with real clients against a broker process: KafkaJS creates a topic with
// cleanup.policy=compact (CreateTopics) and switches another one to it (AlterConfigs), a record
// without a key is refused with INVALID_RECORD, and once the cleaner has run, KafkaJS (from the
// beginning) and kcat (librdkafka) read exactly each live key's last value at the offset its
// producer was told, stepping over the holes, gzip batches included.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { kcatReadPartition } from '../helpers/kcat.ts'
import { requireKcat } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel, CompressionTypes } = kafkajs
const dir = tempDir('tideway-compaction-')
const broker = new BrokerProcess(dir.path, ['--cleaner-interval-ms', '100'])
let kafka: kafkajs.Kafka

before(async () => {
  requireKcat()
  await broker.start()
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'compaction-test', logLevel: logLevel.NOTHING, retry: { retries: 0 } })
})
after(async () => {
  await broker.kill9()
  dir.remove()
})

const compacted = { 'cleanup.policy': 'compact', 'segment.bytes': '2048', 'segment.ms': '1000', 'delete.retention.ms': '0' }

/** 1,000 records over 50 keys in gzip batches of 20, then tombstones for k0..k4; returns each key's last [offset, value]. */
async function produceKeyed(topic: string): Promise<Map<string, [number, string | null]>> {
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const last = new Map<string, [number, string | null]>()
  try {
    for (let n = 0; n < 1000; n += 20) {
      const messages = Array.from({ length: 20 }, (_, i) => ({ key: `k${(n + i) % 50}`, value: `value-${n + i}` }))
      const [meta] = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages })
      messages.forEach((m, i) => last.set(m.key, [Number(meta!.baseOffset) + i, m.value]))
    }
    const tombstones = Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: null }))
    const [meta] = await producer.send({ topic, acks: -1, messages: tombstones })
    tombstones.forEach((m, i) => last.set(m.key, [Number(meta!.baseOffset) + i, null]))
    // segment.ms passes, so this record rolls the segment and everything before it is cleanable.
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const [rolled] = await producer.send({ topic, acks: -1, messages: [{ key: 'roll', value: 'roll' }] })
    last.set('roll', [Number(rolled!.baseOffset), 'roll'])
  } finally {
    await producer.disconnect()
  }
  return last
}

/** What a compacted topic must read as: each live key's last value at its offset, ascending. */
const expectedOf = (last: Map<string, [number, string | null]>) =>
  [...last.values()].filter(([, value]) => value !== null).map(([offset, value]) => ({ offset, value: value! })).sort((a, b) => a.offset - b.offset)

async function kafkajsReadAll(topic: string, until: number): Promise<{ offset: number; key: string; value: string | null }[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('compaction-reader') })
  const seen: { offset: number; key: string; value: string | null }[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    let last = -1
    await consumer.run({ eachMessage: async ({ message }) => void (seen.push({ offset: Number(message.offset), key: message.key!.toString(), value: message.value?.toString() ?? null }), (last = Number(message.offset))) })
    await waitFor(() => last >= until, { timeoutMs: 20_000, what: `KafkaJS to read up to offset ${until}` })
  } finally {
    await consumer.disconnect()
  }
  return seen
}

test('a compacted topic refuses a record without a key, as Kafka does (INVALID_RECORD)', { timeout: 30_000 }, async () => {
  const topic = uniqueName('compacted-keyless')
  await createTopic(broker.bootstrap, topic, 1, compacted)
  const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })
  await producer.connect()
  try {
    await assert.rejects(producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'ok' }, { value: 'no key' }] }), (err: Error & { type?: string }) => err.type === 'INVALID_RECORD' || /INVALID_RECORD|without key/.test(String(err.message)))
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'ok' }] })
  } finally {
    await producer.disconnect()
  }
  const stored = await kcatReadPartition(broker.bootstrap, topic, 0)
  assert.deepEqual(stored, [{ offset: 0, value: 'ok' }], 'the refused batch stored nothing')
})

test('created compacted: after cleaning KafkaJS and kcat read each live key\'s last value at its acknowledged offset, and no deleted key', { timeout: 60_000 }, async () => {
  const topic = uniqueName('compacted')
  await createTopic(broker.bootstrap, topic, 1, compacted)
  const expected = expectedOf(await produceKeyed(topic))
  assert.equal(expected.length, 46, '45 live keys and the roll record')
  await waitFor(async () => (await kcatReadPartition(broker.bootstrap, topic, 0)).length === expected.length || undefined, { timeoutMs: 30_000, intervalMs: 200, what: 'the cleaner to compact the topic' })
  assert.deepEqual(await kcatReadPartition(broker.bootstrap, topic, 0), expected)
  const read = await kafkajsReadAll(topic, expected.at(-1)!.offset)
  assert.deepEqual(read.map(({ offset, value }) => ({ offset, value })), expected)
  assert.ok(read.every((r) => !['k0', 'k1', 'k2', 'k3', 'k4'].includes(r.key)), 'no deleted key')
})

test('altered to compact with AlterConfigs: the cleaner compacts what the topic already held', { timeout: 60_000 }, async () => {
  const topic = uniqueName('altered')
  await createTopic(broker.bootstrap, topic, 1, { 'segment.bytes': '2048', 'segment.ms': '1000' })
  const expected = expectedOf(await produceKeyed(topic))
  assert.equal((await kcatReadPartition(broker.bootstrap, topic, 0)).length, 1006, 'nothing removed while the topic is not compacted')
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configEntries: Object.entries(compacted).map(([name, value]) => ({ name, value })) }] })
  } finally {
    await admin.disconnect()
  }
  await waitFor(async () => (await kcatReadPartition(broker.bootstrap, topic, 0)).length === expected.length || undefined, { timeoutMs: 30_000, intervalMs: 200, what: 'the cleaner to compact the altered topic' })
  assert.deepEqual(await kcatReadPartition(broker.bootstrap, topic, 0), expected)
})

test('the acceptance run with real clients: 100,000 records over 1,000 keys, 100 deleted; kcat from offset 0 reads each live key once, at its offset, and the disk usage drops', { timeout: 120_000 }, async (t) => {
  const topic = uniqueName('compacted-100k')
  await createTopic(broker.bootstrap, topic, 1, { 'cleanup.policy': 'compact', 'segment.bytes': '1048576', 'segment.ms': '2000', 'delete.retention.ms': '0' })
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const last = new Map<string, [number, string | null]>()
  try {
    for (let n = 0; n < 100_000; n += 1000) {
      const messages = Array.from({ length: 1000 }, (_, i) => ({ key: `key-${(n + i) % 1000}`, value: `value-${n + i}` }))
      const [meta] = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages })
      messages.forEach((m, i) => last.set(m.key, [Number(meta!.baseOffset) + i, m.value]))
    }
    const tombstones = Array.from({ length: 100 }, (_, i) => ({ key: `key-${i * 10}`, value: null }))
    const [meta] = await producer.send({ topic, acks: -1, messages: tombstones })
    tombstones.forEach((m, i) => last.set(m.key, [Number(meta!.baseOffset) + i, null]))
    await new Promise((resolve) => setTimeout(resolve, 2100)) // segment.ms: the next record rolls the segment
    const [rolled] = await producer.send({ topic, acks: -1, messages: [{ key: 'roll', value: 'roll' }] })
    last.set('roll', [Number(rolled!.baseOffset), 'roll'])
  } finally {
    await producer.disconnect()
  }
  const metric = async (name: string) => {
    const text = await (await fetch(`${broker.httpUrl}/metrics`)).text()
    return Number(new RegExp(`^${name}\\{topic="${topic}"(,partition="0")?\\} (\\d+)$`, 'm').exec(text)?.[2])
  }
  // What was written is what the log held before cleaning (the cleaner may start before a scrape).
  const before = await metric('tideway_produced_bytes_total')
  const expected = expectedOf(last)
  assert.equal(expected.length, 901, '900 live keys and the roll record')
  await waitFor(async () => (await kcatReadPartition(broker.bootstrap, topic, 0)).length === expected.length || undefined, { timeoutMs: 60_000, intervalMs: 500, what: 'the cleaner to compact 100,000 records' })
  const read = await kcatReadPartition(broker.bootstrap, topic, 0)
  assert.deepEqual(read, expected, 'exactly the last value of each live key, at the offset its producer was told')
  const after = await metric('tideway_log_bytes')
  assert.equal(await metric('tideway_cleaner_records_removed_total'), 100_101 - expected.length, 'the cleaner counts every record it removed')
  t.diagnostic(`100,101 records, ${before} bytes on disk before cleaning, ${after} after (${expected.length} records left)`)
  assert.ok(after < before / 10, `disk usage dropped: ${before} -> ${after} bytes`)
})
