// Idempotency keys across broker crashes. A plain (not idempotent) librdkafka producer retries
// whatever a kill -9 left unanswered, which stores records twice on an ordinary topic; on a topic
// with tideway.dedup.enable the restarted broker, which rebuilt its window from the log, drops the
// second copies. Then, after one more kill -9, a KafkaJS process sends every key again: nothing
// is stored, and every answer is the original's offset.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ListOffsets } from '../../src/protocol/apis/index.ts'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { assertEachKeyOnce, kafkajsProduce, pythonProduce, pythonReadAll } from '../helpers/keyed-records.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { requirePythonKafka } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const PARTITIONS = 3
const KEYS = 20_000

const dir = tempDir()
const broker = new BrokerProcess(dir.path)
before(() => broker.start())
after(async () => {
  await broker.kill9()
  dir.remove()
})

/** The sum of the partitions' end offsets (ListOffsets latest). */
async function endOffsets(topic: string): Promise<number> {
  const raw = await RawClient.connect(broker.bootstrap)
  try {
    const response = await raw.request(ListOffsets, 5, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{ name: topic, partitions: Array.from({ length: PARTITIONS }, (_, p) => ({ partitionIndex: p, currentLeaderEpoch: -1, timestamp: -1n })) }],
    })
    return response.topics[0]!.partitions.reduce((sum, p) => sum + Number(p.offset), 0)
  } finally {
    raw.close()
  }
}

test('a retrying plain producer across two kill -9s, then every key resent after a third: each key stored once', { timeout: 300_000 }, async (t) => {
  requirePythonKafka()
  const keyed = uniqueName('keys-kill')
  const ordinary = uniqueName('keys-kill-control')
  await createTopic(broker.bootstrap, keyed, PARTITIONS, { 'tideway.dedup.enable': 'true' })
  await createTopic(broker.bootstrap, ordinary, PARTITIONS)

  // The same keys to both topics, paced so the broker can be killed mid-stream.
  const options = { 'enable.idempotence': false, 'message.send.max.retries': 1000, 'retry.backoff.ms': 50 }
  const writing = Promise.all([
    pythonProduce(broker.bootstrap, keyed, [0, KEYS], 'first', options, 1, 3_000),
    pythonProduce(broker.bootstrap, ordinary, [0, KEYS], 'first', options, 1, 3_000),
  ])
  writing.catch(() => {}) // awaited below
  for (const threshold of [5_000, 12_000]) {
    await waitFor(async () => (await endOffsets(keyed)) >= threshold, { timeoutMs: 60_000, intervalMs: 50, what: `${threshold} offsets on the keyed topic` })
    await broker.kill9()
    t.diagnostic(`broker killed with about ${threshold} records stored`)
    await broker.start()
  }
  const [onKeyed, onOrdinary] = await writing
  assert.deepEqual([onKeyed.delivered, onKeyed.errors, onOrdinary.delivered, onOrdinary.errors], [KEYS, [], KEYS, []])

  const control = await pythonReadAll(broker.bootstrap, ordinary, PARTITIONS)
  const before = assertEachKeyOnce(await pythonReadAll(broker.bootstrap, keyed, PARTITIONS), KEYS)
  t.diagnostic(`ordinary topic: ${control.records.length - KEYS} records stored twice by the producer's retries; keyed topic: 0`)

  await broker.kill9()
  await broker.start()
  const endBefore = await endOffsets(keyed)
  const answers = await kafkajsProduce(broker.bootstrap, keyed, [0, KEYS], 'again', ['--concurrency', '8'])
  assert.equal(await endOffsets(keyed), endBefore, 'nothing was stored again')
  const after = assertEachKeyOnce(await pythonReadAll(broker.bootstrap, keyed, PARTITIONS), KEYS)
  assert.deepEqual(after, before)
  for (const [key, [partition, offset]] of before) {
    assert.deepEqual([answers[key]![0], Number(answers[key]![1])], [partition, offset], `${key} is answered with its original`)
  }
  t.diagnostic(`${KEYS} keys resent after the third kill -9: 0 stored, ${KEYS} answered with the original offset`)
})
