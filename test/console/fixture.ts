// What the console tests look at, made with real parts: records produced by KafkaJS (keys,
// headers, JSON, text and binary values) on a two-partition topic, a group with committed
// offsets and lag, a live SDK consumer whose handler throws so a record is dead-lettered, sagas
// run by the orchestrator in SQLite, and circuit breakers in the shared Redis under a unique
// prefix. In CI (CI=true) a missing Redis or Chromium fails the tests; elsewhere they are skipped
// with the reason.
import { existsSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import kafkajs from 'kafkajs'
import { Redis } from 'ioredis'
import { createConsumer, PermanentFailure, type TidewayConsumer } from '../../src/index.ts'
import { createCircuitBreaker, sharedState } from '../../src/patterns/index.ts'
import { defineSaga } from '../../src/patterns/saga/definition.ts'
import { SagaOrchestrator } from '../../src/patterns/saga/orchestrator.ts'
import { sqliteStore } from '../../src/stores/sqlite.ts'
import { createTopic } from '../helpers/admin.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs

export const CHROMIUM = '/usr/bin/chromium'
export const REDIS_URL = `redis://127.0.0.1:${Number(process.env['TIDEWAY_TEST_REDIS_PORT'] ?? 6379)}`
const inCI = process.env['CI'] === 'true'

/** Fails in CI, or gives the reason to skip elsewhere, when `ok` is false. */
export function required(ok: boolean, what: string): string | false {
  if (ok) return false
  if (inCI) throw new Error(`${what} is required in CI`)
  return `${what} is missing: skipped (it fails in CI)`
}

export const hasChromium = () => existsSync(CHROMIUM)

export async function redisReachable(): Promise<boolean> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.ping()
    return true
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

export interface Seeded {
  readonly orders: string
  readonly payments: string
  readonly dlt: string
  readonly auditGroup: string
  readonly paymentsGroup: string
  readonly sagaDb: string
  readonly breakerPrefix: string | null
  /** Values the payments handler saw, in order. */
  readonly handled: string[]
  /** Stops the consumer and deletes the breakers' keys. */
  dispose(): Promise<void>
}

export const BINARY_VALUE = Buffer.from([0x00, 0x9f, 0xff, 0x10, 0x80])
export const BIG_VALUE = 'x'.repeat(10_000)

export async function seed(bootstrap: string, options: { sagaDb: string; breakerPrefix: string | null }): Promise<Seeded> {
  const kafka = new Kafka({ brokers: [bootstrap], clientId: 'console-test', logLevel: logLevel.NOTHING })
  const orders = uniqueName('orders')
  const payments = uniqueName('payments')
  const auditGroup = uniqueName('audit')
  const paymentsGroup = uniqueName('billing')
  await createTopic(bootstrap, orders, 2)
  await createTopic(bootstrap, payments, 1)

  const producer = kafka.producer()
  await producer.connect()
  try {
    await producer.send({
      topic: orders,
      messages: [
        { partition: 0, key: 'order-1001', value: JSON.stringify({ orderId: 1001, total: 42.5, items: ['tea', 'cups'] }), headers: { 'trace-id': 'trace-abc', source: 'web' } },
        { partition: 0, key: 'order-1002', value: BINARY_VALUE, headers: { 'content-type': 'application/octet-stream' } },
        { partition: 0, key: 'order-1003', value: 'plain text <b>not bold</b>' },
        { partition: 0, key: null, value: BIG_VALUE },
        { partition: 1, key: 'order-2001', value: JSON.stringify({ orderId: 2001, total: 7 }) },
      ],
    })
    await producer.send({ topic: payments, messages: [{ partition: 0, key: 'pay-1', value: 'ok' }, { partition: 0, key: 'pay-2', value: 'poison' }, { partition: 0, key: 'pay-3', value: 'ok' }] })
  } finally {
    await producer.disconnect()
  }

  // A group without members that has read one record of partition 0: lag 3 there.
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.setOffsets({ groupId: auditGroup, topic: orders, partitions: [{ partition: 0, offset: '1' }] })
  } finally {
    await admin.disconnect()
  }

  // A live member whose handler refuses one record: it goes to payments.dlt.
  const handled: string[] = []
  const failing = new Set(['poison'])
  const consumer: TidewayConsumer = createConsumer({
    bootstrap,
    groupId: paymentsGroup,
    topics: [payments],
    delivery: 'at-least-once',
    retry: { attempts: 1, initialDelayMs: 1, maxDelayMs: 1 },
    handler: async (message) => {
      const value = message.value!.toString()
      if (failing.has(value)) throw new PermanentFailure(`cannot settle ${value}`)
      handled.push(value)
    },
  })
  await consumer.start()
  await waitFor(() => handled.length === 2 && consumer.stats.deadLettered === 1, { timeoutMs: 20_000, what: 'the poison record dead-lettered' })
  // The cause is fixed: a redriven copy is handled.
  failing.clear()

  const { sagaDb, breakerPrefix } = options
  await runSagas(sagaDb)
  if (breakerPrefix) await openBreakers(breakerPrefix)

  return {
    orders,
    payments,
    dlt: `${payments}.dlt`,
    auditGroup,
    paymentsGroup,
    sagaDb,
    breakerPrefix,
    handled,
    async dispose() {
      await consumer.stop()
      if (breakerPrefix) await deleteKeys(breakerPrefix)
    },
  }
}

