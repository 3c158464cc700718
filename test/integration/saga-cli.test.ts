// `tideway sagas list|show` against sagas an orchestrator stored in SQLite and PostgreSQL: the
// table and JSON forms, the status filter, the failed-compensation dead-letter state with its
// step, attempts and last error, and the refusals (no such instance, no saga tables, bad flags).
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { tempDir } from '../helpers/broker-process.ts'
import { runSagasCommandWith } from '../../src/cli/sagas-command.ts'
import { defineSaga } from '../../src/patterns/saga/definition.ts'
import { SagaOrchestrator } from '../../src/patterns/saga/orchestrator.ts'
import { PermanentFailure } from '../../src/sdk/failures.ts'
import { testDatabase } from './clients/saga_fixtures.ts'

const dir = tempDir('tideway-saga-cli-')
after(() => dir.remove())

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runSagasCommandWith(argv, { stdout: { write: (t) => (stdout += t) }, stderr: { write: (t) => (stderr += t) }, env: {} })
  return { code, stdout, stderr }
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`tideway sagas on ${kind}`, { timeout: 60_000 }, () => {
    test('list and show report statuses, steps, attempts, timers and the last error', async () => {
      const db = await testDatabase(kind, dir.path)
      const store = db.open()
      const saga = defineSaga({
        name: 'subscribe',
        version: 2,
        steps: [
          { name: 'subscription', invoke: async () => 'sub-1', compensationRetry: { attempts: 2, initialDelayMs: 1, maxDelayMs: 1 }, compensate: async () => Promise.reject(new Error('subscription service down')) },
          { name: 'payment', invoke: async (ctx) => ((ctx.input as { cents: number }).cents > 100 ? Promise.reject(new PermanentFailure('card declined')) : 'paid') },
        ],
      })
      const orchestrator = new SagaOrchestrator({ store, sagas: [saga], timerPollIntervalMs: 20 })
      try {
        await orchestrator.start()
        await orchestrator.startSaga('subscribe', 'ok-1', { cents: 50 })
        await orchestrator.startSaga('subscribe', 'stuck-1', { cents: 500 })
        await orchestrator.settled('ok-1')
        await orchestrator.settled('stuck-1')
      } finally {
        await orchestrator.stop()
        await store.close()
      }
      const where = kind === 'sqlite' ? ['--db', db.url] : ['--db', db.url, '--schema', db.schema!]
      try {
        const list = await cli(['list', ...where])
        assert.equal(list.code, 0, list.stderr)
        assert.match(list.stdout, /^INSTANCE\s+SAGA\s+VERSION\s+STATUS/)
        assert.match(list.stdout, /ok-1\s+subscribe\s+2\s+completed/)
        assert.match(list.stdout, /stuck-1\s+subscribe\s+2\s+failed-compensation .*compensation failed: subscription service down/)

        const dead = JSON.parse((await cli(['list', ...where, '--status', 'failed-compensation', '--json'])).stdout)
        assert.deepEqual(dead.map((i: { instanceId: string }) => i.instanceId), ['stuck-1'])

        const show = await cli(['show', 'stuck-1', ...where])
        assert.equal(show.code, 0, show.stderr)
        assert.match(show.stdout, /status\s+failed-compensation/)
        assert.match(show.stdout, /failed step\s+subscription/)
        assert.match(show.stdout, /invoke\s+1 payment\s+failed\s+1\s+1\s+saga:stuck-1:payment\s+card declined/)
        assert.match(show.stdout, /compensate\s+0 subscription\s+failed\s+2\s+2\s+saga:stuck-1:subscription:compensate\s+subscription service down/)
        assert.match(show.stdout, /timeout:stuck-1:payment:invoke:1\s+saga-step-timeout\s+cancelled/)

        const json = JSON.parse((await cli(['show', 'ok-1', ...where, '--json'])).stdout)
        assert.equal(json.status, 'completed')
        assert.deepEqual(json.steps.map((s: { name: string; result: unknown }) => [s.name, s.result]), [['subscription', 'sub-1'], ['payment', 'paid']])

        const missing = await cli(['show', 'nope', ...where])
        assert.deepEqual([missing.code, missing.stderr], [1, 'tideway sagas: no saga instance "nope"\n'])
      } finally {
        await db.drop()
      }
    })
  })
}

test('tideway sagas refuses bad flags, a missing database and a database without saga tables', async () => {
  assert.equal((await cli(['list'])).code, 2)
  assert.equal((await cli(['list', '--db', 'mysql://x'])).code, 2)
  assert.equal((await cli(['list', '--db', 'sqlite:/x', '--status', 'sleeping'])).code, 2)
  assert.equal((await cli(['frobnicate', '--db', 'sqlite:/x'])).code, 2)
  const missing = await cli(['list', '--db', `sqlite:${dir.path}/absent.db`])
  assert.deepEqual([missing.code, missing.stderr], [1, `tideway sagas: no SQLite database at ${dir.path}/absent.db\n`])
  const db = await testDatabase('sqlite', dir.path)
  const store = db.open()
  await store.migrate()
  await store.close()
  const empty = await cli(['list', '--db', db.url])
  assert.equal(empty.code, 1)
  assert.match(empty.stderr, /no saga tables/)
  const help = await cli(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /^Usage: tideway sagas <list\|show>/)
})
