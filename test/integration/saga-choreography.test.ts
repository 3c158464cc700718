// Acceptance 3 of sagas: the subscription flow choreographed, with no orchestrator. The caller
// arms a stored deadline for the saga's correlation id and emits "subscription requested"; the
// subscription service creates the subscription (exactly-once) and emits "subscription created";
// the payment service charges and emits "payment completed", except for a user it stalls on
// (it never answers). The deadline watcher then emits the saga's failure event, and the
// subscription service's compensation handler cancels the subscription. A saga that completes
// clears its deadline, which then never fires. Every event carries the correlation id and the
// caller's trace. Deadlines are 300 ms, configured; nothing asserts how long anything took.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTopic } from '../helpers/admin.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { waitFor } from '../helpers/wait.ts'
import { correlationIdOf, createDeadlineWatcher, sagaEvent, startCompensationHandler, type FailureEvent } from '../../src/patterns/saga/choreography.ts'
import { createConsumer, type IncomingMessage } from '../../src/sdk/consumer.ts'
import { createProducer } from '../../src/sdk/producer.ts'
import { parseTraceparent } from '../../src/sdk/trace.ts'
import { sql, testDatabase } from './clients/saga_fixtures.ts'

const dir = tempDir('tideway-saga-choreo-')
let broker: EmbeddedBroker
before(async () => {
  broker = await embeddedBroker()
})
after(async () => {
  await broker.dispose()
  dir.remove()
})