/** order-1001 completes; order-1002's card is declined and its stock reservation is compensated. */
async function runSagas(path: string): Promise<void> {
  const store = sqliteStore(path)
  const saga = defineSaga({
    name: 'place-order',
    version: 3,
    steps: [
      { name: 'reserve-stock', invoke: async () => 'reservation-7', compensate: async () => {} },
      { name: 'charge-card', invoke: async (ctx) => ((ctx.input as { cents: number }).cents > 10_000 ? Promise.reject(new PermanentFailure('card declined')) : 'charge-9') },
      { name: 'ship-order', invoke: async () => 'parcel-3' },
    ],
  })
  const orchestrator = new SagaOrchestrator({ store, sagas: [saga], timerPollIntervalMs: 20 })
  try {
    await orchestrator.start()
    await orchestrator.startSaga('place-order', 'order-1001', { cents: 4_250 })
    await orchestrator.startSaga('place-order', 'order-1002', { cents: 99_000 })
    await orchestrator.settled('order-1001')
    await orchestrator.settled('order-1002')
  } finally {
    await orchestrator.stop()
    await store.close()
  }
}

/** checkout->payments opened by two failures; checkout->stock closed with one failure in three calls. */
export const uniquePrefix = () => `tideway-test:console:${randomUUID()}:`

async function openBreakers(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  try {
    const state = sharedState({ redis, prefix, timeoutMs: 2_000 })
    const payments = createCircuitBreaker({ caller: 'checkout', callee: 'payments', window: { kind: 'count', size: 4 }, minimumCalls: 2, openDurationMs: 600_000, state })
    const stock = createCircuitBreaker({ caller: 'checkout', callee: 'stock', window: { kind: 'count', size: 10 }, minimumCalls: 5, state })
    const fail = async () => {
      throw new Error('callee down')
    }
    for (const call of [fail, fail]) await payments.execute(call).catch(() => {})
    for (const call of [fail, async () => 'ok', async () => 'ok']) await stock.execute(call).catch(() => {})
  } finally {
    redis.disconnect()
  }
}

async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

/** Every record of a topic's partition 0, read from the beginning by a KafkaJS consumer. */
export async function readAll(bootstrap: string, topic: string, atLeast: number): Promise<kafkajs.KafkaMessage[]> {
  const kafka = new Kafka({ brokers: [bootstrap], clientId: 'console-test-reader', logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: uniqueName('reader') })
  const seen: kafkajs.KafkaMessage[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void seen.push(message) })
    await waitFor(() => seen.length >= atLeast, { timeoutMs: 20_000, what: `${atLeast} records on ${topic}` })
  } finally {
    await consumer.disconnect()
  }
  return seen
}
