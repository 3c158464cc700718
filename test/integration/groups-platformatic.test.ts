// @platformatic/kafka 2.x in a consumer group with explicit commits: a consumer handles records
// and commits each one after handling it, up to a different offset per partition, reads a little
// further without committing, and closes. A new consumer in the same group (a restarted service)
// must resume exactly at the committed offsets: the first record it sees per partition is the
// committed one, and it sees every record from there once.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Admin, Consumer, MessagesStreamFallbackModes, MessagesStreamModes, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'

const PARTITIONS = 3
const PER_PARTITION = 100
/** Per partition: commit records below this offset; the restarted consumer starts here. */
const COMMIT_UP_TO = [40, 1, 77]

let broker: EmbeddedBroker
before(async () => {
  broker = await embeddedBroker()
})
after(async () => {
  await broker?.dispose()
})

function consumer(groupId: string): Consumer<string, string, string, string> {
  return new Consumer({
    clientId: 'plt-group-consumer',
    groupId,
    bootstrapBrokers: [broker.bootstrap],
    deserializers: stringDeserializers,
    heartbeatInterval: 500,
    maxWaitTime: 200,
  })
}

test('@platformatic/kafka: a restarted group consumer resumes exactly at the committed offsets', { timeout: 90_000 }, async () => {
  const topic = uniqueName('plt-resume')
  const groupId = uniqueName('plt-resume-group')
  const admin = new Admin({ clientId: 'plt-admin', bootstrapBrokers: [broker.bootstrap] })
  const producer = new Producer({ clientId: 'plt-producer', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers })
  const first = consumer(groupId)
  const second = consumer(groupId)
  try {
    await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 })
    const messages = Array.from({ length: PARTITIONS * PER_PARTITION }, (_, i) => ({
      topic,
      partition: i % PARTITIONS,
      value: `${i % PARTITIONS}:${Math.floor(i / PARTITIONS)}`,
    }))
    await producer.send({ messages, acks: -1 })

    // First run: handle, then commit, below COMMIT_UP_TO; beyond it handle without committing
    // (work lost to a crash), until every partition has gone a few records past its target.
    const firstStream = await first.consume({ topics: [topic], mode: MessagesStreamModes.COMMITTED, fallbackMode: MessagesStreamFallbackModes.EARLIEST, autocommit: false })
    const handledBeyond = new Map<number, number>()
    for await (const message of firstStream) {
      const offset = Number(message.offset)
      assert.equal(message.value, `${message.partition}:${offset}`)
      if (offset < COMMIT_UP_TO[message.partition]!) await message.commit()
      else handledBeyond.set(message.partition, offset)
      if (handledBeyond.size === PARTITIONS && [...handledBeyond].every(([p, o]) => o >= COMMIT_UP_TO[p]! + 5)) break
    }
    await firstStream.close()
    await first.close(true)

    const [committed] = await admin.listConsumerGroupOffsets({ groups: [groupId] })
    const byPartition = new Map(committed!.topics.find((t) => t.name === topic)!.partitions.map((p) => [p.partitionIndex, p.committedOffset]))
    assert.deepEqual(
      Array.from({ length: PARTITIONS }, (_, p) => byPartition.get(p)),
      COMMIT_UP_TO.map(BigInt),
      'OffsetFetch returns each partition\'s last commit',
    )

    // Second run: a new process would start here.
    const secondStream = await second.consume({ topics: [topic], mode: MessagesStreamModes.COMMITTED, fallbackMode: MessagesStreamFallbackModes.FAIL, autocommit: false })
    const seen = new Map<number, number[]>()
    let remaining = COMMIT_UP_TO.reduce((sum, from) => sum + PER_PARTITION - from, 0)
    for await (const message of secondStream) {
      const list = seen.get(message.partition) ?? []
      list.push(Number(message.offset))
      seen.set(message.partition, list)
      if (--remaining === 0) break
    }
    await secondStream.close()
    for (let p = 0; p < PARTITIONS; p++) {
      const expected = Array.from({ length: PER_PARTITION - COMMIT_UP_TO[p]! }, (_, i) => COMMIT_UP_TO[p]! + i)
      assert.deepEqual(seen.get(p), expected, `partition ${p} resumes at ${COMMIT_UP_TO[p]} and reads each later record once`)
    }
  } finally {
    await second.close(true)
    await first.close(true).catch(() => {})
    await producer.close()
    await admin.close()
  }
})