test('a stalled service trips the stored deadline, the failure event runs the compensation, and a completed saga clears its deadline', { timeout: 120_000 }, async (t) => {
  const prefix = uniqueName('choreo')
  const topic = (name: string) => `${prefix}.${name}`
  for (const name of ['requested', 'created', 'paid', 'failed']) await createTopic(broker.bootstrap, topic(name), 1)
  const db = await testDatabase('postgres', dir.path)
  const store = db.open()
  const bootstrap = broker.bootstrap
  const stops: (() => Promise<unknown>)[] = []
  try {
    const watcher = createDeadlineWatcher({ store, bootstrap, saga: 'subscribe', failureTopic: topic('failed'), pollIntervalMs: 50 })
    await watcher.start()
    stops.push(() => watcher.stop())
    await store.transaction((tx) => tx.query(`CREATE TABLE subscriptions (correlation_id TEXT PRIMARY KEY, status TEXT NOT NULL)`))
    const producer = createProducer({ bootstrap, delivery: 'at-least-once' })
    stops.push(() => producer.close())
    const common = { bootstrap, sessionTimeoutMs: 6_000, retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 100 } }
    const json = (m: IncomingMessage) => JSON.parse(m.value!.toString()) as { user: string }

    // The subscription service: creates the subscription, then says so.
    const subscriptions = createConsumer({
      ...common,
      groupId: `${prefix}-subscription`,
      topics: [topic('requested')],
      delivery: 'exactly-once',
      store,
      handler: async (message, ctx) => {
        const correlationId = correlationIdOf(message)!
        await ctx.tx!.query(sql(store, `INSERT INTO subscriptions (correlation_id, status) VALUES (?, 'active')`), [correlationId])
        await producer.send(topic('created'), sagaEvent(correlationId, json(message), { traceparent: ctx.traceparent, saga: 'subscribe' }))
      },
    })
    // Its compensation: triggered by the saga's failure event, once per saga.
    const compensations: FailureEvent[] = []
    const compensation = await startCompensationHandler({
      ...common,
      store,
      groupId: `${prefix}-subscription-compensation`,
      failureTopics: [topic('failed')],
      compensate: async (event, { tx }) => {
        compensations.push(event)
        await tx.query(sql(store, `UPDATE subscriptions SET status = 'cancelled' WHERE correlation_id = ?`), [event.correlationId])
      },
    })
    // The payment service: stalls on one user, never answering.
    const payments = createConsumer({
      ...common,
      groupId: `${prefix}-payment`,
      topics: [topic('created')],
      delivery: 'at-least-once',
      handler: async (message, ctx) => {
        if (json(message).user === 'stalled') return
        await producer.send(topic('paid'), sagaEvent(correlationIdOf(message)!, json(message), { traceparent: ctx.traceparent, saga: 'subscribe' }))
      },
    })
    // The caller: the saga is over when the payment is completed.
    const paid: IncomingMessage[] = []
    const caller = createConsumer({
      ...common,
      groupId: `${prefix}-caller`,
      topics: [topic('paid')],
      delivery: 'at-least-once',
      handler: async (message) => {
        paid.push(message)
        await watcher.clear(correlationIdOf(message)!)
      },
    })
    const failures: IncomingMessage[] = []
    const failureLog = createConsumer({ ...common, groupId: `${prefix}-failure-log`, topics: [topic('failed')], delivery: 'at-least-once', handler: (m) => void failures.push(m) })
    for (const consumer of [subscriptions, payments, caller, failureLog]) {
      await consumer.start()
      stops.push(() => consumer.stop())
    }
    stops.push(() => compensation.stop())

    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    for (const user of ['completes', 'stalled']) {
      const correlationId = `${prefix}-${user}`
      // Only the stalled saga is meant to run out of time; the other's deadline is generous.
      await watcher.arm(correlationId, user === 'stalled' ? 300 : 30_000, { traceparent })
      await producer.send(topic('requested'), sagaEvent(correlationId, { user }, { traceparent, saga: 'subscribe' }))
    }

    const statusOf = async (user: string) =>
      (await store.transaction((tx) => tx.query<{ status: string }>(sql(store, `SELECT status FROM subscriptions WHERE correlation_id = ?`), [`${prefix}-${user}`])))[0]?.status
    await waitFor(async () => (await statusOf('stalled')) === 'cancelled', { timeoutMs: 60_000, what: 'the stalled saga to be compensated' })
    await waitFor(() => paid.length > 0 && failures.length > 0, { timeoutMs: 30_000, what: 'the completed saga and the failure event' })

    assert.equal(await statusOf('completes'), 'active')
    assert.equal((await watcher.deadline(`${prefix}-completes`))?.status, 'cancelled', 'a completed saga clears its deadline')
    assert.equal((await watcher.deadline(`${prefix}-stalled`))?.status, 'fired')
    assert.deepEqual(compensations.map((e) => [e.correlationId, e.reason]), [[`${prefix}-stalled`, 'deadline']])
    const failure = failures[0]!
    assert.equal(correlationIdOf(failure), `${prefix}-stalled`)
    assert.equal(failure.trace?.traceId, parseTraceparent(traceparent)!.traceId, 'the failure event joins the saga trace')
    assert.equal(paid[0]!.trace?.traceId, parseTraceparent(traceparent)!.traceId, 'each hop carries the trace on')
    assert.ok(failures.every((m) => correlationIdOf(m) === `${prefix}-stalled`), 'only the stalled saga failed')

    // A deadline stored while no watcher runs fires when one starts again (a restart).
    await watcher.stop()
    stops.shift() // the watcher, stopped above
    const later = `${prefix}-after-restart`
    const offline = createDeadlineWatcher({ store, bootstrap, saga: 'subscribe', failureTopic: topic('failed') })
    await offline.arm(later, 300, { traceparent })
    const restarted = createDeadlineWatcher({ store, bootstrap, saga: 'subscribe', failureTopic: topic('failed'), pollIntervalMs: 50 })
    await restarted.start()
    stops.push(() => restarted.stop())
    await waitFor(() => compensations.some((e) => e.correlationId === later), { timeoutMs: 30_000, what: 'the deadline armed before the restart to fire' })
    t.diagnostic(`failure events ${failures.length}, compensations ${compensations.length} (deadline 300 ms, watcher poll 50 ms)`)
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await store.close()
    await db.drop()
  }
})
