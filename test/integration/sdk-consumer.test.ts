// The SDK's producer and consumer (src/sdk/) against a broker address: retries, failure classes,
// dead letters with provenance, and the contract of each delivery mode in the normal case. Only
// the broker's address is used (no broker internals), so this suite runs against any
// Kafka-protocol cluster: set TIDEWAY_TEST_BOOTSTRAP to point it at one.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { join } from 'node:path'
import { createConsumer, createProducer, ExpectedFailure, PermanentFailure, sqliteStore, TransientFailure, type IncomingMessage } from '../../src/index.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { createTopic } from '../helpers/admin.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { waitFor } from '../helpers/wait.ts'

let broker: EmbeddedBroker | undefined
let bootstrap: string
before(async () => {
  if (process.env.TIDEWAY_TEST_BOOTSTRAP) bootstrap = process.env.TIDEWAY_TEST_BOOTSTRAP
  else {
    broker = await embeddedBroker()
    bootstrap = broker.bootstrap
  }
})
after(() => broker?.dispose())

const fastRetry = { attempts: 4, initialDelayMs: 5, maxDelayMs: 20 }

async function committedOffset(groupId: string, topic: string): Promise<number> {
  const admin = new kafkajs.Kafka({ brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    return Number((await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions[0]!.offset)
  } finally {
    await admin.disconnect()
  }
}

async function readAll(topic: string, count: number) {
  const kafka = new kafkajs.Kafka({ brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 100 })
  const seen: kafkajs.KafkaMessage[] = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => void seen.push(message) })
  try {
    await waitFor(() => seen.length >= count, { timeoutMs: 20_000, what: `${count} records on ${topic}` })
  } finally {
    await consumer.disconnect()
  }
  return seen
}

test('at-least-once: each record handled in order, a transient failure retried, a permanent one dead-lettered with provenance, expected ones skipped', { timeout: 60_000 }, async () => {
  const topic = uniqueName('sdk-alo')
  await createTopic(bootstrap, topic, 1)
  const producer = createProducer({ bootstrap, delivery: 'at-least-once' })
  for (let i = 0; i < 20; i++) await producer.send(topic, { key: 'k', value: `m${i}`, idempotencyKey: `id-${i}` })
  await producer.close()

  const handled: string[] = []
  let transientLeft = 2
  const groupId = uniqueName('sdk-alo-group')
  const consumer = createConsumer({
    bootstrap,
    groupId,
    topics: [topic],
    delivery: 'at-least-once',
    retry: fastRetry,
    handler: async (message: IncomingMessage) => {
      const value = message.value!.toString()
      if (value === 'm5' && transientLeft-- > 0) throw new TransientFailure('database busy')
      if (value === 'm7') throw new PermanentFailure('malformed payload')
      if (value === 'm9') throw new ExpectedFailure('account closed')
      handled.push(value)
    },
  })
  await consumer.start()
  try {
    await waitFor(async () => handled.length === 18 && (await committedOffset(groupId, topic)) === 20, { timeoutMs: 20_000, what: 'every record handled and committed' })
  } finally {
    await consumer.stop()
  }
  assert.deepEqual(handled, Array.from({ length: 20 }, (_, i) => `m${i}`).filter((v) => v !== 'm7' && v !== 'm9'))
  assert.deepEqual({ retried: consumer.stats.retried, deadLettered: consumer.stats.deadLettered }, { retried: 2, deadLettered: 1 })

  const [dead] = await readAll(`${topic}.dlt`, 1)
  const header = (name: string) => dead!.headers![name]?.toString()
  assert.equal(dead!.value!.toString(), 'm7')
  assert.equal(dead!.key!.toString(), 'k')
  assert.deepEqual(
    ['source-topic', 'source-partition', 'source-offset', 'group', 'error-class', 'error', 'attempts'].map((h) => header(`tideway-dlt-${h}`)),
    [topic, '0', '7', groupId, 'permanent', 'malformed payload', '1'],
  )
  assert.equal(header('tideway-original-idempotency-key'), 'id-7', 'the record\'s own key travels with it')
  assert.equal(header('idempotency-key'), `dlt:${groupId}:${topic}:0:7`, 'the copy has a key of its own')
  assert.ok(Date.parse(header('tideway-dlt-first-failure')!) <= Date.parse(header('tideway-dlt-last-failure')!))
})

