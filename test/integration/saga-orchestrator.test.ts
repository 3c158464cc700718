// The orchestrator on real databases (SQLite and PostgreSQL), with steps that are plain async
// functions: the state it stores, retries, timeouts as stored timers, compensation in reverse
// order, the failed-compensation dead-letter state, resume after a stop, and durable timers.
// Timeouts are short configured durations (300 ms); nothing asserts how long anything took.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { tempDir } from '../helpers/broker-process.ts'
import { waitFor } from '../helpers/wait.ts'
import { ExpectedFailure, PermanentFailure, TransientFailure } from '../../src/sdk/failures.ts'
import type { Store } from '../../src/sdk/store.ts'
import { defineSaga, type Json, type StepContext } from '../../src/patterns/saga/definition.ts'
import { SagaOrchestrator } from '../../src/patterns/saga/orchestrator.ts'
import { migrateSagaTables } from '../../src/patterns/saga/saga-store.ts'
import { SagaTimers } from '../../src/patterns/saga/timers.ts'
import { testDatabase, type DatabaseKind } from './clients/saga_fixtures.ts'

const dir = tempDir('tideway-saga-')
after(() => dir.remove())

async function withStore<T>(kind: DatabaseKind, use: (store: Store) => Promise<T>): Promise<T> {
  const db = await testDatabase(kind, dir.path)
  const store = db.open()
  try {
    return await use(store)
  } finally {
    await store.close()
    await db.drop()
  }
}

