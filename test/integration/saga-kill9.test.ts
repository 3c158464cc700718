// Acceptance 2 of sagas: the orchestrator is a child process, kill -9ed at every boundary of a
// step's life in turn (before "started" is recorded, after it, after the command was sent, after
// the reply came and before "done" is recorded, after "done", after a failure is recorded), in the
// invoke phase of each of the three steps and in the compensation phase. Each cycle runs two
// instances (one that completes, one whose payment is declined and so compensates), kills the
// process at the boundary, restarts it, and lets it settle. Afterwards every instance must have
// completed or compensated, and every effect in the services' tables must have been applied
// exactly once: a resumed step is invoked again with the same idempotency key and the services
// (handleIdempotently) apply it once.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createTopic } from '../helpers/admin.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import type { CommandService } from '../../src/patterns/saga/commands.ts'
import { SagaTables } from '../../src/patterns/saga/saga-store.ts'
import type { Store } from '../../src/sdk/store.ts'
import { createServiceTables, effectsByKey, startServices, testDatabase, type TestDatabase } from './clients/saga_fixtures.ts'

const ORCHESTRATOR = fileURLToPath(new URL('./clients/saga_orchestrator.ts', import.meta.url))
const BOUNDARIES = ['step-recording', 'step-recorded', 'command-sent', 'step-invoked', 'step-done'] as const
const CRASH_POINTS = [
  ...['subscription', 'payment', 'notification'].flatMap((step) => BOUNDARIES.map((b) => `${b}:invoke:${step}`)),
  // The declined payment: killed once its failure (and the switch to compensating) is recorded.
  'step-failed:invoke:payment',
  ...BOUNDARIES.map((b) => `${b}:compensate:subscription`),
]

const dir = tempDir('tideway-saga-kill9-')
let broker: EmbeddedBroker
let db: TestDatabase
let store: Store
let services: CommandService[] = []
const prefix = uniqueName('saga-kill9')

before(async () => {
  broker = await embeddedBroker()
  for (const topic of ['subscription', 'payment', 'notification', 'replies']) await createTopic(broker.bootstrap, `${prefix}.${topic}`, 2)
  db = await testDatabase('postgres', dir.path)
  store = db.open()
  await createServiceTables(store)
  services = await startServices(store, broker.bootstrap, prefix)
})
after(async () => {
  for (const service of services) await service.stop()
  await store?.close()
  await db?.drop()
  await broker?.dispose()
  dir.remove()
})

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly events: Record<string, unknown>[]
  readonly stderr: string
}

function runOrchestrator(args: string[], timeoutMs = 60_000): Promise<Run> {
  const child = spawn(process.execPath, [ORCHESTRATOR, db.schema!, broker.bootstrap, prefix, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-8000)))
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(killer)
      const events = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)
      resolve({ code, signal, events, stderr })
    })
  })
}

test('an orchestrator process kill -9ed at every step boundary resumes every instance, applying no effect twice', { timeout: 900_000 }, async (t) => {
  const happy: string[] = []
  const declined: string[] = []
  let kills = 0
  for (const [cycle, point] of CRASH_POINTS.entries()) {
    const ok = `${prefix}-c${cycle}-ok`
    const refused = `${prefix}-c${cycle}-declined`
    happy.push(ok)
    declined.push(refused)
    const instances = [`${ok}=999`, `${refused}=50000`]
    const crashed = await runOrchestrator([...instances, '--crash-at', point])
    assert.equal(crashed.signal, 'SIGKILL', `cycle ${cycle} (${point}): the process was to die at the boundary, but exited ${crashed.code}\n${crashed.stderr}`)
    assert.ok(crashed.events.some((e) => e.event === 'crashing'), `cycle ${cycle} (${point}) was killed before reaching the boundary\n${crashed.stderr}`)
    kills++
    const resumed = await runOrchestrator([...instances, '--until-settled'])
    assert.equal(resumed.code, 0, `cycle ${cycle} (${point}): the restarted orchestrator did not settle\n${resumed.stderr}`)
  }

  const tables = new SagaTables(store)
  const instances = await store.transaction((tx) => tables.listInstances(tx))
  const statusOf = new Map(instances.map((i) => [i.instanceId, i.status]))
  const effects = await effectsByKey(store)
  const wrong: string[] = []
  const same = (a: Record<string, number> | undefined, b: Record<string, number>) => JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b).sort())
  for (const id of happy) {
    if (statusOf.get(id) !== 'completed') wrong.push(`${id}: ${statusOf.get(id)}`)
    const counts = effects.get(id)
    if (!same(counts, { 'subscription.create': 1, 'payment.charge': 1, 'notification.send': 1 })) wrong.push(`${id}: ${JSON.stringify(counts)}`)
  }
  for (const id of declined) {
    if (statusOf.get(id) !== 'compensated') wrong.push(`${id}: ${statusOf.get(id)}`)
    const counts = effects.get(id)
    if (!same(counts, { 'subscription.create': 1, 'subscription.cancel': 1 })) wrong.push(`${id}: ${JSON.stringify(counts)}`)
  }
  const reinvoked = await store.transaction((tx) => tables.query(tx, `SELECT COUNT(*) AS n FROM tideway_saga_steps WHERE invocations > 1`))
  const applied = [...effects.values()].reduce((sum, counts) => sum + Object.values(counts).reduce((a, b) => a + b, 0), 0)
  t.diagnostic(
    `${CRASH_POINTS.length} crash points, ${kills} kill -9s, ${happy.length + declined.length} instances (${happy.length} completed, ${declined.length} compensated); ` +
      `${Number(reinvoked[0]?.n)} steps invoked again after a crash; ${applied} effects applied, ${wrong.length} wrong`,
  )
  assert.deepEqual(wrong, [])
})
