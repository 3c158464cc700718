// Restarts: a clean restart (SIGTERM, exit 0) keeps topics, partitions and data; a final segment
// with bytes chopped off mid-batch is recovered by truncating only the torn batch, and new
// records continue densely after the last whole batch.
import assert from 'node:assert/strict'
import { readdirSync, statSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { kcatReadPartition } from '../helpers/kcat.ts'
import { requireKcat, run } from '../helpers/tools.ts'

const { Kafka, logLevel } = kafkajs
const dir = tempDir('tideway-restart-')
const broker = new BrokerProcess(dir.path)

before(async () => {
  requireKcat()
  await broker.start()
})
after(async () => {
  await broker.kill9()
  dir.remove()
})

async function produceBatches(topic: string, batches: number, perBatch: number, tag: string) {
  const producer = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).producer()
  await producer.connect()
  for (let b = 0; b < batches; b++) {
    const messages = Array.from({ length: perBatch }, (_, i) => ({ value: `${tag}-${b}-${i}`, partition: 0 }))
    await producer.send({ topic, acks: -1, messages })
  }
  await producer.disconnect()
}


test('topics, partitions and data survive a clean restart', { timeout: 120_000 }, async () => {
  const topic = `restart-clean-${process.pid}`
  await createTopic(broker.bootstrap, topic, 4)
  await produceBatches(topic, 5, 20, 'clean')
  const beforeRestart = await kcatReadPartition(broker.bootstrap, topic, 0)
  assert.equal(await broker.stop(), 0, 'graceful shutdown exits 0')
  await broker.start()
  const metadata = await run('kcat', ['-L', '-J', '-b', broker.bootstrap, '-t', topic], { timeoutMs: 30_000 })
  const described = (JSON.parse(metadata.stdout) as { topics: { topic: string; partitions: unknown[] }[] }).topics.find((t) => t.topic === topic)
  assert.equal(described?.partitions.length, 4)
  assert.deepEqual(await kcatReadPartition(broker.bootstrap, topic, 0), beforeRestart)
  assert.equal(beforeRestart.length, 100)
})

test('a final segment chopped mid-batch loses only the torn batch; offsets continue densely', { timeout: 120_000 }, async () => {
  const topic = `restart-torn-${process.pid}`
  await createTopic(broker.bootstrap, topic, 1)
  await produceBatches(topic, 10, 10, 'torn')
  assert.equal(await broker.stop(), 0)

  const partitionDir = join(dir.path, `${topic}-0`)
  const segments = readdirSync(partitionDir).filter((n) => n.endsWith('.log')).sort()
  const last = join(partitionDir, segments.at(-1)!)
  const size = statSync(last).size
  truncateSync(last, size - 7) // cuts into the last batch only (each batch of 10 records is > 7 bytes)

  await broker.start()
  const recovered = await kcatReadPartition(broker.bootstrap, topic, 0)
  assert.equal(recovered.length, 90, 'the nine whole batches remain')
  assert.deepEqual(recovered.map((r) => r.value), Array.from({ length: 90 }, (_, i) => `torn-${Math.floor(i / 10)}-${i % 10}`))

  await produceBatches(topic, 1, 5, 'after')
  const continued = await kcatReadPartition(broker.bootstrap, topic, 0)
  assert.deepEqual(continued.map((r) => r.offset), Array.from({ length: 95 }, (_, i) => i), 'dense offsets after recovery')
  assert.deepEqual(continued.slice(90).map((r) => r.value), Array.from({ length: 5 }, (_, i) => `after-0-${i}`))
})