/** A log of what each step did, shared by the steps of one test. */
function journal() {
  const calls: string[] = []
  const keys = new Map<string, Set<string>>()
  return {
    calls,
    keys,
    record(what: string, ctx: StepContext<unknown>) {
      calls.push(what)
      const seen = keys.get(what) ?? new Set()
      seen.add(ctx.idempotencyKey)
      keys.set(what, seen)
    },
  }
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`saga orchestrator on ${kind}`, { timeout: 60_000 }, () => {
    test('a saga whose steps succeed completes, each step invoked once with the earlier results', async () => {
      await withStore(kind, async (store) => {
        const log = journal()
        const saga = defineSaga({
          name: 'subscribe',
          version: 1,
          steps: [
            { name: 'subscription', invoke: async (ctx) => (log.record('subscription', ctx), { id: `sub-${ctx.instanceId}` }), compensate: async () => {} },
            { name: 'payment', invoke: async (ctx) => (log.record('payment', ctx), { charged: (ctx.input as { cents: number }).cents, sub: ctx.results.subscription ?? null }) },
            { name: 'notification', invoke: async (ctx) => (log.record('notification', ctx), true) },
          ],
        })
        const orchestrator = new SagaOrchestrator({ store, sagas: [saga] })
        await orchestrator.start()
        try {
          assert.deepEqual(await orchestrator.startSaga('subscribe', 'i-1', { cents: 500 }), { created: true })
          assert.deepEqual(await orchestrator.startSaga('subscribe', 'i-1', { cents: 500 }), { created: false })
          const done = await orchestrator.settled('i-1')
          assert.equal(done.status, 'completed')
          assert.deepEqual(log.calls, ['subscription', 'payment', 'notification'])
          assert.deepEqual(done.steps.find((s) => s.name === 'payment')?.result, { charged: 500, sub: { id: 'sub-i-1' } })
          assert.deepEqual([...log.keys.get('payment')!], ['saga:i-1:payment'])
          assert.ok(done.timers.every((t) => t.status === 'cancelled'), 'no timeout outlives its step')
        } finally {
          await orchestrator.stop()
        }
      })
    })

    test('a refused step compensates the completed steps in reverse order and not itself', async () => {
      await withStore(kind, async (store) => {
        const log = journal()
        const step = (name: string, fail = false) => ({
          name,
          invoke: async (ctx: StepContext<Json>) => {
            log.record(`${name}`, ctx)
            if (fail) throw new ExpectedFailure('card declined')
            return name
          },
          compensate: async (ctx: StepContext<Json>) => log.record(`undo-${name}`, ctx),
        })
        const saga = defineSaga({ name: 'three', version: 1, steps: [step('a'), step('b'), step('c', true)] })
        const orchestrator = new SagaOrchestrator({ store, sagas: [saga] })
        await orchestrator.start()
        try {
          await orchestrator.startSaga('three', 'i-2', null)
          const done = await orchestrator.settled('i-2')
          assert.equal(done.status, 'compensated')
          assert.equal(done.failedStep, 'c')
          assert.match(done.lastError ?? '', /card declined/)
          assert.deepEqual(log.calls, ['a', 'b', 'c', 'undo-b', 'undo-a'])
          assert.deepEqual([...log.keys.get('undo-a')!], ['saga:i-2:a:compensate'])
        } finally {
          await orchestrator.stop()
        }
      })
    })

    test('a step that never answers times out on its stored timer, is retried with the same key, then compensated with the rest', async () => {
      await withStore(kind, async (store) => {
        const log = journal()
        const saga = defineSaga({
          name: 'stall',
          version: 1,
          steps: [
            { name: 'first', invoke: async (ctx) => (log.record('first', ctx), 1), compensate: async (ctx) => log.record('undo-first', ctx) },
            {
              name: 'stalled',
              timeoutMs: 300,
              retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 10 },
              invoke: (ctx) => (log.record('stalled', ctx), new Promise<Json>(() => {})),
              // Its outcome is unknown after a timeout, so its compensation runs too.
              compensate: async (ctx) => log.record('undo-stalled', ctx),
            },
          ],
        })
        const orchestrator = new SagaOrchestrator({ store, sagas: [saga], timerPollIntervalMs: 50 })
        await orchestrator.start()
        try {
          await orchestrator.startSaga('stall', 'i-3', null)
          const done = await orchestrator.settled('i-3')
          assert.equal(done.status, 'compensated')
          assert.deepEqual(log.calls, ['first', 'stalled', 'stalled', 'undo-stalled', 'undo-first'])
          assert.deepEqual([...log.keys.get('stalled')!], ['saga:i-3:stalled'])
          const stalled = done.steps.find((s) => s.phase === 'invoke' && s.name === 'stalled')!
          assert.equal(stalled.attempt, 2)
          assert.match(stalled.lastError ?? '', /did not finish within 300 ms/)
          const timeouts = done.timers.filter((t) => t.id.startsWith('timeout:i-3:stalled:invoke'))
          assert.deepEqual(timeouts.map((t) => t.status), ['fired', 'fired'])
        } finally {
          await orchestrator.stop()
        }
      })
    })

    test('a transient failure is retried under the step policy and the saga completes', async () => {
      await withStore(kind, async (store) => {
        let calls = 0
        const saga = defineSaga({
          name: 'flaky',
          version: 1,
          steps: [{ name: 'flaky', retry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 10 }, invoke: async () => (++calls < 3 ? Promise.reject(new TransientFailure('busy')) : 'ok') }],
        })
        const orchestrator = new SagaOrchestrator({ store, sagas: [saga], timerPollIntervalMs: 50 })
        await orchestrator.start()
        try {
          await orchestrator.startSaga('flaky', 'i-4', null)
          const done = await orchestrator.settled('i-4')
          assert.equal(done.status, 'completed')
          assert.equal(done.steps[0]!.attempt, 3)
          assert.equal(calls, 3)
        } finally {
          await orchestrator.stop()
        }
      })
    })

    test('a compensation that keeps failing lands in failed-compensation, and an operator retry finishes it', async () => {
      await withStore(kind, async (store) => {
        let broken = true
        let undone = 0
        const saga = defineSaga({
          name: 'stuck',
          version: 1,
          steps: [
            {
              name: 'reserve',
              invoke: async () => 'reserved',
              compensationRetry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 10 },
              compensate: async () => {
                if (broken) throw new TransientFailure('inventory service down')
                undone++
              },
            },
            { name: 'charge', invoke: async () => Promise.reject(new PermanentFailure('no such account')) },
          ],
        })
        const orchestrator = new SagaOrchestrator({ store, sagas: [saga], timerPollIntervalMs: 50 })
        await orchestrator.start()
        try {
          await orchestrator.startSaga('stuck', 'i-5', null)
          const stuck = await orchestrator.settled('i-5')
          assert.equal(stuck.status, 'failed-compensation')
          assert.match(stuck.lastError ?? '', /compensation failed: inventory service down/)
          assert.equal(stuck.steps.find((s) => s.phase === 'compensate')?.attempt, 3)
          broken = false
          assert.equal(await orchestrator.retryCompensation('i-5'), true)
          assert.equal((await orchestrator.settled('i-5')).status, 'compensated')
          assert.equal(undone, 1)
        } finally {
          await orchestrator.stop()
        }
      })
    })

    test('a step interrupted by a stop is invoked again after restart with the same idempotency key, and completes', async () => {
      await withStore(kind, async (store) => {
        const log = journal()
        let release: () => void = () => {}
        const gate = new Promise<void>((resolve) => (release = resolve))
        let firstRun = true
        const saga = defineSaga({
          name: 'resume',
          version: 1,
          steps: [
            {
              name: 'slow',
              invoke: async (ctx) => {
                log.record('slow', ctx)
                if (firstRun) {
                  firstRun = false
                  await gate
                }
                return 'ok'
              },
            },
          ],
        })
        const first = new SagaOrchestrator({ store, sagas: [saga] })
        await first.start()
        await first.startSaga('resume', 'i-6', null)
        await waitFor(() => log.calls.length === 1, { what: 'the first invocation' })
        await first.stop()
        release()
        assert.equal((await first.instance('i-6'))?.steps[0]?.status, 'started')
        const second = new SagaOrchestrator({ store, sagas: [saga] })
        await second.start()
        try {
          const done = await second.settled('i-6')
          assert.equal(done.status, 'completed')
          assert.equal(done.steps[0]!.invocations, 2)
          assert.equal(done.steps[0]!.attempt, 1, 'a resume is not a new attempt')
          assert.deepEqual([...log.keys.get('slow')!], ['saga:i-6:slow'])
        } finally {
          await second.stop()
        }
      })
    })

    test('timers: a cancelled timer never fires, every timer is queryable by id, and a stored one fires after a restart', async () => {
      await withStore(kind, async (store) => {
        await migrateSagaTables(store)
        const fired: string[] = []
        const first = new SagaTimers({ store, pollIntervalMs: 50 }).on('reminder', (t) => void fired.push(t.id))
        first.start()
        const now = Date.now()
        await first.schedule({ id: 'reminder-cancelled', kind: 'reminder', fireAtMs: now + 300, payload: { n: 1 } })
        await first.schedule({ id: 'reminder-kept', kind: 'reminder', fireAtMs: now + 300, payload: { n: 2 } })
        await first.schedule({ id: 'reminder-after-restart', kind: 'reminder', fireAtMs: now + 600 })
        assert.equal(await first.cancel('reminder-cancelled'), true)
        assert.equal(await first.cancel('reminder-cancelled'), false, 'cancelling twice changes nothing')
        await waitFor(async () => (await first.get('reminder-kept'))?.status === 'fired', { what: 'the kept timer to fire' })
        await first.stop()
        // The process "restarts": a new loop on the same store re-arms what is stored.
        const second = new SagaTimers({ store, pollIntervalMs: 50 }).on('reminder', (t) => void fired.push(t.id))
        second.start()
        try {
          await waitFor(async () => (await second.get('reminder-after-restart'))?.status === 'fired', { what: 'the stored timer to fire after restart' })
          const cancelled = await second.get('reminder-cancelled')
          assert.equal(cancelled?.status, 'cancelled')
          assert.deepEqual(cancelled?.payload, { n: 1 })
          assert.deepEqual(fired, ['reminder-kept', 'reminder-after-restart'])
          assert.deepEqual((await second.list({ kind: 'reminder' })).map((t) => [t.id, t.status]).sort(), [
            ['reminder-after-restart', 'fired'],
            ['reminder-cancelled', 'cancelled'],
            ['reminder-kept', 'fired'],
          ])
          assert.equal(await second.cancel('reminder-kept'), false, 'a fired timer cannot be cancelled')
        } finally {
          await second.stop()
        }
      })
    })
  })
}
