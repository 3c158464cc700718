// The idempotent producer on the wire and with real clients: InitProducerId hands out ids that
// stay unique across restarts; a Produce retried with the same producer id, epoch and sequence
// is answered with the original offset and stored once (also after a restart); a sequence gap
// is OUT_OF_ORDER_SEQUENCE_NUMBER and an older epoch INVALID_PRODUCER_EPOCH; KafkaJS
// (idempotent: true) and python confluent-kafka (enable.idempotence=true) produce through it.
// The fault-proxy and kill -9 acceptance runs of issue 5 build on this.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import kafkajs from 'kafkajs'
import { CreateTopics, Fetch, InitProducerId, Produce } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { buildBatch, valuesOf } from '../helpers/batches.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { restartableBroker, uniqueName } from '../helpers/embedded.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { PYTHON, requirePythonKafka, run } from '../helpers/tools.ts'

const dir = tempDir()
const brokers = restartableBroker(dir.path)
const start = brokers.start
after(async () => {
  await brokers.closeAll()
  dir.remove()
})

const initProducerId = async (client: RawClient) =>
  client.request(InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })

async function produce(client: RawClient, topic: string, producerId: bigint, producerEpoch: number, baseSequence: number, values: string[]) {
  const { batch } = buildBatch(values.map((value) => ({ value })), { producerId, producerEpoch, baseSequence })
  const response = await client.request(Produce, 8, { acks: -1, timeoutMs: 10_000, topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }] })
  return response.responses[0]!.partitionResponses[0]!
}

async function storedValues(client: RawClient, topic: string): Promise<string[]> {
  const response = await client.request(Fetch, 11, {
    maxWaitMs: 0,
    minBytes: 0,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
    forgottenTopicsData: [],
  })
  return valuesOf(response.responses[0]!.partitions[0]!.records!)
}

test('retried idempotent batches are stored once and answered with the original offset, across a restart', { timeout: 60_000 }, async () => {
  let { broker, client } = await start()
  const topic = uniqueName('idempotent')
  await client.request(CreateTopics, 5, { topics: [{ name: topic, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false })

  const first = await initProducerId(client)
  const second = await initProducerId(client)
  assert.equal(first.errorCode, ErrorCode.NONE)
  assert.notEqual(first.producerId, second.producerId)
  const pid = first.producerId

  const original = await produce(client, topic, pid, 0, 0, ['a', 'b'])
  assert.deepEqual([original.errorCode, original.baseOffset], [ErrorCode.NONE, 0n])
  const retry = await produce(client, topic, pid, 0, 0, ['a', 'b'])
  assert.deepEqual([retry.errorCode, retry.baseOffset], [ErrorCode.NONE, 0n], 'a retry is a success with the original offset')
  assert.equal((await produce(client, topic, pid, 0, 2, ['c'])).baseOffset, 2n)
  assert.equal((await produce(client, topic, pid, 0, 9, ['gap'])).errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
  assert.equal((await produce(client, topic, pid, 1, 0, ['new epoch'])).errorCode, ErrorCode.NONE)
  assert.equal((await produce(client, topic, pid, 0, 3, ['old epoch'])).errorCode, ErrorCode.INVALID_PRODUCER_EPOCH)
  const transactional = await client.request(InitProducerId, 4, { transactionalId: 'tx', transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })
  assert.equal(transactional.errorCode, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)

  await broker.close()
  ;({ broker, client } = await start())
  const afterRestart = await produce(client, topic, pid, 1, 0, ['new epoch'])
  assert.deepEqual([afterRestart.errorCode, afterRestart.baseOffset], [ErrorCode.NONE, 3n], 'the producer state came back with the log')
  assert.deepEqual(await storedValues(client, topic), ['a', 'b', 'c', 'new epoch'])
  const fresh = await initProducerId(client)
  assert.ok(fresh.producerId > second.producerId, 'ids are never handed out twice, restarts included')
})

test('KafkaJS and python confluent-kafka idempotent producers write every record once', { timeout: 90_000 }, async () => {
  requirePythonKafka()
  const { broker } = await start()
  const kafka = new kafkajs.Kafka({ brokers: [broker.bootstrap], clientId: 'idempotent-test', logLevel: kafkajs.logLevel.NOTHING })
  const topic = uniqueName('idempotent-clients')
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] })
  await admin.disconnect()

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (let i = 0; i < 20; i++) {
    await producer.send({ topic, acks: -1, messages: Array.from({ length: 50 }, (_, j) => ({ key: `k${j % 7}`, value: `js-${i * 50 + j}` })) })
  }
  await producer.disconnect()

  const script = `
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True, "linger.ms": 5})
errors = []
for i in range(1000):
    p.produce(sys.argv[2], key=str(i % 7).encode(), value=("py-%d" % i).encode(), on_delivery=lambda e, m: e and errors.append(str(e)))
left = p.flush(30)
print(left, len(errors), errors[:3])
`
  const result = await run(PYTHON, ['-c', script, broker.bootstrap, topic], { timeoutMs: 60_000 })
  assert.equal(result.code, 0, result.stderr)
  assert.equal(result.stdout.trim(), '0 0 []', 'every python record delivered')

  const consumer = kafka.consumer({ groupId: uniqueName('idempotent-read'), maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen: string[] = []
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${seen.length} of 2000 records read`)), 30_000)
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value!.toString())
        if (seen.length === 2000) {
          clearTimeout(timer)
          resolve()
        }
      },
    }).catch(reject)
  })
  await consumer.disconnect()
  assert.equal(new Set(seen).size, 2000, 'each record once')
})
