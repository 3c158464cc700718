// The two Node clients, unmodified: KafkaJS 2.2.4 (non-flexible versions only) and
// @platformatic/kafka 2.x (highest versions in our ranges, flexible where served). Each creates
// and deletes topics through its admin client and round-trips records through a group consumer.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Admin, Consumer, MessagesStreamModes, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import kafkajs from 'kafkajs'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs
let broker: EmbeddedBroker

before(async () => {
  broker = await embeddedBroker()
})
after(async () => {
  await broker?.dispose()
})

test('KafkaJS creates, lists and deletes topics through its admin client', { timeout: 60_000 }, async () => {
  const topic = uniqueName('kjs-admin')
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] }), true)
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] }), false, 'already exists')
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
    assert.equal(metadata.topics[0]!.partitions.length, 4)
    assert.ok((await admin.listTopics()).includes(topic))
    await admin.deleteTopics({ topics: [topic] })
    assert.ok(!(await admin.listTopics()).includes(topic))
  } finally {
    await admin.disconnect()
  }
})

test('KafkaJS adds partitions and reads topic configs with their defaults', { timeout: 60_000 }, async () => {
  const topic = uniqueName('kjs-configs')
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '60000' }] }] })
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
    assert.equal(metadata.topics[0]!.partitions.length, 3)
    await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] }), /partitions/i)

    const described = await admin.describeConfigs({ resources: [{ type: 2, name: topic }], includeSynonyms: false })
    const entries = new Map(described.resources[0]!.configEntries.map((e) => [e.configName, e]))
    assert.equal(entries.get('retention.ms')?.configValue, '60000')
    assert.equal(entries.get('retention.ms')?.isDefault, false)
    assert.equal(entries.get('cleanup.policy')?.configValue, 'delete')
    assert.equal(entries.get('cleanup.policy')?.isDefault, true)
  } finally {
    await admin.disconnect()
  }
})

test('KafkaJS produces keyed records and a group consumer reads every one back', { timeout: 90_000 }, async () => {
  const topic = uniqueName('kjs-roundtrip')
  const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] })
  await admin.disconnect()

  const producer = kafka.producer()
  await producer.connect()
  const messages = Array.from({ length: 300 }, (_, i) => ({ key: `key-${i % 10}`, value: `value-${i}`, headers: { seq: String(i) } }))
  for (let i = 0; i < messages.length; i += 50) await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 50) })
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: uniqueName('kjs-group') })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const received: { key: string; value: string; seq: string; partition: number }[] = []
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      received.push({ key: message.key!.toString(), value: message.value!.toString(), seq: message.headers!.seq!.toString(), partition })
    },
  })
  try {
    await waitFor(() => received.length >= messages.length, { timeoutMs: 60_000, what: 'all records consumed' })
  } finally {
    await consumer.disconnect()
  }
  assert.equal(received.length, messages.length)
  assert.deepEqual(received.map((r) => r.value).sort(), messages.map((m) => m.value).sort())
  for (const r of received) assert.equal(r.value, `value-${r.seq}`, 'headers travel with their record')
  for (let p = 0; p < 3; p++) {
    const seqs = received.filter((r) => r.partition === p).map((r) => Number(r.seq))
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), `partition ${p} keeps send order`)
  }
})

test('@platformatic/kafka creates and deletes topics and round-trips records', { timeout: 90_000 }, async () => {
  const topic = uniqueName('plt-roundtrip')
  const admin = new Admin({ clientId: 'plt-admin', bootstrapBrokers: [broker.bootstrap] })
  const producer = new Producer({ clientId: 'plt-producer', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers })
  const consumer = new Consumer({
    clientId: 'plt-consumer',
    groupId: uniqueName('plt-group'),
    bootstrapBrokers: [broker.bootstrap],
    deserializers: stringDeserializers,
  })
  try {
    const created = await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 })
    assert.equal(created[0]!.partitions, 2)
    assert.ok((await admin.listTopics()).includes(topic))

    const messages = Array.from({ length: 200 }, (_, i) => ({ topic, key: `k${i % 7}`, value: `v${i}`, headers: { n: String(i) } }))
    const result = await producer.send({ messages, acks: -1 })
    assert.ok(result.offsets && result.offsets.length > 0)

    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: true })
    const received: string[] = []
    for await (const message of stream) {
      assert.equal(message.headers.get('n'), message.value.slice(1))
      received.push(message.value)
      if (received.length === messages.length) break
    }
    await stream.close()
    assert.deepEqual(received.sort(), messages.map((m) => m.value).sort())

    await admin.deleteTopics({ topics: [topic] })
    assert.ok(!(await admin.listTopics()).includes(topic))
  } finally {
    await consumer.close(true)
    await producer.close()
    await admin.close()
  }
})
