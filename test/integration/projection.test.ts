// CQRS projections (src/patterns/projection/) against a real broker and real databases: SQLite
// files and PostgreSQL at TIDEWAY_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test),
// a fresh file or schema per test. The read model is two services' events joined into one table
// (test/integration/clients/projection_model.ts): orders and payments -> customer_totals, checked
// against a direct computation from the produced events, and, on every read, for being whole:
// customer_totals must agree with the per-order rows read in the same snapshot.
// The crash tests run the projection as its own process (clients/projection_service.ts) and kill
// it with kill -9, mid-stream from outside, and at each step of a rebuild from inside.
// Outside CI a missing PostgreSQL skips its half with the reason; in CI it fails this file.
// Each test prints its figures.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { createProjection, type Projection, type ProjectionLag, type RebuildEvent } from '../../src/patterns/projection/index.ts'
import { acceptsWrites, buildHasPassed, partitionKey, partitionLags, planStart, type GenerationRecord, type ProjectionState } from '../../src/patterns/projection/lifecycle.ts'
import { ProjectionVersionError } from '../../src/patterns/projection/errors.ts'
import { createProducer } from '../../src/sdk/producer.ts'
import type { Store } from '../../src/sdk/store.ts'
import { createTopic } from '../helpers/admin.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { waitFor } from '../helpers/wait.ts'
import {
  customerTotalsDefinition,
  expectedTotals,
  openReader,
  openStore,
  PG_URL,
  produceShopEvents,
  sendShopEvents,
  shopEvents,
  type ModelRead,
  type ModelReader,
  type ShopEvent,
  type Table,
} from './clients/projection_model.ts'
import { onLines } from '../helpers/lines.ts'
import { postgresProblem } from '../helpers/postgres.ts'

const SERVICE = fileURLToPath(new URL('./clients/projection_service.ts', import.meta.url))
const PARTITIONS = 3
/** How often projections here measure lag and check a rebuild. */
const POLL_MS = 100

const pgProblem = await postgresProblem()
if (pgProblem !== undefined && process.env.CI === 'true') throw new Error(`${pgProblem}; CI must run PostgreSQL (.ci/run starts it)`)

let broker: EmbeddedBroker
const dir = tempDir('tideway-projection-')
const schemas: string[] = []
const cleanups: (() => Promise<unknown> | unknown)[] = []
before(async () => {
  broker = await embeddedBroker()
})
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  if (schemas.length > 0) {
    const client = new pg.Client(PG_URL)
    await client.connect()
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await client.end()
  }
  await broker?.dispose()
  dir.remove()
})

type Kind = 'sqlite' | 'postgres'

/** A fresh database: `sqlite:<file>` or `postgres:<schema>`, as the child process takes it too. */
async function freshDatabase(kind: Kind): Promise<string> {
  if (kind === 'sqlite') return `sqlite:${join(dir.path, `${uniqueName('model')}.db`)}`
  const schema = `tideway_projection_${randomBytes(4).toString('hex')}`
  schemas.push(schema)
  const client = new pg.Client(PG_URL)
  await client.connect()
  await client.query(`CREATE SCHEMA ${schema}`)
  await client.end()
  return `postgres:${schema}`
}

function track<T extends { close(): Promise<unknown> }>(closable: T): T {
  cleanups.push(() => closable.close())
  return closable
}

async function freshTopics(): Promise<{ orders: string; payments: string }> {
  const topics = { orders: uniqueName('orders'), payments: uniqueName('payments') }
  await createTopic(broker.bootstrap, topics.orders, PARTITIONS)
  await createTopic(broker.bootstrap, topics.payments, PARTITIONS)
  return topics
}

function projectionOn(store: Store, topics: { orders: string; payments: string }, extra: { version?: number } = {}): Projection<ShopEvent, Table> {
  const projection = createProjection({
    ...customerTotalsDefinition(store.dialect),
    bootstrap: broker.bootstrap,
    store,
    topics: [topics.orders, topics.payments],
    groupIdPrefix: uniqueName('projection'),
    pollIntervalMs: POLL_MS,
    ...extra,
  })
  cleanups.push(() => projection.stop())
  return projection
}

