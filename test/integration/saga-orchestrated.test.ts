// Acceptance 1 of sagas: the seed's subscription -> payment -> notification flow as an
// orchestrated saga over a real broker, the three services answering commands on topics and
// keeping their effects in tables of a real database. The happy path completes with each effect
// applied once; a declined payment compensates the subscription (cancelled) and nothing else. A
// command read after its deadline (its service was down while the saga gave up) applies nothing.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createTopic } from '../helpers/admin.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { waitFor } from '../helpers/wait.ts'
import { CommandChannel } from '../../src/patterns/saga/commands.ts'
import { SagaOrchestrator } from '../../src/patterns/saga/orchestrator.ts'
import { parseTraceparent } from '../../src/sdk/trace.ts'
import { createServiceTables, effectsByKey, sql, startServices, subscriptionSaga, testDatabase, type DatabaseKind, type ServiceName } from './clients/saga_fixtures.ts'
import type { CommandService } from '../../src/patterns/saga/commands.ts'
import type { Store } from '../../src/sdk/store.ts'

const dir = tempDir('tideway-saga-')
let broker: EmbeddedBroker
before(async () => {
  broker = await embeddedBroker()
})
after(async () => {
  await broker.dispose()
  dir.remove()
})

interface SagaRig {
  readonly prefix: string
  readonly store: Store
  readonly orchestrator: SagaOrchestrator
  /** Starts more of the services (they are stopped with the rest). */
  startServices(only: readonly ServiceName[]): Promise<CommandService[]>
}

/** Topics, a database, the orchestrator and its command channel, and the given services; all torn down after `use`. */
async function withSaga(kind: DatabaseKind, options: { stepTimeoutMs?: number; services: readonly ServiceName[] }, use: (rig: SagaRig) => Promise<void>): Promise<void> {
  const prefix = uniqueName('subscribe')
  for (const service of ['subscription', 'payment', 'notification', 'replies']) await createTopic(broker.bootstrap, `${prefix}.${service}`, 2)
  const db = await testDatabase(kind, dir.path)
  const store = db.open()
  const commands = new CommandChannel({ bootstrap: broker.bootstrap, replyTopic: `${prefix}.replies`, groupInstanceId: `${prefix}-orchestrator`, sessionTimeoutMs: 6_000 })
  const orchestrator = new SagaOrchestrator({ store, sagas: [subscriptionSaga(commands, prefix, options.stepTimeoutMs)], timerPollIntervalMs: 50 })
  const services: CommandService[] = []
  const more = async (only: readonly ServiceName[]) => {
    const started = await startServices(store, broker.bootstrap, prefix, only)
    services.push(...started)
    return started
  }
  try {
    await orchestrator.start()
    await createServiceTables(store)
    await more(options.services)
    await commands.start()
    await use({ prefix, store, orchestrator, startServices: more })
  } finally {
    await orchestrator.stop()
    await commands.stop()
    for (const service of services) await service.stop()
    await store.close()
    await db.drop()
  }
}

for (const kind of ['postgres', 'sqlite'] as const) {
  describe(`orchestrated subscription saga over topics, ${kind}`, { timeout: 120_000 }, () => {
    test('the happy path completes and a declined payment cancels the subscription', async (t) => {
      await withSaga(kind, { services: ['subscription', 'payment', 'notification'] }, async ({ prefix, store, orchestrator }) => {
        const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
        const happy = ['alice', 'bob', 'carol'].map((user) => `${prefix}-${user}`)
        const declined = `${prefix}-dave`
        for (const [i, id] of happy.entries()) await orchestrator.startSaga('subscribe', id, { user: `user-${i}`, plan: 'pro', cents: 999 }, { traceparent })
        await orchestrator.startSaga('subscribe', declined, { user: 'dave', plan: 'pro', cents: 50_000 })

        for (const id of happy) {
          const done = await orchestrator.settled(id, { timeoutMs: 60_000 })
          assert.equal(done.status, 'completed', `${id}: ${done.lastError}`)
          assert.equal(parseTraceparent(done.traceparent)?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
        }
        const failed = await orchestrator.settled(declined, { timeoutMs: 60_000 })
        assert.equal(failed.status, 'compensated')
        assert.equal(failed.failedStep, 'payment')
        assert.match(failed.lastError ?? '', /card declined/)

        const effects = await effectsByKey(store)
        for (const id of happy) assert.deepEqual(effects.get(id), { 'subscription.create': 1, 'payment.charge': 1, 'notification.send': 1 })
        assert.deepEqual(effects.get(declined), { 'subscription.create': 1, 'subscription.cancel': 1 })
        const rows = await store.transaction((tx) => tx.query<{ status: string }>(sql(store, `SELECT status FROM subscriptions WHERE saga_key = ?`), [`saga:${declined}:subscription`]))
        assert.deepEqual(rows.map((r) => r.status), ['cancelled'])
        t.diagnostic(`${kind}: ${happy.length} sagas completed, 1 compensated; effects applied once each`)
      })
    })

    test('a command that reaches its service after its deadline is not applied: the service was down while the saga gave up and compensated', async (t) => {
      // 1.5 s an attempt, 3 attempts: the mail step gives up about 5 s after it starts.
      await withSaga(kind, { stepTimeoutMs: 1_500, services: ['subscription', 'payment'] }, async ({ prefix, store, orchestrator, startServices: more }) => {
        const id = `${prefix}-erin`
        await orchestrator.startSaga('subscribe', id, { user: 'erin', plan: 'pro', cents: 999 })
        const done = await orchestrator.settled(id, { timeoutMs: 60_000 })
        assert.equal(done.status, 'compensated')
        assert.equal(done.failedStep, 'notification')

        // The mail service comes back and reads the 3 commands of the attempts the saga gave up on.
        const [mail] = await more(['notification'])
        await waitFor(() => mail!.stats.expired === 3, { timeoutMs: 30_000, what: 'the mail service to read the 3 late commands' })
        assert.equal(mail!.stats.applied, 0)
        const effects = await effectsByKey(store)
        assert.deepEqual(effects.get(id), { 'subscription.create': 1, 'payment.charge': 1, 'payment.refund': 1, 'subscription.cancel': 1 }, 'no welcome mail for a cancelled subscription')
        t.diagnostic(`${kind}: 3 late commands read, 0 applied; the saga's compensation stands`)
      })
    })
  })
}
