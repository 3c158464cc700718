// Several orchestrators on one store: the instance lease (orchestrator.ts). Two orchestrators
// sharing a database each start half the instances and sweep for all of them, and still every
// step is invoked once. Then replicas as real processes on a shared PostgreSQL schema
// (clients/saga_lease_orchestrator.ts): one is killed with SIGKILL mid-step and the other takes
// the instance over when the lease expires (or at once, when the default owner id shows the
// holder's process is gone), invoking the started step again with the same key; one is
// stopped with SIGSTOP past its lease, the other finishes the instance, and once the stale one
// runs again it records nothing (its fenced write is refused) and says so in its log.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/broker-process.ts'
import { onLines } from '../helpers/lines.ts'
import { waitFor } from '../helpers/wait.ts'
import { defineSaga, type Json } from '../../src/patterns/saga/definition.ts'
import { SagaOrchestrator } from '../../src/patterns/saga/orchestrator.ts'
import { SagaTables } from '../../src/patterns/saga/saga-store.ts'
import type { Store } from '../../src/sdk/store.ts'
import { sql, testDatabase, type TestDatabase } from './clients/saga_fixtures.ts'

const REPLICA = fileURLToPath(new URL('./clients/saga_lease_orchestrator.ts', import.meta.url))
const dir = tempDir('tideway-saga-lease-')
const children = new Set<ChildProcess>()
after(() => {
  for (const child of children) child.kill('SIGKILL')
  dir.remove()
})

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`two orchestrators sharing a ${kind} database: each starts half the instances, both sweep all of them, every step is invoked once`, { timeout: 60_000 }, async () => {
    const db = await testDatabase(kind, dir.path)
    // Two handles on PostgreSQL; on SQLite one, shared: node:sqlite waits for a lock
    // synchronously, so two handles in one process would wait on each other.
    const shared = db.open()
    const stores = kind === 'postgres' ? [shared, db.open()] : [shared, shared]
    const calls: { orchestrator: string; instance: string; step: string }[] = []
    const sagaFor = (orchestrator: string) =>
      defineSaga({
        name: 'shared',
        version: 1,
        steps: ['reserve', 'charge', 'notify'].map((step) => ({
          name: step,
          invoke: async (ctx: { instanceId: string }): Promise<Json> => {
            calls.push({ orchestrator, instance: ctx.instanceId, step })
            await new Promise((resolve) => setTimeout(resolve, 20))
            return step
          },
        })),
      })
    const orchestrators = ['a', 'b'].map((name, i) => new SagaOrchestrator({ store: stores[i]!, sagas: [sagaFor(name)], sweepIntervalMs: 30, timerPollIntervalMs: 50 }))
    try {
      await Promise.all(orchestrators.map((o) => o.start()))
      const ids = Array.from({ length: 20 }, (_, i) => `i-${i}`)
      await Promise.all(ids.map((id, i) => orchestrators[i % 2]!.startSaga('shared', id, null)))
      for (const id of ids) assert.equal((await orchestrators[0]!.settled(id)).status, 'completed')

      const byStep = new Map<string, number>()
      for (const c of calls) byStep.set(`${c.instance}/${c.step}`, (byStep.get(`${c.instance}/${c.step}`) ?? 0) + 1)
      assert.equal(byStep.size, 60, 'every step of every instance ran')
      assert.deepEqual([...byStep].filter(([, n]) => n !== 1), [], 'no step ran twice')
      for (const name of ['a', 'b']) assert.ok(calls.some((c) => c.orchestrator === name), `orchestrator ${name} drove instances`)
      const snapshot = await orchestrators[1]!.instance('i-0')
      assert.ok(snapshot!.steps.every((s) => s.invocations === 1))
      assert.equal(snapshot!.lease, null, 'a finished instance holds no lease')
    } finally {
      await Promise.all(orchestrators.map((o) => o.stop()))
      await Promise.all([...new Set(stores)].map((s) => s.close()))
      await db.drop()
    }
  })
}

