// Idempotent producers through a proxy that loses Produce answers (research reliability.md §3):
// the proxy drops a share of the broker's Produce responses and cuts the connection, so the
// client cannot know whether its batch was stored and sends it again. python confluent-kafka
// (enable.idempotence, up to 5 requests in flight) and KafkaJS (idempotent: true) each write
// 20,000 records this way; every record must be stored exactly once, in order, without gaps.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { startBroker, type RunningBroker } from '../../src/broker/broker.ts'
import { silentLogger } from '../../src/logger.ts'
import { createTopic } from '../helpers/admin.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { FaultProxy } from '../helpers/fault-proxy.ts'
import { partitionValues, RawClient } from '../helpers/raw-client.ts'
import { assertExactlyOnceInOrder, writeWithKafkaJSIdempotent } from '../helpers/sequenced-records.ts'
import { PYTHON, requirePythonKafka, run } from '../helpers/tools.ts'

const PARTITIONS = 3
const RECORDS = 20_000
const DROP_CHANCE = 0.1
const PRODUCER_SCRIPT = fileURLToPath(new URL('../integration/clients/confluent_idempotent_producer.py', import.meta.url))

const dir = tempDir()
let proxy: FaultProxy
let broker: RunningBroker
let raw: RawClient

before(async () => {
  proxy = await FaultProxy.start(Number(process.env.SEED ?? 7))
  // Clients learn the proxy's address from Metadata, so every connection goes through it.
  broker = await startBroker({ port: 0, dataDir: dir.path, logger: silentLogger, advertisedHost: '127.0.0.1', advertisedPort: proxy.port })
  proxy.target = { host: broker.host, port: broker.port }
  raw = await RawClient.connect(broker.bootstrap)
})

after(async () => {
  raw?.socket.destroy()
  await proxy?.close()
  await broker?.close()
  dir.remove()
})

const assertStoredOnceInOrder = (topic: string, prefix: string) =>
  assertExactlyOnceInOrder((p) => partitionValues(raw, topic, p), prefix, RECORDS, PARTITIONS)

test('python confluent-kafka idempotent producer: 20,000 records through lost Produce answers, each stored once in order', { timeout: 180_000 }, async (t) => {
  requirePythonKafka()
  const topic = uniqueName('idem-faults-py')
  await createTopic(proxy.bootstrap, topic, PARTITIONS)
  const before = { ...proxy.stats }
  proxy.dropProduceResponseChance = DROP_CHANCE
  const result = await run(PYTHON, [PRODUCER_SCRIPT, proxy.bootstrap, topic, 'py', String(RECORDS), String(PARTITIONS)], { timeoutMs: 150_000 })
  proxy.dropProduceResponseChance = 0
  assert.equal(result.code, 0, result.stderr.slice(-2000))
  const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { delivered: number; errors: string[] }
  const dropped = proxy.stats.droppedProduceResponses - before.droppedProduceResponses
  t.diagnostic(`${report.delivered} delivered, ${report.errors.length} errors, ${dropped} Produce answers dropped of ${proxy.stats.produceRequests - before.produceRequests} requests`)
  assert.deepEqual(report, { delivered: RECORDS, errors: [] })
  assert.ok(dropped > 0, 'the proxy did drop answers')
  await assertStoredOnceInOrder(topic, 'py')
})

test('KafkaJS idempotent producer: 20,000 records through lost Produce answers, each stored once in order', { timeout: 180_000 }, async (t) => {
  const topic = uniqueName('idem-faults-js')
  await createTopic(proxy.bootstrap, topic, PARTITIONS)
  const before = { ...proxy.stats }
  try {
    await writeWithKafkaJSIdempotent(proxy.bootstrap, topic, {
      prefix: 'js',
      count: RECORDS,
      partitions: PARTITIONS,
      perSend: 100,
      onConnected: () => (proxy.dropProduceResponseChance = DROP_CHANCE),
    })
  } finally {
    proxy.dropProduceResponseChance = 0
  }
  const dropped = proxy.stats.droppedProduceResponses - before.droppedProduceResponses
  t.diagnostic(`${dropped} Produce answers dropped of ${proxy.stats.produceRequests - before.produceRequests} requests`)
  assert.ok(dropped > 0, 'the proxy did drop answers')
  await assertStoredOnceInOrder(topic, 'js')
})
