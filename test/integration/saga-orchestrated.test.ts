// Acceptance 1 of sagas: the seed's subscription -> payment -> notification flow as an
// orchestrated saga over a real broker, the three services answering commands on topics and
// keeping their effects in tables of a real database. The happy path completes with each effect
// applied once; a declined payment compensates the subscription (cancelled) and nothing else.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createTopic } from '../helpers/admin.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { CommandChannel } from '../../src/patterns/saga/commands.ts'
import { SagaOrchestrator } from '../../src/patterns/saga/orchestrator.ts'
import { parseTraceparent } from '../../src/sdk/trace.ts'
import { createServiceTables, effectsByKey, sql, startServices, subscriptionSaga, testDatabase } from './clients/saga_fixtures.ts'

const dir = tempDir('tideway-saga-')
let broker: EmbeddedBroker
before(async () => {
  broker = await embeddedBroker()
})
after(async () => {
  await broker.dispose()
  dir.remove()
})

for (const kind of ['postgres', 'sqlite'] as const) {
  describe(`orchestrated subscription saga over topics, ${kind}`, { timeout: 120_000 }, () => {
    test('the happy path completes and a declined payment cancels the subscription', async (t) => {
      const prefix = uniqueName('subscribe')
      for (const service of ['subscription', 'payment', 'notification', 'replies']) await createTopic(broker.bootstrap, `${prefix}.${service}`, 2)
      const db = await testDatabase(kind, dir.path)
      const store = db.open()
      const commands = new CommandChannel({ bootstrap: broker.bootstrap, replyTopic: `${prefix}.replies`, groupInstanceId: `${prefix}-orchestrator`, sessionTimeoutMs: 6_000 })
      const orchestrator = new SagaOrchestrator({ store, sagas: [subscriptionSaga(commands, prefix)], timerPollIntervalMs: 100 })
      const services = []
      try {
        await orchestrator.start()
        await createServiceTables(store)
        services.push(...(await startServices(store, broker.bootstrap, prefix)))
        await commands.start()

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
      } finally {
        await orchestrator.stop()
        await commands.stop()
        for (const service of services) await service.stop()
        await store.close()
        await db.drop()
      }
    })
  })
}