interface Replica {
  readonly child: ChildProcess
  readonly events: Record<string, unknown>[]
  readonly log: string[]
  readonly owner: string
}

async function replica(db: TestDatabase, args: string[]): Promise<Replica> {
  const child = spawn(process.execPath, [REPLICA, db.schema!, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const events: Record<string, unknown>[] = []
  const log: string[] = []
  onLines(child.stdout!, (line) => events.push(JSON.parse(line) as Record<string, unknown>))
  onLines(child.stderr!, (line) => log.push(line))
  const started = await waitFor(() => events.find((e) => e.event === 'started'), { timeoutMs: 20_000, what: 'the replica to start' }).catch((err: Error) => {
    throw new Error(`${err.message}\n${log.join('\n')}`)
  })
  return { child, events, log, owner: String(started.owner) }
}

async function stop(r: Replica): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return
  const exited = new Promise((resolve) => r.child.once('exit', resolve))
  r.child.kill('SIGTERM')
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))])
  r.child.kill('SIGKILL')
}

const invoking = (r: Replica, step: string) => waitFor(() => r.events.find((e) => e.event === 'invoking' && e.step === step), { timeoutMs: 20_000, what: `${r.owner} to invoke ${step}` })

async function invocations(store: Store, instance: string): Promise<{ step: string; key: string; owner: string; at: number }[]> {
  const rows = await store.transaction((tx) => tx.query<{ step: string; key: string; owner: string; at: string }>(sql(store, 'SELECT step, key, owner, at FROM invocations WHERE instance = ? ORDER BY at'), [instance]))
  return rows.map((r) => ({ ...r, at: Number(r.at) }))
}