async function caughtUp(projection: Projection<ShopEvent, Table>, timeoutMs: number): Promise<ProjectionLag> {
  return waitFor(async () => {
    const lag = await projection.lag()
    return lag.total === 0 && lag.rebuild === null ? lag : undefined
  }, { timeoutMs, intervalMs: POLL_MS, what: 'the projection to catch up' })
}

const sums = (read: ModelRead) => read.totals.reduce((s, t) => ({ orders: s.orders + t.ordersPlaced, ordered: s.ordered + t.amountOrdered, paid: s.paid + t.amountPaid }), { orders: 0, ordered: 0, paid: 0 })
const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000)

describe('the lifecycle rules (pure)', () => {
  const record = (generation: number, version: number): GenerationRecord => ({ generation, version, groupId: `g${generation}`, tables: ['t'], topics: ['a'] })
  const state = (fields: Partial<ProjectionState>): ProjectionState => ({ current: record(1, 1), frozen: false, building: null, retired: null, lastGeneration: 1, ...fields })

  test('start serves a current generation of its version, rebuilds one of an older version, and refuses a newer one', () => {
    assert.deepEqual(planStart('p', null, 1), { kind: 'create' })
    assert.deepEqual(planStart('p', state({}), 1), { kind: 'existing', serve: true, abandonBuild: false, build: null, finishRetirement: false, unfreeze: false })
    assert.deepEqual(planStart('p', state({}), 2), { kind: 'existing', serve: false, abandonBuild: false, build: 'begin', finishRetirement: false, unfreeze: false })
    assert.throws(() => planStart('p', state({ current: record(3, 2) }), 1), ProjectionVersionError)
  })

  test('start resumes an unfinished build of its version, drops one of another version, unfreezes and finishes a retirement', () => {
    const resumed = planStart('p', state({ building: record(2, 1), frozen: true, lastGeneration: 2 }), 1)
    assert.deepEqual(resumed, { kind: 'existing', serve: true, abandonBuild: false, build: 'resume', finishRetirement: false, unfreeze: true })
    const replaced = planStart('p', state({ building: record(2, 2), lastGeneration: 2 }), 3)
    assert.deepEqual(replaced, { kind: 'existing', serve: false, abandonBuild: true, build: 'begin', finishRetirement: false, unfreeze: false })
    const retiring = planStart('p', state({ current: record(2, 1), retired: record(1, 1), lastGeneration: 2 }), 1)
    assert.equal(retiring.kind === 'existing' && retiring.finishRetirement, true)
  })

  test('only the building generation and an unfrozen current one accept writes', () => {
    const row = { currentGeneration: 1, frozen: false, buildingGeneration: 2, retiredGeneration: null }
    assert.deepEqual([1, 2, 3].map((g) => acceptsWrites(row, g)), [true, true, false])
    assert.deepEqual([1, 2].map((g) => acceptsWrites({ ...row, frozen: true }, g)), [false, true])
  })

  test('the swap waits until the build has passed the live offsets on its own topics', () => {
    const live = new Map([[partitionKey('a', 0), 10n], [partitionKey('gone', 0), 99n]])
    assert.equal(buildHasPassed(new Map([[partitionKey('a', 0), 9n]]), live, ['a']), false)
    assert.equal(buildHasPassed(new Map([[partitionKey('a', 0), 10n]]), live, ['a']), true, 'a topic the new version dropped does not hold it back')
  })

  test('lag is the high watermark minus the next offset to apply, from the log start when nothing is stored', () => {
    const ends = [
      { topic: 'a', partition: 0, highWatermark: 10n, logStartOffset: 0n },
      { topic: 'a', partition: 1, highWatermark: 10n, logStartOffset: 4n },
      { topic: 'a', partition: 2, highWatermark: 10n, logStartOffset: 0n },
    ]
    const lags = partitionLags(ends, new Map([[partitionKey('a', 0), 7n], [partitionKey('a', 2), 10n]]))
    assert.deepEqual(lags.map((l) => [l.nextOffset, l.lag]), [[7n, 3], [4n, 6], [10n, 0]])
  })
})

