// Idempotency-key dedup with real clients (tideway.dedup.enable; storage/dedup-window.ts). Two
// producer processes of different clients send overlapping keys; compressed batches mixing new
// and repeated keys are rewritten and read back; consumers of every client move past the holes
// and markers dedup leaves; the window forgets by count and by time.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Consumer, MessagesStreamModes } from '@platformatic/kafka'
import kafkajs from 'kafkajs'
import { ManualClock } from '../../src/clock.ts'
import { createTopic } from '../helpers/admin.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { kcatReadPartition } from '../helpers/kcat.ts'
import { assertEachKeyOnce, kafkajsProduce, pythonProduce, pythonReadAll } from '../helpers/keyed-records.ts'
import { requireKcat, requirePythonKafka } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const DEDUP = { 'tideway.dedup.enable': 'true' }

let broker: EmbeddedBroker
before(async () => {
  broker = await embeddedBroker()
})
after(() => broker.dispose())

test('two producer processes, librdkafka and KafkaJS, with 50% overlapping keys: each key stored once, each answer the stored copy', { timeout: 300_000 }, async (t) => {
  requirePythonKafka()
  const topic = uniqueName('keys-overlap')
  await createTopic(broker.bootstrap, topic, 3, DEDUP)
  // librdkafka: idempotent, lz4, batched (mixed batches and all-duplicate markers), paced so it
  // meets KafkaJS inside the shared keys; KafkaJS: idempotent, one record per send (each answer
  // is that record's offset).
  const [python, js] = await Promise.all([
    pythonProduce(broker.bootstrap, topic, [0, 10_000], 'py', { 'enable.idempotence': true, 'compression.type': 'lz4' }, 1, 2_500),
    kafkajsProduce(broker.bootstrap, topic, [5_000, 15_000], 'js', ['--idempotent']),
  ])
  assert.deepEqual([python.delivered, python.errors], [10_000, []])
  assert.equal(Object.keys(js).length, 10_000)

  const read = await pythonReadAll(broker.bootstrap, topic, 3)
  const stored = assertEachKeyOnce(read, 15_000)
  let pythonCopies = 0
  for (const [key, [partition, offset, value]] of stored) {
    if (value.startsWith('py:')) {
      pythonCopies++
      assert.deepEqual(python.reports[key], [partition, offset], `${key}: librdkafka's answer is where its copy is`)
    }
    const answer = js[key]
    if (answer) assert.deepEqual([answer[0], Number(answer[1])], [partition, offset], `${key}: KafkaJS's answer is the stored copy's offset`)
  }
  const offsets = Object.values(read.ends).reduce((a, b) => a + b, 0)
  t.diagnostic(`15,000 distinct keys from 20,000 sends: ${pythonCopies} librdkafka copies, ${15_000 - pythonCopies} KafkaJS copies, 0 stored twice; ${offsets - 15_000} offsets left as holes or markers`)
})

for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
  test(`${codec} batches mixing new and repeated keys are rewritten without the repeats and read back intact`, { timeout: 120_000 }, async () => {
    requirePythonKafka()
    const topic = uniqueName(`keys-${codec}`)
    await createTopic(broker.bootstrap, topic, 2, DEDUP)
    const options = { 'compression.type': codec, 'linger.ms': 20 }
    const first = await pythonProduce(broker.bootstrap, topic, [0, 1_000], 'first', options, 2) // even keys
    const second = await pythonProduce(broker.bootstrap, topic, [0, 1_500], 'second', options) // every batch half repeats
    assert.deepEqual([first.delivered, second.delivered, first.errors, second.errors], [500, 1_500, [], []])
    const stored = assertEachKeyOnce(await pythonReadAll(broker.bootstrap, topic, 2), 1_500)
    for (const [key, [, , value]] of stored) {
      const i = Number(key.slice(2))
      assert.equal(value, `${i < 1_000 && i % 2 === 0 ? 'first' : 'second'}:${key}`, `${key} holds its first copy`)
      const report = (i < 1_000 && i % 2 === 0 ? first : second).reports[key]!
      assert.deepEqual(report, stored.get(key)!.slice(0, 2), `${key}: the producer's answer for its stored copy is exact`)
    }
  })
}