describe('replicas on one PostgreSQL schema', { timeout: 120_000 }, () => {
  let db: TestDatabase
  let store: Store
  const tables = () => new SagaTables(store)
  const onFreshSchema = async (use: () => Promise<void>) => {
    db = await testDatabase('postgres', dir.path)
    store = db.open()
    try {
      await use()
    } finally {
      await store.close()
      await db.drop()
    }
  }
  /** Replica a starts `instance` and is left inside its slow `charge` step; replica b is idle. */
  const inCharge = async (instance: string, { owners, leaseMs, chargeMs }: { owners: boolean; leaseMs: number; chargeMs: number }) => {
    const owner = (name: string) => (owners ? ['--owner', name] : [])
    const a = await replica(db, [...owner('replica-a'), '--lease-ms', String(leaseMs), '--charge-ms', String(chargeMs), '--start', instance])
    const b = await replica(db, [...owner('replica-b'), '--lease-ms', String(leaseMs), '--charge-ms', '20'])
    await invoking(a, 'charge')
    return { a, b }
  }

  test('a replica killed with SIGKILL mid-step: the other takes the instance over when the lease expires and invokes the step again with the same key', async (t) => {
    await onFreshSchema(async () => {
      const { a, b } = await inCharge('order-1', { owners: true, leaseMs: 1500, chargeMs: 60_000 })
      const lease = await store.transaction((tx) => tables().lease(tx, 'order-1'))
      assert.equal(lease?.owner, 'replica-a')
      a.child.kill('SIGKILL')
      const killedAt = Date.now()

      await waitFor(async () => (await store.transaction((tx) => tables().snapshot(tx, 'order-1')))?.status === 'completed', { timeoutMs: 30_000, what: 'replica-b to complete order-1' })
      const calls = await invocations(store, 'order-1')
      assert.deepEqual(
        calls.map((c) => `${c.step}@${c.owner}`),
        ['reserve@replica-a', 'charge@replica-a', 'charge@replica-b', 'notify@replica-b'],
      )
      const charges = calls.filter((c) => c.step === 'charge')
      assert.equal(new Set(charges.map((c) => c.key)).size, 1, 'the step was invoked again with the same idempotency key')
      // Not before the dead replica's lease ran out (it was last renewed no later than the kill).
      assert.ok(charges[1]!.at >= lease!.expiresAtMs - 50, `taken over at ${charges[1]!.at}, lease held until at least ${lease!.expiresAtMs}`)
      assert.ok(charges[1]!.at - killedAt < 10_000)
      t.diagnostic(`taken over ${charges[1]!.at - killedAt} ms after the kill, ${charges[1]!.at - lease!.expiresAtMs} ms after the lease seen before the kill expired`)
      await stop(b)
    })
  })

  test('with the default owner ids a replica on this host sees the killed one is gone and takes over without waiting out a 60 s lease', async (t) => {
    await onFreshSchema(async () => {
      const { a, b } = await inCharge('order-2', { owners: false, leaseMs: 60_000, chargeMs: 60_000 })
      assert.match(a.owner, /^[^:]+:\d+:[0-9a-f]+$/)
      a.child.kill('SIGKILL')
      await new Promise((resolve) => a.child.once('exit', resolve))
      const killedAt = Date.now()
      await waitFor(async () => (await store.transaction((tx) => tables().snapshot(tx, 'order-2')))?.status === 'completed', { timeoutMs: 30_000, what: 'the other replica to complete order-2' })
      const calls = await invocations(store, 'order-2')
      assert.deepEqual(calls.map((c) => `${c.step}@${c.owner === a.owner ? 'a' : c.owner === b.owner ? 'b' : c.owner}`), ['reserve@a', 'charge@a', 'charge@b', 'notify@b'])
      assert.ok(calls[2]!.at - killedAt < 20_000, `taken over ${calls[2]!.at - killedAt} ms after the kill, with a lease of 60 s`)
      t.diagnostic(`taken over ${calls[2]!.at - killedAt} ms after the kill, with a lease of 60 s`)
      await stop(b)
    })
  })

  test('a replica stopped with SIGSTOP past its lease is taken over, and once it runs again it records nothing', async () => {
    await onFreshSchema(async () => {
      const { a, b } = await inCharge('order-3', { owners: true, leaseMs: 1500, chargeMs: 3000 })
      a.child.kill('SIGSTOP')
      let finished: Awaited<ReturnType<SagaTables['snapshot']>> = null
      try {
        finished = await waitFor(
          async () => {
            const s = await store.transaction((tx) => tables().snapshot(tx, 'order-3'))
            return s?.status === 'completed' ? s : undefined
          },
          { timeoutMs: 30_000, what: 'replica-b to complete order-3' },
        )
      } finally {
        a.child.kill('SIGCONT')
      }
      // The stale replica's charge finishes (its 3 s are long over); its write is refused.
      await waitFor(() => a.log.some((line) => line.includes('saga lease lost')), { timeoutMs: 20_000, what: 'replica-a to find its lease lost' }).catch((err: Error) => {
        throw new Error(`${err.message}\n${a.log.join('\n')}`)
      })
      const after = await store.transaction((tx) => tables().snapshot(tx, 'order-3'))
      assert.equal(after!.status, 'completed')
      assert.equal(after!.updatedAtMs, finished!.updatedAtMs, 'the stale replica changed nothing')
      assert.deepEqual(
        after!.steps.map((s) => `${s.phase}:${s.name}:${s.status}:${s.invocations}`),
        ['invoke:reserve:done:1', 'invoke:charge:done:2', 'invoke:notify:done:1'],
      )
      const calls = await invocations(store, 'order-3')
      assert.deepEqual(
        calls.map((c) => `${c.step}@${c.owner}`),
        ['reserve@replica-a', 'charge@replica-a', 'charge@replica-b', 'notify@replica-b'],
        'the stale replica went no further than the step it was in',
      )
      await Promise.all([stop(a), stop(b)])
    })
  })
})