test('at-most-once: the offset is committed before handling, and a failed record is dropped after one attempt', { timeout: 60_000 }, async () => {
  const topic = uniqueName('sdk-amo')
  await createTopic(bootstrap, topic, 1)
  const producer = createProducer({ bootstrap, delivery: 'at-most-once' })
  for (let i = 0; i < 10; i++) await producer.send(topic, { value: `m${i}` })
  await producer.close()
  const groupId = uniqueName('sdk-amo-group')
  const seen: string[] = []
  const committedWhenHandled: number[] = []
  const consumer = createConsumer({
    bootstrap,
    groupId,
    topics: [topic],
    delivery: 'at-most-once',
    handler: async (message) => {
      seen.push(message.value!.toString())
      if (message.offset === 3n) committedWhenHandled.push(await committedOffset(groupId, topic))
      if (message.offset === 4n) throw new TransientFailure('not retried in at-most-once')
    },
  })
  await consumer.start()
  try {
    await waitFor(() => seen.length === 10, { timeoutMs: 20_000, what: 'ten records' })
  } finally {
    await consumer.stop()
  }
  assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => `m${i}`), 'each once, the failed one included')
  assert.ok(committedWhenHandled[0]! > 3, 'record 3 was committed before its handler ran')
  assert.deepEqual([consumer.stats.dropped, consumer.stats.retried], [1, 0])
  assert.equal(await committedOffset(groupId, topic), 10)
})

test('modes are checked: exactly-once needs a store, and an idempotency key on every message', async () => {
  assert.throws(() => createConsumer({ bootstrap, groupId: 'g', topics: ['t'], delivery: 'exactly-once', handler: () => {} }), /needs a store/)
  assert.throws(() => createConsumer({ bootstrap, groupId: 'g', topics: ['t'], delivery: 'twice' as never, handler: () => {} }), /delivery must be/)
  const producer = createProducer({ bootstrap, delivery: 'exactly-once' })
  try {
    await assert.rejects(producer.send('t', { value: 'no key' }), /needs an idempotencyKey/)
  } finally {
    await producer.close()
  }
})

test('middleware wraps the handler in order inside each attempt, and the trace context flows on to the next message', { timeout: 60_000 }, async () => {
  const [first, second] = [uniqueName('sdk-trace-a'), uniqueName('sdk-trace-b')]
  await createTopic(bootstrap, first, 1)
  await createTopic(bootstrap, second, 1)
  const producer = createProducer({ bootstrap, delivery: 'at-least-once' })
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  await producer.send(first, { value: 'hello', traceparent })

  const calls: string[] = []
  const seen: { topic: string; traceId: string | undefined; parentSpan: string | undefined }[] = []
  const started: string[] = []
  const onStart = (event: unknown) => started.push((event as { trace: { traceId: string } }).trace.traceId)
  subscribe('tracing:tideway:consume:start', onStart)
  let failOnce = true
  const consumer = createConsumer({
    bootstrap,
    groupId: uniqueName('sdk-trace-group'),
    topics: [first, second],
    delivery: 'at-least-once',
    retry: fastRetry,
    middleware: [
      async (_message, ctx, next) => {
        calls.push(`outer-in-${ctx.attempt}`)
        await next()
        calls.push(`outer-out-${ctx.attempt}`)
      },
      async (_message, ctx, next) => {
        calls.push(`inner-${ctx.attempt}`)
        await next()
      },
    ],
    handler: async (message, ctx) => {
      seen.push({ topic: message.topic, traceId: message.trace?.traceId, parentSpan: message.trace?.spanId })
      if (message.topic === first) {
        if (failOnce) {
          failOnce = false
          throw new TransientFailure('once')
        }
        assert.equal(ctx.trace.traceId, message.trace!.traceId, 'the handling is a span of the record\'s trace')
        await producer.send(second, { value: 'next', traceparent: ctx.traceparent })
      }
    },
  })
  await consumer.start()
  try {
    await waitFor(() => seen.some((s) => s.topic === second), { timeoutMs: 20_000, what: 'the forwarded message' })
  } finally {
    await consumer.stop()
    await producer.close()
    unsubscribe('tracing:tideway:consume:start', onStart)
  }
  assert.deepEqual(calls.slice(0, 5), ['outer-in-1', 'inner-1', 'outer-in-2', 'inner-2', 'outer-out-2'], 'outermost first; a failed attempt unwinds without outer-out')
  const forwarded = seen.find((s) => s.topic === second)!
  assert.equal(forwarded.traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'one trace across both messages')
  assert.notEqual(forwarded.parentSpan, '00f067aa0ba902b7', 'whose parent is the first handling\'s span')
  assert.ok(started.filter((id) => id === '4bf92f3577b34da6a3ce929d0e0e4736').length >= 3, 'the tracing channel saw each attempt')
})