test('consumers of every client move past holes and the marker at the end of a partition, and commit the end', { timeout: 120_000 }, async () => {
  requirePythonKafka()
  requireKcat()
  const topic = uniqueName('keys-tail')
  await createTopic(broker.bootstrap, topic, 1, DEDUP)
  const kafka = new kafkajs.Kafka({ brokers: [broker.bootstrap], clientId: 'keys-tail', logLevel: kafkajs.logLevel.NOTHING })
  const send = async (producer: kafkajs.Producer, keys: string[]) =>
    (await producer.send({ topic, acks: -1, messages: keys.map((key) => ({ key, value: `v:${key}`, headers: { 'idempotency-key': key } })) }))[0]!
  const plain = kafka.producer()
  const idempotent = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await Promise.all([plain.connect(), idempotent.connect()])
  try {
    assert.equal((await send(plain, ['a0', 'a1', 'a2', 'a3'])).baseOffset, '0')
    assert.equal((await send(plain, ['b0', 'a3'])).baseOffset, '4', 'b0 at 4, a hole at 5')
    assert.equal((await send(idempotent, ['a1', 'a2'])).baseOffset, '1', 'only repeats: answered with a1\'s offset; a marker holds 6-7')
  } finally {
    await Promise.all([plain.disconnect(), idempotent.disconnect()])
  }
  const expected = ['a0', 'a1', 'a2', 'a3', 'b0']
  const end = 8

  const python = await pythonReadAll(broker.bootstrap, topic, 1)
  assert.deepEqual(python.records.map((r) => r[2]), expected, 'librdkafka')
  assert.deepEqual(python.positions, { '0': end }, 'librdkafka ends past the marker')

  const kcat = await kcatReadPartition(broker.bootstrap, topic, 0)
  assert.deepEqual(kcat.map((r) => [r.offset, r.value]), [[0, 'v:a0'], [1, 'v:a1'], [2, 'v:a2'], [3, 'v:a3'], [4, 'v:b0']], 'kcat -e reads to the end and stops')

  const admin = kafka.admin()
  await admin.connect()
  const committed = async (groupId: string) => Number((await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions[0]!.offset)
  try {
    const jsGroup = uniqueName('keys-tail-js')
    const consumer = kafka.consumer({ groupId: jsGroup, maxWaitTimeInMs: 100 })
    const seen: string[] = []
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    // KafkaJS commits after batches with records; a batch it skips whole (the marker) only
    // moves its position, committed by the next interval or threshold (as after Kafka's own
    // transaction markers), so a threshold of 1 shows the position reached the end.
    await consumer.run({ autoCommitThreshold: 1, eachMessage: async ({ message }) => void seen.push(message.key!.toString()) })
    try {
      await waitFor(async () => seen.length >= expected.length && (await committed(jsGroup)) === end, { timeoutMs: 30_000, intervalMs: 100, what: 'KafkaJS to commit the end' })
    } finally {
      await consumer.disconnect()
    }
    assert.deepEqual(seen, expected, 'KafkaJS')

    const pltGroup = uniqueName('keys-tail-plt')
    const platformatic = new Consumer({ clientId: 'keys-tail-plt', groupId: pltGroup, bootstrapBrokers: [broker.bootstrap], maxWaitTime: 100 })
    const got: string[] = []
    try {
      const stream = await platformatic.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: 100 })
      stream.on('data', (message: { key: Buffer }) => void got.push(message.key.toString()))
      await waitFor(async () => got.length >= expected.length && (await committed(pltGroup)) === end, { timeoutMs: 30_000, intervalMs: 100, what: 'platformatic to commit the end' })
    } finally {
      await platformatic.close(true)
    }
    assert.deepEqual(got, expected, '@platformatic/kafka')
  } finally {
    await admin.disconnect()
  }
})

test('the window forgets a key once its original is more than window.records offsets back, or older than window.ms', { timeout: 60_000 }, async () => {
  const clock = new ManualClock(Date.now())
  const local = await embeddedBroker({ clock })
  try {
    const topic = uniqueName('keys-window')
    await createTopic(local.bootstrap, topic, 1, { ...DEDUP, 'tideway.dedup.window.records': '50', 'tideway.dedup.window.ms': '60000' })
    const kafka = new kafkajs.Kafka({ brokers: [local.bootstrap], clientId: 'keys-window', logLevel: kafkajs.logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    const send = async (key: string) => Number((await producer.send({ topic, acks: -1, messages: [{ value: key, headers: { 'idempotency-key': key } }] }))[0]!.baseOffset)
    try {
      assert.equal(await send('x'), 0)
      assert.equal(await send('x'), 0, 'inside the window: answered with the original')
      for (let i = 0; i < 49; i++) await send(`filler-${i}`)
      assert.equal(await send('x'), 0, 'the original is 50 offsets back: still inside')
      await send('filler-49')
      assert.equal(await send('x'), 51, '51 offsets back: stored again')
      assert.equal(await send('x'), 51)
      clock.advance(60_000)
      assert.equal(await send('x'), 51, 'exactly window.ms old: still inside')
      clock.advance(1)
      assert.equal(await send('x'), 52, 'older than window.ms: stored again')
    } finally {
      await producer.disconnect()
    }
  } finally {
    await local.dispose()
  }
})
