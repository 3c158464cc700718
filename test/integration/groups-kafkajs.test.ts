// Consumer groups with a real client: two KafkaJS 2.2.4 consumers in one group split a
// 3-partition topic (each partition consumed by exactly one of them), commit what they read,
// leave; a new consumer in the same group then resumes after the committed offsets and sees
// nothing old. Runs against an embedded broker on port 0 with a temporary data directory.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs
type Consumer = kafkajs.Consumer

const PARTITIONS = 3
const RECORDS = 300

let broker: EmbeddedBroker
let kafka: kafkajs.Kafka
const toClose: { disconnect(): Promise<void> }[] = []

before(async () => {
  broker = await embeddedBroker()
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'groups-test', logLevel: logLevel.NOTHING })
})

after(async () => {
  for (const c of toClose.splice(0).reverse()) await c.disconnect().catch(() => {})
  await broker?.dispose()
})

function consumer(groupId: string): Consumer {
  // Short heartbeat and fetch waits keep the test quick; the session timeout stays the default.
  const c = kafka.consumer({ groupId, heartbeatInterval: 500, maxWaitTimeInMs: 100 })
  toClose.push(c)
  return c
}

test('two KafkaJS consumers split a topic, commit, and a newcomer resumes after the commits', { timeout: 120_000 }, async () => {
  const topic = uniqueName('groups-topic')
  const groupId = uniqueName('groups-group')
  const admin = kafka.admin()
  toClose.push(admin)
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] })

  // Both members join, and the group settles, before any record exists: then no partition can
  // change hands while records are being read.
  const members = [consumer(groupId), consumer(groupId)]
  const seenBy = new Map<number, Set<number>>() // partition → consumer indexes
  const received = new Set<string>()
  for (const [index, member] of members.entries()) {
    await member.connect()
    await member.subscribe({ topic, fromBeginning: true })
    await member.run({
      eachMessage: async ({ partition, message }) => {
        if (!seenBy.has(partition)) seenBy.set(partition, new Set())
        seenBy.get(partition)!.add(index)
        received.add(message.value!.toString())
      },
    })
  }
  await waitFor(
    async () => {
      const { groups } = await admin.describeGroups([groupId])
      const group = groups[0]
      return group?.state === 'Stable' && group.members.length === 2 && group.members.every((m) => m.memberAssignment.length > 0)
    },
    { timeoutMs: 30_000, what: 'a Stable group of two with assignments' },
  )

  const producer = kafka.producer()
  toClose.push(producer)
  await producer.connect()
  const first = Array.from({ length: RECORDS }, (_, i) => ({ partition: i % PARTITIONS, value: `old-${i}` }))
  await producer.send({ topic, acks: -1, messages: first })

  await waitFor(() => received.size === RECORDS, { timeoutMs: 30_000, what: `${RECORDS} records consumed` })
  assert.deepEqual([...seenBy.keys()].sort(), [0, 1, 2])
  for (const [partition, owners] of seenBy) assert.equal(owners.size, 1, `partition ${partition} was read by one member`)
  const owners = new Set([...seenBy.values()].flatMap((s) => [...s]))
  assert.equal(owners.size, 2, 'both members got partitions')

  // Commits are acknowledged after fsync; wait until all of them are visible through OffsetFetch.
  const perPartition = String(RECORDS / PARTITIONS)
  await waitFor(
    async () => {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
      return committed?.partitions.length === PARTITIONS && committed.partitions.every((p) => p.offset === perPartition)
    },
    { timeoutMs: 30_000, what: 'offsets committed at the end of every partition' },
  )
  for (const member of members) await member.disconnect()

  const fresh = Array.from({ length: 30 }, (_, i) => ({ partition: i % PARTITIONS, value: `new-${i}` }))
  await producer.send({ topic, acks: -1, messages: fresh })

  const newcomer = consumer(groupId)
  const resumed: string[] = []
  await newcomer.connect()
  await newcomer.subscribe({ topic, fromBeginning: true })
  await newcomer.run({ eachMessage: async ({ message }) => void resumed.push(message.value!.toString()) })
  // Old records sit before the new ones in every partition, so a consumer that ignored the
  // commits would see them first.
  await waitFor(() => resumed.length >= fresh.length, { timeoutMs: 30_000, what: 'the new records consumed' })
  assert.deepEqual(resumed.sort(), fresh.map((m) => m.value).sort())
  await newcomer.disconnect()
  await producer.disconnect()
  await admin.disconnect()
})
