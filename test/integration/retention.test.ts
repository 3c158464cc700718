// Retention on a running broker, with short settings: by time (retention.ms) and by size
// (retention.bytes) old segments go in the background while producers keep writing; the log
// start offset moves; a Fetch below it is OFFSET_OUT_OF_RANGE; and a KafkaJS consumer whose
// committed offset fell below it resets as its policy says (to the earliest record still kept).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { Fetch, OffsetCommit } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { createTopic } from '../helpers/admin.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { logStartOffset, RawClient } from '../helpers/raw-client.ts'
import { waitFor } from '../helpers/wait.ts'

let broker: EmbeddedBroker
let raw: RawClient
let kafka: kafkajs.Kafka
before(async () => {
  broker = await embeddedBroker({ retentionCheckIntervalMs: 100 })
  raw = await RawClient.connect(broker.bootstrap)
  kafka = new kafkajs.Kafka({ brokers: [broker.bootstrap], clientId: 'retention-test', logLevel: kafkajs.logLevel.NOTHING })
})
after(async () => {
  raw?.socket.destroy()
  await broker?.dispose()
})

const VALUE = 'x'.repeat(200)

async function produce(topic: string, count: number, prefix: string): Promise<void> {
  const producer = kafka.producer()
  await producer.connect()
  try {
    // One record per request: each its own batch, so segments of 1 KiB roll every few records.
    for (let i = 0; i < count; i++) await producer.send({ topic, acks: -1, messages: [{ value: `${prefix}-${i}-${VALUE}` }] })
  } finally {
    await producer.disconnect()
  }
}

const startOf = (topic: string) => logStartOffset(raw, topic)

async function fetchError(topic: string, offset: bigint): Promise<number> {
  const response = await raw.request(Fetch, 11, {
    maxWaitMs: 0,
    minBytes: 0,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }],
    forgottenTopicsData: [],
  })
  return response.responses[0]!.partitions[0]!.errorCode
}

test('retention.ms deletes old segments in the background; fetch below the start is OFFSET_OUT_OF_RANGE; a consumer resets', { timeout: 60_000 }, async () => {
  const topic = uniqueName('retention-time')
  const groupId = uniqueName('retention-group')
  await createTopic(broker.bootstrap, topic, 1, { 'retention.ms': '1000', 'segment.bytes': '1024' })
  await produce(topic, 30, 'old')
  // A group that had read only the first 2 records.
  await raw.request(OffsetCommit, 8, {
    groupId,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, committedOffset: 2n, committedLeaderEpoch: -1, committedMetadata: null }] }],
  })
  // Past the retention period the old segments go while new records keep arriving.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  await produce(topic, 10, 'new')
  const start = await waitFor(async () => {
    const s = await startOf(topic)
    return s >= 20n ? s : undefined
  }, { timeoutMs: 20_000, what: 'retention to move the log start offset' })
  assert.equal(await fetchError(topic, 0n), ErrorCode.OFFSET_OUT_OF_RANGE)
  // The newest record sits in the active segment, which retention never deletes. (Records above
  // `start` may meanwhile age out too: the 'new' ones pass retention.ms a second after they came.)
  assert.equal(await fetchError(topic, 39n), ErrorCode.NONE)

  // The group's commit (2) is below the start now: KafkaJS resets to the earliest kept record.
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const offsets: bigint[] = []
  await consumer.run({ eachMessage: async ({ message }) => void offsets.push(BigInt(message.offset)) })
  await waitFor(() => offsets.length > 0 && offsets.at(-1) === 39n, { timeoutMs: 20_000, what: 'the consumer to read to the end' })
  await consumer.disconnect()
  assert.ok(offsets[0]! >= start, `reset to ${offsets[0]}, at or after the log start ${start}`)
  assert.ok(offsets[0]! <= (await startOf(topic)), 'and to the earliest record kept')
})

test('retention.bytes keeps the partition near its size limit, dropping the oldest segments', { timeout: 60_000 }, async () => {
  const topic = uniqueName('retention-size')
  await createTopic(broker.bootstrap, topic, 1, { 'retention.bytes': '3000', 'segment.bytes': '1024' })
  await produce(topic, 60, 'r')
  // About 270 bytes a record: 3000 bytes hold around 11 records, plus the active segment, so the
  // start moves past offset 35 once retention has caught up with the writes.
  const start = await waitFor(async () => {
    const s = await startOf(topic)
    return s >= 35n ? s : undefined
  }, { timeoutMs: 20_000, what: 'size retention to keep only the newest segments' })
  assert.equal(await fetchError(topic, start - 1n), ErrorCode.OFFSET_OUT_OF_RANGE)
})