for (const kind of ['sqlite', 'postgres'] as const) {
  const label = kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'
  const skip = kind === 'postgres' && pgProblem !== undefined ? pgProblem : false

  describe(`on ${label}`, { skip }, () => {
    // The first two tests share one projection: 10,000 events applied, then rebuilt.
    const EVENTS = 10_000
    const events = shopEvents(EVENTS)
    let shared: { db: string; store: Store; projection: Projection<ShopEvent, Table> } | undefined

    test(`a projection joining orders and payments into customer_totals matches a direct computation after ${EVENTS.toLocaleString('en')} events`, { timeout: 120_000 }, async (t) => {
      const topics = await freshTopics()
      const db = await freshDatabase(kind)
      const store = track(openStore(db))
      await produceShopEvents(broker.bootstrap, topics, events)
      const projection = projectionOn(store, topics)
      const started = performance.now()
      await projection.start()
      await caughtUp(projection, 100_000)
      const ms = performance.now() - started
      const reader = track(await openReader(db))
      const read = await reader.read()
      assert.equal(read.generation, 1)
      assert.ok(read.consistent, 'customer_totals agrees with the per-order rows')
      assert.deepEqual(read.totals, expectedTotals(events))
      t.diagnostic(`${label}: ${EVENTS} events (${events.filter((e) => e.type === 'order-placed').length} orders, ${events.filter((e) => e.type === 'payment-captured').length} payments) applied in ${Math.round(ms)} ms from start(), ${perSecond(EVENTS, ms)} events/s; ${read.totals.length} customers`)
      shared = { db, store, projection }
    })

    test('rebuild() replays into fresh tables and swaps: the same rows, and every read during it is one whole model', { timeout: 120_000 }, async (t) => {
      assert.ok(shared, 'the previous test built the projection')
      const { db, projection } = shared
      const reader = track(await openReader(db))
      const before = await reader.read()
      assert.deepEqual(before.totals, expectedTotals(events))

      // Readers poll the views all through the rebuild, on a connection of their own.
      const reads: { generation: number; whole: boolean; same: boolean }[] = []
      const errors: unknown[] = []
      let rebuilding = true
      const polling = (async () => {
        while (rebuilding || (reads.at(-1)?.generation !== 2 && errors.length < 10)) {
          try {
            const read = await reader.read()
            reads.push({ generation: read.generation, whole: read.consistent, same: JSON.stringify(read.totals) === JSON.stringify(before.totals) })
          } catch (err) {
            errors.push(err)
          }
          await new Promise((resolve) => setImmediate(resolve))
        }
      })()
      const phases: RebuildEvent[] = []
      projection.on('rebuild', (e) => phases.push(e))
      await waitFor(() => reads.length > 0, { what: 'a first read' })
      const started = performance.now()
      const result = await projection.rebuild()
      const ms = performance.now() - started
      rebuilding = false
      await polling

      assert.deepEqual(phases.map((e) => e.phase), ['began', 'caught-up', 'frozen', 'swapped', 'retired'])
      assert.deepEqual({ generation: result.generation, previous: result.previousGeneration, applied: result.applied }, { generation: 2, previous: 1, applied: EVENTS })
      assert.deepEqual(errors, [], 'no read failed')
      assert.ok(reads.every((r) => r.whole && r.same), 'every read saw the whole model, equal to the one before the rebuild')
      const [old, rebuilt] = [reads.filter((r) => r.generation === 1).length, reads.filter((r) => r.generation === 2).length]
      assert.ok(old > 0 && rebuilt > 0, 'readers saw the old generation and then the new one')
      const after = await reader.read()
      assert.equal(after.generation, 2)
      assert.deepEqual(after.totals, before.totals, 'row for row the same table')
      assert.deepEqual(after.totals, expectedTotals(events))
      const relations = await reader.relations()
      assert.ok(!relations.includes('customer_totals_v1') && !relations.includes('customer_totals_orders_v1'), 'the old tables are dropped')
      assert.ok(relations.includes('customer_totals_v2') && relations.includes('customer_totals'), 'the new tables are behind the views')
      const at = (phase: string) => phases.find((e) => e.phase === phase)!.at
      t.diagnostic(`${label}: rebuild of ${EVENTS} events in ${Math.round(ms)} ms (${perSecond(EVENTS, ms)} events/s), frozen for ${at('swapped') - at('frozen')} ms before the swap; ${reads.length} reads during it (${old} of generation 1, ${rebuilt} of generation 2), 0 errors, every one whole and equal to the direct computation`)
      await projection.stop()
    })

    test('while a rebuild runs the live model keeps serving, and the swap never shows readers an older model', { timeout: 120_000 }, async (t) => {
      const topics = await freshTopics()
      const db = await freshDatabase(kind)
      const store = track(openStore(db))
      const all = shopEvents(4_000)
      const [first, later] = [all.slice(0, 3_000), all.slice(3_000)]
      await produceShopEvents(broker.bootstrap, topics, first)
      const projection = projectionOn(store, topics)
      await projection.start()
      await caughtUp(projection, 100_000)

      const reader = track(await openReader(db))
      const reads: (ModelRead & { at: number })[] = []
      const errors: unknown[] = []
      let done = false
      const polling = (async () => {
        while (!done) {
          try {
            reads.push({ ...(await reader.read()), at: Date.now() })
          } catch (err) {
            errors.push(err)
          }
          await new Promise((resolve) => setImmediate(resolve))
        }
      })()
      let began = 0
      const phaseAt = new Map<string, number>()
      projection.on('rebuild', (e) => {
        phaseAt.set(e.phase, e.at)
        if (e.phase === 'began') began = e.at
      })
      const rebuilt = projection.rebuild()
      await waitFor(() => began > 0, { what: 'the rebuild to begin' })
      await produceShopEvents(broker.bootstrap, topics, later, { batch: 50, pauseMs: 20 })
      await rebuilt
      await caughtUp(projection, 100_000)
      done = true
      await polling
      reads.push({ ...(await reader.read()), at: Date.now() })

      assert.deepEqual(errors, [], 'no read failed')
      assert.ok(reads.every((r) => r.consistent), 'every read saw a whole model')
      let previous = sums(reads[0]!)
      let backwards = 0
      for (const read of reads) {
        const now = sums(read)
        if (now.orders < previous.orders || now.ordered < previous.ordered || now.paid < previous.paid) backwards++
        previous = now
      }
      assert.equal(backwards, 0, 'no read showed fewer orders or payments than the read before it')
      assert.equal(reads.at(-1)!.generation, 2)
      assert.deepEqual(reads.at(-1)!.totals, expectedTotals(all))
      const firstOrders = sums(reads[0]!).orders
      const liveUpdates = reads.filter((r) => r.generation === 1 && r.at >= began && sums(r).orders > firstOrders).length
      t.diagnostic(`${label}: ${reads.length} reads while ${later.length} events arrived during a rebuild of ${first.length}: ${liveUpdates} reads of generation 1 already showed events produced after the rebuild began; frozen for ${phaseAt.get('swapped')! - phaseAt.get('frozen')!} ms before the swap; 0 errors, 0 going backwards`)
      await projection.stop()
    })

    test('lag counts the events not applied yet: all of them while stopped behind, 0 once caught up, in lag() and in the lag event', { timeout: 120_000 }, async () => {
      const topics = await freshTopics()
      const store = track(openStore(await freshDatabase(kind)))
      const projection = projectionOn(store, topics)
      const events = shopEvents(600)
      await produceShopEvents(broker.bootstrap, topics, events.slice(0, 100))
      assert.equal((await projection.lag()).total, 100, 'before the first start, every record is behind')
      await projection.start()
      await caughtUp(projection, 60_000)
      await projection.stop()

      await produceShopEvents(broker.bootstrap, topics, events.slice(100))
      const behind = await projection.lag()
      assert.equal(behind.total, 500, 'stopped, the 500 records produced since are behind')
      assert.equal(behind.current!.partitions.length, 2 * PARTITIONS)
      for (const p of behind.current!.partitions) assert.equal(BigInt(p.lag), p.highWatermark - p.nextOffset)
      assert.equal(behind.current!.partitions.reduce((s, p) => s + p.highWatermark, 0n), 600n)

      const reported: number[] = []
      projection.on('lag', (lag) => reported.push(lag.total))
      await projection.start()
      await waitFor(() => reported.at(-1) === 0, { timeoutMs: 60_000, what: 'a lag event reporting 0' })
      const caught = await projection.lag()
      assert.equal(caught.total, 0)
      assert.ok(caught.current!.partitions.every((p) => p.nextOffset === p.highWatermark))
      await projection.stop()
    })

    test('a projection process killed with kill -9 twice while events flow restarts without counting an event twice or missing one', { timeout: 120_000 }, async (t) => {
      const topics = await freshTopics()
      const db = await freshDatabase(kind)
      const groupPrefix = uniqueName('killed')
      const all = shopEvents(8_000)
      // An observer on the same database, never started: lag() only reads.
      const observerStore = track(openStore(db))
      const observer = projectionOn(observerStore, topics)
      const applied = async () => (await observer.lag()).current?.partitions.reduce((s, p) => s + Number(p.nextOffset), 0) ?? 0

      let produced = 0
      let kills = 0
      let held = false
      const producer = track(createProducer({ bootstrap: broker.bootstrap, delivery: 'exactly-once' }))
      const producing = (async () => {
        // At most 500 events/s, below what the projection applies on either database, so the
        // kills land while events are still being sent.
        const batch = 100
        for (let start = 0; start < all.length; start += batch) {
          // A backstop: the last tenth waits for the second kill, so both land before the stream ends.
          if (start >= all.length * 0.9 && kills < 2) {
            held = true
            await waitFor(() => kills >= 2, { timeoutMs: 100_000, what: 'the second kill' })
            held = false
          }
          await sendShopEvents(producer, topics, all.slice(start, start + batch))
          produced = Math.min(all.length, start + batch)
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      })()
      const figures: string[] = []
      for (const threshold of [0.2, 0.45]) {
        const service = new ProjectionProcess([broker.bootstrap, db, topics.orders, topics.payments, groupPrefix])
        await service.started
        await waitFor(async () => (await applied()) >= all.length * threshold, { timeoutMs: 100_000, intervalMs: 50, what: `${threshold * 100}% applied` })
        const [atKill, producedAtKill, sending] = [await applied(), produced, !held]
        await service.kill9()
        kills++
        figures.push(`kill -9 at ${atKill} applied, ${producedAtKill} produced, producer ${sending ? 'sending' : 'held'}`)
        assert.ok(producedAtKill < all.length, 'events were still flowing')
      }
      const last = new ProjectionProcess([broker.bootstrap, db, topics.orders, topics.payments, groupPrefix])
      await last.started
      await producing
      await caughtUp(observer, 100_000)
      assert.equal(await last.terminate(), 0)

      const reader = track(await openReader(db))
      const read = await reader.read()
      assert.ok(read.consistent)
      assert.deepEqual(read.totals, expectedTotals(all), 'equal to the direct computation: nothing counted twice, nothing missing')
      t.diagnostic(`${label}: ${all.length} events, 2 kill -9s of the projection process (${figures.join('; ')}), final table equal to the direct computation: 0 counted twice, 0 missing`)
    })

    test('a kill -9 at each step of a rebuild leaves one whole model readable, and the next start finishes the rebuild', { timeout: 120_000 }, async (t) => {
      const topics = await freshTopics()
      const db = await freshDatabase(kind)
      const groupPrefix = uniqueName('rebuilt')
      const events = shopEvents(3_000)
      const expected = expectedTotals(events)
      await produceShopEvents(broker.bootstrap, topics, events)
      const observerStore = track(openStore(db))
      const observer = projectionOn(observerStore, topics)
      const reader = track(await openReader(db))
      const args = [broker.bootstrap, db, topics.orders, topics.payments, groupPrefix]

      const first = new ProjectionProcess(args)
      await first.started
      await caughtUp(observer, 100_000)
      assert.equal(await first.terminate(), 0)

      // Each run dies at one point; the next start() resumes the rebuild from what it stored.
      const steps: { dieAt: string; rebuild?: boolean; check: (lag: ProjectionLag) => Promise<void> | void }[] = [
        { dieAt: 'began', rebuild: true, check: (lag) => assert.equal(lag.rebuild?.total, events.length, 'the build has applied nothing yet: all of it is lag') },
        { dieAt: 'applying:700', check: (lag) => assert.ok(lag.rebuild!.total > 0 && lag.rebuild!.total < events.length, 'killed mid-transaction, part way through the replay') },
        { dieAt: 'caught-up', check: (lag) => assert.equal(lag.rebuild?.total, 0) },
        { dieAt: 'frozen', check: async () => assert.equal((await reader.registry())?.frozen, true) },
        {
          dieAt: 'swapped',
          check: async () => {
            assert.deepEqual(await reader.registry(), { current: 2, frozen: false, building: null, retired: 1 })
            assert.ok((await reader.relations()).includes('customer_totals_v1'), 'killed before the old tables were dropped')
          },
        },
      ]
      const figures: string[] = []
      for (const step of steps) {
        const run = new ProjectionProcess([...args, '--die-at', step.dieAt, ...(step.rebuild ? ['--rebuild'] : [])])
        assert.equal(await run.exited, 'SIGKILL', `the process killed itself at ${step.dieAt}`)
        const read = await reader.read()
        assert.ok(read.consistent, `after a kill at ${step.dieAt}, the model is whole`)
        assert.deepEqual(read.totals, expected, `after a kill at ${step.dieAt}, the readable model is complete`)
        const lag = await observer.lag()
        await step.check(lag)
        figures.push(`${step.dieAt}: generation ${read.generation} readable, rebuild lag ${lag.rebuild?.total ?? '-'}`)
      }
      const final = new ProjectionProcess(args)
      await final.started
      await waitFor(async () => {
        const registry = await reader.registry()
        return registry?.building === null && registry.retired === null
      }, { timeoutMs: 60_000, what: 'the retirement to finish' })
      assert.equal(await final.terminate(), 0)

      assert.deepEqual(await reader.registry(), { current: 2, frozen: false, building: null, retired: null })
      const read = await reader.read()
      assert.ok(read.consistent)
      assert.deepEqual(read.totals, expected)
      const relations = (await reader.relations()).filter((name) => name.startsWith('customer_totals'))
      assert.deepEqual(relations.sort(), ['customer_totals', 'customer_totals_orders', 'customer_totals_orders_v2', 'customer_totals_v2'])
      t.diagnostic(`${label}: ${events.length} events, rebuild killed at 5 points (${figures.join('; ')}); finished by the next start, equal to the direct computation`)
    })

    // SQLite's store assumes one process per file; two instances share a PostgreSQL database.
    if (kind === 'postgres') {
      test('with two instances, a rebuild by one moves the other to the new generation, and no event counts twice', { timeout: 120_000 }, async (t) => {
        const topics = await freshTopics()
        const db = await freshDatabase(kind)
        const all = shopEvents(3_000)
        await produceShopEvents(broker.bootstrap, topics, all.slice(0, 2_000))
        const [a, b] = [projectionOn(track(openStore(db)), topics), projectionOn(track(openStore(db)), topics)]
        await a.start()
        await caughtUp(a, 100_000)
        await b.start()
        assert.equal(b.status().generation, 1, 'the second instance joins generation 1 from the registry')
        const flowing = produceShopEvents(broker.bootstrap, topics, all.slice(2_000), { batch: 50, pauseMs: 20 })
        const result = await a.rebuild()
        await flowing
        await waitFor(() => b.status().generation === 2, { timeoutMs: 30_000, what: 'the second instance to follow the swap' })
        await caughtUp(a, 100_000)
        const reader = track(await openReader(db))
        const read = await reader.read()
        assert.ok(read.consistent)
        assert.deepEqual(read.totals, expectedTotals(all))
        assert.ok(!(await reader.relations()).includes('customer_totals_v1'))
        t.diagnostic(`PostgreSQL: 2 instances, ${all.length} events (1,000 during the rebuild); the build applied ${result.applied} in the rebuilding instance; the other followed to generation 2; table equal to the direct computation`)
        await b.stop()
        await a.stop()
      })
    }

    test('a bumped version rebuilds on start while the old model stays readable, and older code refuses the newer model', { timeout: 120_000 }, async () => {
      const topics = await freshTopics()
      const db = await freshDatabase(kind)
      const store = track(openStore(db))
      const events = shopEvents(1_000)
      await produceShopEvents(broker.bootstrap, topics, events)
      const groupIdPrefix = uniqueName('versioned')
      const v1 = createProjection({ ...customerTotalsDefinition(store.dialect), bootstrap: broker.bootstrap, store, topics: [topics.orders, topics.payments], groupIdPrefix, pollIntervalMs: POLL_MS })
      cleanups.push(() => v1.stop())
      await v1.start()
      await caughtUp(v1, 60_000)
      await v1.stop()

      const v2 = createProjection({ ...customerTotalsDefinition(store.dialect), bootstrap: broker.bootstrap, store, topics: [topics.orders, topics.payments], groupIdPrefix, pollIntervalMs: POLL_MS, version: 2 })
      cleanups.push(() => v2.stop())
      const phases: string[] = []
      v2.on('rebuild', (e) => phases.push(e.phase))
      await v2.start()
      assert.deepEqual(v2.status().generation, null, 'version 2 does not write to the version 1 tables')
      assert.equal(v2.status().rebuilding, 2)
      await waitFor(() => phases.includes('retired'), { timeoutMs: 60_000, what: 'the version 2 rebuild' })
      assert.equal(v2.status().generation, 2)
      const reader = track(await openReader(db))
      assert.deepEqual((await reader.read()).totals, expectedTotals(events))
      await v2.stop()
      await assert.rejects(v1.start(), ProjectionVersionError)
    })
  })
}

/** The projection service as a child process (clients/projection_service.ts), killed after 100 s whatever happens. */
class ProjectionProcess {
  readonly child: ChildProcess
  readonly started: Promise<void>
  /** Resolves with the signal that ended it, or its exit code. */
  readonly exited: Promise<string | number | null>
  readonly events: Record<string, unknown>[] = []
  stderr = ''

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [SERVICE, ...args, '--poll-ms', String(POLL_MS), '--lifetime-ms', '100000'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const lifetime = setTimeout(() => this.child.kill('SIGKILL'), 100_000)
    lifetime.unref()
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        clearTimeout(lifetime)
        resolve(signal ?? code)
      }),
    )
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-8_000)))
    onLines(this.child.stdout!, (line) => this.events.push(JSON.parse(line) as Record<string, unknown>))
    this.started = Promise.race([
      waitFor(() => this.events.some((e) => e.event === 'started'), { timeoutMs: 60_000, what: 'the projection process to start' }).then(() => {}),
      this.exited.then((how) => {
        throw new Error(`the projection process ended (${how}) before it started:\n${this.stderr}`)
      }),
    ])
    this.started.catch(() => {})
    cleanups.push(() => this.kill9())
  }

  async kill9(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
    await this.exited
  }

  /** SIGTERM: the service stops its projection and exits 0. */
  async terminate(): Promise<string | number | null> {
    this.child.kill('SIGTERM')
    return this.exited
  }
}
