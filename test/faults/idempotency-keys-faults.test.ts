// Idempotency keys through a proxy that loses Produce answers (test/helpers/fault-proxy.ts): a
// plain librdkafka producer (no idempotence, up to 5 requests in flight) never learns whether a
// batch whose answer was lost was stored, and sends it again. On an ordinary topic that stores
// records twice; on a topic with tideway.dedup.enable each key is stored once.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startBroker, type RunningBroker } from '../../src/broker/broker.ts'
import { silentLogger } from '../../src/logger.ts'
import { createTopic } from '../helpers/admin.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { FaultProxy } from '../helpers/fault-proxy.ts'
import { assertEachKeyOnce, pythonProduce, pythonReadAll } from '../helpers/keyed-records.ts'
import { requirePythonKafka } from '../helpers/tools.ts'

const PARTITIONS = 3
const KEYS = 20_000

const dir = tempDir()
let proxy: FaultProxy
let broker: RunningBroker

before(async () => {
  proxy = await FaultProxy.start(Number(process.env.SEED ?? 11))
  broker = await startBroker({ port: 0, dataDir: dir.path, logger: silentLogger, advertisedHost: '127.0.0.1', advertisedPort: proxy.port })
  proxy.target = { host: broker.host, port: broker.port }
})

after(async () => {
  await proxy?.close()
  await broker?.close()
  dir.remove()
})

test('a plain producer retrying through lost Produce answers stores duplicates on an ordinary topic and none on a keyed one', { timeout: 240_000 }, async (t) => {
  requirePythonKafka()
  const keyed = uniqueName('keys-proxy')
  const ordinary = uniqueName('keys-proxy-control')
  await createTopic(broker.bootstrap, keyed, PARTITIONS, { 'tideway.dedup.enable': 'true' })
  await createTopic(broker.bootstrap, ordinary, PARTITIONS)
  const options = { 'enable.idempotence': false, 'max.in.flight.requests.per.connection': 5, 'batch.num.messages': 50, 'linger.ms': 2 }
  proxy.dropProduceResponseChance = 0.1
  let results
  try {
    results = await Promise.all([keyed, ordinary].map((topic) => pythonProduce(proxy.bootstrap, topic, [0, KEYS], 'py', options)))
  } finally {
    proxy.dropProduceResponseChance = 0
  }
  for (const result of results) assert.deepEqual([result.delivered, result.errors], [KEYS, []])
  assert.ok(proxy.stats.droppedProduceResponses > 0, 'the proxy did drop answers')

  const control = await pythonReadAll(broker.bootstrap, ordinary, PARTITIONS)
  const twice = control.records.length - new Set(control.records.map((r) => r[2])).size
  assertEachKeyOnce(await pythonReadAll(broker.bootstrap, keyed, PARTITIONS), KEYS)
  t.diagnostic(`${proxy.stats.droppedProduceResponses} Produce answers dropped of ${proxy.stats.produceRequests}; ordinary topic: ${twice} records stored twice; keyed topic: 0`)
  assert.ok(twice > 0, 'the lost answers did make the producer store records twice on the ordinary topic')
})