test('exactly-once restores the offsets of its store before joining, so it reads on from where its database is', { timeout: 60_000 }, async () => {
  const topic = uniqueName('sdk-restore')
  await createTopic(bootstrap, topic, 1)
  const producer = createProducer({ bootstrap, delivery: 'exactly-once' })
  for (let i = 0; i < 10; i++) await producer.send(topic, { value: `m${i}`, idempotencyKey: `${topic}-${i}` })
  await producer.close()
  const dir = tempDir()
  const store = sqliteStore(join(dir.path, 'restore.db'))
  const groupId = uniqueName('sdk-restore-group')
  // A consumer applied records 0-4 and died before its Kafka commit: the database says 5.
  await store.migrate()
  await store.transaction((tx) => tx.setPartitionOffset(groupId, topic, 0, 5n))
  const seen: bigint[] = []
  const consumer = createConsumer({ bootstrap, groupId, topics: [topic], delivery: 'exactly-once', store, handler: (message) => void seen.push(message.offset) })
  await consumer.start()
  try {
    await waitFor(() => seen.length === 5, { timeoutMs: 20_000, what: 'records 5-9' })
    await waitFor(async () => (await committedOffset(groupId, topic)) === 10, { timeoutMs: 20_000, what: 'the group committed the end' })
  } finally {
    await consumer.stop()
    await store.close()
    dir.remove()
  }
  assert.deepEqual(seen, [5n, 6n, 7n, 8n, 9n])
  assert.equal(consumer.stats.skippedAsApplied, 0, 'records 0-4 were never even fetched: the group started at the restored offset')
})

test('decode turns values into typed bodies first; a value that does not decode is dead-lettered at once', { timeout: 60_000 }, async () => {
  const topic = uniqueName('sdk-decode')
  await createTopic(bootstrap, topic, 1)
  const producer = createProducer({ bootstrap, delivery: 'at-least-once' })
  for (const value of ['{"cents":5}', 'not json', '{"cents":7}']) await producer.send(topic, { value })
  await producer.close()
  const cents: number[] = []
  let attempts = 0
  const consumer = createConsumer<{ cents: number }>({
    bootstrap,
    groupId: uniqueName('sdk-decode-group'),
    topics: [topic],
    delivery: 'at-least-once',
    retry: fastRetry,
    decode: (value) => JSON.parse(value!.toString()) as { cents: number },
    handler: async (message) => {
      attempts++
      cents.push(message.body.cents)
    },
  })
  await consumer.start()
  try {
    await waitFor(() => cents.length === 2 && consumer.stats.deadLettered === 1, { timeoutMs: 20_000, what: 'two handled, one dead-lettered' })
  } finally {
    await consumer.stop()
  }
  assert.deepEqual(cents, [5, 7])
  assert.equal(attempts, 2, 'the handler never saw the undecodable record')
  assert.equal(consumer.stats.retried, 0, 'and it was not retried')
  const [dead] = await readAll(`${topic}.dlt`, 1)
  assert.equal(dead!.value!.toString(), 'not json')
  assert.equal(dead!.headers!['tideway-dlt-error-class']!.toString(), 'permanent')
  assert.match(dead!.headers!['tideway-dlt-error']!.toString(), /does not decode/)
})
