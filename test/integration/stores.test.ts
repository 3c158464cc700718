// The Store contract (src/sdk/store.ts) against both adapters: SQLite on a temporary file, and a
// real PostgreSQL at TIDEWAY_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
// Each test gets a database of its own: a fresh SQLite file, or a fresh schema (reached through
// the connections' search_path) dropped in after(), so other files may share the server.
// Where one transaction must wait for another, the test waits for the wait itself: PostgreSQL
// shows the blocked backend in pg_stat_activity; SQLite's second transaction never starts.
// Outside CI a missing PostgreSQL skips its half with the reason; in CI it fails this file.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { setImmediate as nextTurn } from 'node:timers/promises'
import pg from 'pg'
import type { OutboxMessage, Store, StoreDialect, StoreTransaction } from '../../src/sdk/store.ts'
import { postgresStore } from '../../src/stores/postgres.ts'
import { sqliteStore } from '../../src/stores/sqlite.ts'
import { scheduleCleanup } from '../../src/sdk/cleanup.ts'
import { waitFor } from '../helpers/wait.ts'
import { PG_URL, postgresProblem } from '../helpers/postgres.ts'

const NOW = 1_700_000_000_000
const TIMEOUT = { timeout: 30_000 }
const BEYOND_DOUBLES = 9007199254740993n // 2^53 + 1: the first integer a double cannot hold
const INT64_MAX = 9223372036854775807n

const pgProblem = await postgresProblem()
if (pgProblem !== undefined && process.env.CI === 'true') {
  throw new Error(`${pgProblem}; CI must run PostgreSQL (.ci/run starts it)`)
}

interface TestDatabase {
  /** Opens another store on this database; every store is closed in after(). */
  open(): Store
}

interface Backend {
  readonly dialect: StoreDialect
  readonly skip: string | false
  database(): Promise<TestDatabase>
  /**
   * Starts `body` in a transaction of `store` and resolves once that transaction is waiting for
   * another one: blocked on a lock (PostgreSQL) or queued behind it (SQLite).
   */
  blocked<T>(store: Store, body: (tx: StoreTransaction) => Promise<T>): Promise<{ done: Promise<T> }>
}

const openStores: Store[] = []
const cleanups: (() => Promise<void>)[] = []
after(async () => {
  for (const open of latches) open()
  for (const store of openStores) await store.close()
  for (const cleanup of cleanups.reverse()) await cleanup()
})

function track(store: Store): Store {
  openStores.push(store)
  return store
}

const runId = randomBytes(4).toString('hex')
const sqliteDir = await mkdtemp(join(tmpdir(), 'tideway-stores-'))
cleanups.push(() => rm(sqliteDir, { recursive: true, force: true }))
let sqliteFiles = 0

const sqlite: Backend = {
  dialect: 'sqlite',
  skip: false,
  async database() {
    const file = join(sqliteDir, `store-${++sqliteFiles}.db`)
    return { open: () => track(sqliteStore(file)) }
  },
  async blocked(store, body) {
    let started = false
    const done = store.transaction(async (tx) => {
      started = true
      return body(tx)
    })
    // The queue is a promise chain: had the transaction been free to start, it would have by now.
    for (let turn = 0; turn < 20; turn++) await nextTurn()
    assert.equal(started, false, 'the second transaction waits in the queue')
    return { done }
  },
}

let admin: pg.Pool | undefined
function adminPool(): pg.Pool {
  if (!admin) {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 2, application_name: 'tideway-store-test-admin' })
    pool.on('error', () => {})
    cleanups.push(() => pool.end())
    admin = pool
  }
  return admin
}
let schemas = 0

async function freshSchema(): Promise<string> {
  const schema = `tideway_store_test_${runId}_${++schemas}`
  await adminPool().query(`CREATE SCHEMA ${schema}`)
  // Registered after the admin pool, so it runs before the pool ends.
  cleanups.push(async () => {
    await adminPool().query(`DROP SCHEMA ${schema} CASCADE`)
  })
  return schema
}

/** A pool the test owns, its connections in `schema`; ended in after(). */
function callerPool(schema: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4, options: `-c search_path=${schema}` })
  pool.on('error', () => {})
  cleanups.push(() => pool.end())
  return pool
}

function openPostgres(schema: string): Store {
  return track(postgresStore({ connectionString: PG_URL, searchPath: schema, applicationName: 'tideway-store-test', maxConnections: 4 }))
}

const postgres: Backend = {
  dialect: 'postgres',
  skip: pgProblem ?? false,
  async database() {
    const schema = await freshSchema()
    return { open: () => openPostgres(schema) }
  },
  async blocked(store, body) {
    let pid: number | undefined
    const done = store.transaction(async (tx) => {
      const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      pid = row?.pid
      return body(tx)
    })
    done.catch(() => {}) // observed by the caller; this keeps a failure before then from going unhandled
    await waitFor(
      async () =>
        pid !== undefined &&
        ((await adminPool().query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'`, [pid])).rowCount ?? 0) > 0,
      { what: 'the second transaction to wait on a lock' },
    )
    return { done }
  },
}

/** The user's SQL is written with `?` here and numbered for PostgreSQL. */
function userSql(store: Store, sql: string): string {
  let index = 0
  return store.dialect === 'postgres' ? sql.replace(/\?/g, () => `$${++index}`) : sql
}

async function migratedStore(backend: Backend): Promise<Store> {
  const store = (await backend.database()).open()
  await store.migrate()
  return store
}

const latches: (() => void)[] = []

/**
 * A latch: `wait` resolves once `open()` was called. after() opens every latch first, so a
 * failed test leaves no transaction holding a connection that close() would wait for.
 */
function latch(): { open: () => void; wait: Promise<void> } {
  let open!: () => void
  const wait = new Promise<void>((resolve) => {
    open = resolve
  })
  latches.push(open)
  return { open, wait }
}

function event(topic: string, overrides: Partial<OutboxMessage> = {}): OutboxMessage {
  return { topic, key: Buffer.from('key'), value: Buffer.from('value'), headers: [], partition: null, ...overrides }
}

async function outboxIds(store: Store): Promise<bigint[]> {
  return store.transaction(async (tx) =>
    (await tx.query<{ id: unknown }>('SELECT id FROM tideway_outbox ORDER BY id')).map((row) => BigInt(String(row.id))),
  )
}

for (const backend of [sqlite, postgres]) {
  describe(`${backend.dialect} store`, { skip: backend.skip }, () => {
    test('migrate() creates the tables once and can run again on every start', TIMEOUT, async () => {
      const database = await backend.database()
      const first = database.open()
      await first.migrate()
      await first.migrate()
      const second = database.open()
      await second.migrate()
      await second.transaction((tx) => tx.setPartitionOffset('group', 'orders', 0, 7n))
      assert.deepEqual(await first.readOffsets('group'), [{ topic: 'orders', partition: 0, nextOffset: 7n }])
    })

    test("a transaction commits the user's own rows together with offsets, inbox keys, outbox events and request claims", TIMEOUT, async () => {
      const store = await migratedStore(backend)
      await store.transaction((tx) => tx.query('CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)'))
      const inserted = await store.transaction(async (tx) => {
        const rows = await tx.query(userSql(store, 'INSERT INTO accounts (id, balance) VALUES (?, ?)'), ['alice', 100])
        assert.deepEqual(rows, [], 'a statement without a result gives no rows')
        await tx.lockPartition('billing', 'payments', 2)
        await tx.setPartitionOffset('billing', 'payments', 2, 11n)
        assert.equal(await tx.recordInbox('billing', 'payment-1', { topic: 'payments', partition: 2, offset: 10n }, NOW), true)
        assert.deepEqual(await tx.claimRequest('charges', 'charge-1', NOW), { state: 'new' })
        await tx.completeRequest('charges', 'charge-1', Buffer.from('charged'))
        return tx.enqueueOutbox(event('receipts'), NOW)
      })

      const balances = await store.transaction((tx) =>
        tx.query<{ id: string; balance: unknown }>(userSql(store, 'SELECT id, balance FROM accounts WHERE id = ?'), ['alice']),
      )
      assert.deepEqual(balances.map((row) => [row.id, Number(row.balance)]), [['alice', 100]])
      assert.deepEqual(await store.readOffsets('billing'), [{ topic: 'payments', partition: 2, nextOffset: 11n }])
      assert.deepEqual((await store.outbox.pending(10)).map((row) => row.id), [inserted])
      await store.transaction(async (tx) => {
        assert.equal(await tx.recordInbox('billing', 'payment-1', { topic: 'payments', partition: 2, offset: 10n }, NOW), false)
        assert.deepEqual(await tx.claimRequest('charges', 'charge-1', NOW), { state: 'done', response: Buffer.from('charged') })
      })
    })

    test('an error thrown by the work rolls back the user\'s rows and every SDK row, and is rethrown', TIMEOUT, async () => {
      const store = await migratedStore(backend)
      await store.transaction((tx) => tx.query('CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)'))
      const failure = new Error('the handler failed after writing')
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.query(userSql(store, 'INSERT INTO accounts (id, balance) VALUES (?, ?)'), ['bob', 5])
          await tx.lockPartition('billing', 'payments', 0)
          await tx.setPartitionOffset('billing', 'payments', 0, 3n)
          await tx.recordInbox('billing', 'payment-9', { topic: 'payments', partition: 0, offset: 2n }, NOW)
          await tx.enqueueOutbox(event('receipts'), NOW)
          await tx.claimRequest('charges', 'charge-9', NOW)
          throw failure
        }),
        (err) => err === failure,
      )

      assert.deepEqual(await store.transaction((tx) => tx.query('SELECT id FROM accounts')), [])
      assert.deepEqual(await store.readOffsets('billing'), [])
      assert.deepEqual(await store.outbox.pending(10), [])
      await store.transaction(async (tx) => {
        assert.equal(await tx.lockPartition('billing', 'payments', 0), null)
        assert.equal(await tx.recordInbox('billing', 'payment-9', { topic: 'payments', partition: 0, offset: 2n }, NOW), true)
        assert.deepEqual(await tx.claimRequest('charges', 'charge-9', NOW), { state: 'new' })
      })
    })

    test('lockPartition returns null for a partition never stored, then the stored offset exactly, beyond 2^53', TIMEOUT, async () => {
      const store = await migratedStore(backend)
      await store.transaction(async (tx) => {
        assert.equal(await tx.lockPartition('audit', 'ledger', 0), null)
        await tx.setPartitionOffset('audit', 'ledger', 0, BEYOND_DOUBLES)
        await tx.setPartitionOffset('audit', 'ledger', 1, INT64_MAX)
      })
      await store.transaction(async (tx) => {
        assert.equal(await tx.lockPartition('audit', 'ledger', 0), BEYOND_DOUBLES)
        assert.equal(await tx.lockPartition('audit', 'ledger', 1), INT64_MAX)
        assert.equal(await tx.lockPartition('audit', 'ledger', 2), null)
      })
      assert.deepEqual(await store.readOffsets('audit'), [
        { topic: 'ledger', partition: 0, nextOffset: BEYOND_DOUBLES },
        { topic: 'ledger', partition: 1, nextOffset: INT64_MAX },
      ])
    })

    test("two transactions locking one partition take turns, and the second sees the first's committed offset", TIMEOUT, async () => {
      const store = await migratedStore(backend)
      // Partition 0 has no row yet (the first inserts it); partition 1 has a committed offset,
      // as after a rebalance, so only the row lock can hold the second back.
      await store.transaction((tx) => tx.setPartitionOffset('workers', 'jobs', 1, 7n))
      for (const [partition, stored] of [[0, null], [1, 7n]] as const) {
        const firstLocked = latch()
        const firstMayCommit = latch()
        const first = store.transaction(async (tx) => {
          assert.equal(await tx.lockPartition('workers', 'jobs', partition), stored)
          firstLocked.open()
          await firstMayCommit.wait
          await tx.setPartitionOffset('workers', 'jobs', partition, 42n)
        })
        await firstLocked.wait
        const second = await backend.blocked(store, async (tx) => {
          const seen = await tx.lockPartition('workers', 'jobs', partition)
          await tx.setPartitionOffset('workers', 'jobs', partition, (seen ?? 0n) + 1n)
          return seen
        })
        firstMayCommit.open()
        await first
        assert.equal(await second.done, 42n, `partition ${partition}`)
      }
      assert.deepEqual(await store.readOffsets('workers'), [
        { topic: 'jobs', partition: 0, nextOffset: 43n },
        { topic: 'jobs', partition: 1, nextOffset: 43n },
      ])
    })

    test('recordInbox is true for a new key, false for a repeat in the same group, and true for the same key in another group', TIMEOUT, async () => {
      const store = await migratedStore(backend)
      const at = { topic: 'orders', partition: 1, offset: BEYOND_DOUBLES }
      await store.transaction(async (tx) => {
        assert.equal(await tx.recordInbox('shipping', 'order-1', at, NOW), true)
        assert.equal(await tx.recordInbox('shipping', 'order-1', at, NOW + 1), false)
      })
      await store.transaction(async (tx) => {
        assert.equal(await tx.recordInbox('shipping', 'order-1', { ...at, offset: 99n }, NOW + 2), false)
        assert.equal(await tx.recordInbox('invoicing', 'order-1', at, NOW + 3), true)
        assert.equal(await tx.recordInbox('shipping', 'order-2', at, NOW + 4), true)
        // node:sqlite will not read 2^53 + 1 as a number, so the user's query asks for text.
        const stored = await tx.query<{ message_offset: unknown; processed_at: unknown }>(
          userSql(
            store,
            'SELECT CAST(message_offset AS TEXT) AS message_offset, processed_at FROM tideway_inbox WHERE group_id = ? AND message_key = ?',
          ),
          ['shipping', 'order-1'],
        )
        assert.deepEqual(
          stored.map((row) => [row.message_offset, Number(row.processed_at)]),
          [[String(BEYOND_DOUBLES), NOW]],
          'a repeat writes nothing',
        )
      })
    })

    test('outbox events are pending in id order with their bytes and ordered headers until marked published', TIMEOUT, async () => {
      const store = await migratedStore(backend)
      const binary = Buffer.from([0x00, 0xff, 0x10, 0x80])
      const messages: OutboxMessage[] = [
        event('orders', { key: binary, headers: [['trace', Buffer.from('a')], ['trace', Buffer.from('b')], ['bin', binary]], partition: 3 }),
        event('orders', { key: null, value: null }),
        event('refunds', { headers: [['empty', Buffer.alloc(0)]] }),
      ]
      const ids = await store.transaction(async (tx) => {
        const written: bigint[] = []
        for (const [index, message] of messages.entries()) written.push(await tx.enqueueOutbox(message, NOW + index))
        return written
      })
      assert.ok(ids.every((id, index) => typeof id === 'bigint' && (index === 0 || id > ids[index - 1]!)), 'ids ascend')

      const pending = await store.outbox.pending(10)
      assert.deepEqual(
        pending,
        messages.map((message, index) => ({ ...message, id: ids[index], createdAtMs: NOW + index })),
      )
      assert.ok(pending.every((row) => row.headers.every(([, value]) => Buffer.isBuffer(value))), 'header values are Buffers')
      assert.deepEqual((await store.outbox.pending(2)).map((row) => row.id), ids.slice(0, 2), 'the limit keeps the lowest ids')

      await store.outbox.markPublished(ids.slice(0, 2), NOW + 10)
      assert.deepEqual((await store.outbox.pending(10)).map((row) => row.id), [ids[2]])
      await store.outbox.markPublished([ids[2]!], NOW + 11)
      assert.deepEqual(await store.outbox.pending(10), [])
    })

    test('withRelayLock runs one holder at a time, answers null to others without running their work, and frees on error', TIMEOUT, async () => {
      const database = await backend.database()
      const store = database.open()
      await store.migrate()
      const other = database.open()
      await store.transaction((tx) => tx.enqueueOutbox(event('orders'), NOW))

      const inside = latch()
      const mayLeave = latch()
      const holder = store.outbox.withRelayLock(async () => {
        // The holder reads and writes the outbox while it holds the lock.
        const pending = await store.outbox.pending(10)
        await store.outbox.markPublished(pending.map((row) => row.id), NOW)
        inside.open()
        await mayLeave.wait
        return pending.length
      })
      await inside.wait
      let ranWhileHeld = false
      const refuse = async () => {
        ranWhileHeld = true
      }
      assert.equal(await other.outbox.withRelayLock(refuse), null, 'a second store is refused')
      assert.equal(await store.outbox.withRelayLock(refuse), null, 'the holder\'s own store is refused too')
      assert.equal(ranWhileHeld, false)
      mayLeave.open()
      assert.equal(await holder, 1)

      assert.equal(await other.outbox.withRelayLock(async () => 'after release'), 'after release')
      await assert.rejects(store.outbox.withRelayLock(async () => Promise.reject(new Error('publish failed'))), /publish failed/)
      assert.equal(await other.outbox.withRelayLock(async () => 'after a failure'), 'after a failure')
    })

    test('a completed request answers later claims with its exact response bytes', TIMEOUT, async () => {
      const store = await migratedStore(backend)
      const response = Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x7f, 0x80])
      await store.transaction(async (tx) => {
        assert.deepEqual(await tx.claimRequest('billing', 'invoice-7', NOW), { state: 'new' })
        await tx.completeRequest('billing', 'invoice-7', response)
      })
      const later = await store.transaction((tx) => tx.claimRequest('billing', 'invoice-7', NOW + 1))
      assert.deepEqual(later, { state: 'done', response })
      assert.ok(later.state === 'done' && Buffer.isBuffer(later.response))
      assert.deepEqual(await store.transaction((tx) => tx.claimRequest('refunds', 'invoice-7', NOW)), { state: 'new' }, 'scopes are separate')
    })

    test('a claim committed without a response is refused rather than run again', TIMEOUT, async () => {
      const store = await migratedStore(backend)
      await store.transaction((tx) => tx.claimRequest('billing', 'abandoned', NOW))
      await assert.rejects(store.transaction((tx) => tx.claimRequest('billing', 'abandoned', NOW)), /no stored response/)
      await assert.rejects(store.transaction((tx) => tx.completeRequest('billing', 'never-claimed', Buffer.from('x'))), /no pending claim/)
    })

    test("a concurrent claim of one request key waits for the first transaction: done after its commit, new after its rollback", TIMEOUT, async () => {
      const store = await migratedStore(backend)
      for (const outcome of ['commit', 'rollback'] as const) {
        const key = `request-${outcome}`
        const claimed = latch()
        const mayFinish = latch()
        const first = store.transaction(async (tx) => {
          assert.deepEqual(await tx.claimRequest('billing', key, NOW), { state: 'new' })
          claimed.open()
          await mayFinish.wait
          await tx.completeRequest('billing', key, Buffer.from(`answer for ${key}`))
          if (outcome === 'rollback') throw new Error('the first attempt failed')
        })
        await claimed.wait
        const second = await backend.blocked(store, (tx) => tx.claimRequest('billing', key, NOW + 1))
        mayFinish.open()
        if (outcome === 'commit') {
          await first
          assert.deepEqual(await second.done, { state: 'done', response: Buffer.from(`answer for ${key}`) })
        } else {
          await assert.rejects(first, /the first attempt failed/)
          assert.deepEqual(await second.done, { state: 'new' })
        }
      }
    })

    test('cleanup deletes only rows older than each given age and returns the counts', TIMEOUT, async () => {
      const store = await migratedStore(backend)
      const at = { topic: 'orders', partition: 0, offset: 1n }
      const old = 1_000
      const recent = 5_000
      const ids = await store.transaction(async (tx) => {
        await tx.recordInbox('shipping', 'old', at, old)
        await tx.recordInbox('shipping', 'recent', at, recent)
        await tx.claimRequest('billing', 'old', old)
        await tx.completeRequest('billing', 'old', Buffer.from('a'))
        await tx.claimRequest('billing', 'recent', recent)
        await tx.completeRequest('billing', 'recent', Buffer.from('b'))
        await tx.claimRequest('billing', 'unfinished', old)
        return {
          publishedLongAgo: await tx.enqueueOutbox(event('orders'), old),
          publishedRecently: await tx.enqueueOutbox(event('orders'), old),
          unpublished: await tx.enqueueOutbox(event('orders'), old),
        }
      })
      await store.outbox.markPublished([ids.publishedLongAgo], old)
      await store.outbox.markPublished([ids.publishedRecently], recent)

      assert.deepEqual(await store.cleanup({}, 6_000), { inbox: 0, outbox: 0, requests: 0 }, 'no age, no deletion')
      assert.deepEqual(
        await store.cleanup({ inboxMs: 2_000, publishedOutboxMs: 2_000, requestsMs: 2_000 }, 6_000),
        { inbox: 1, outbox: 1, requests: 1 },
      )
      assert.deepEqual(await outboxIds(store), [ids.publishedRecently, ids.unpublished])
      await store.transaction(async (tx) => {
        assert.equal(await tx.recordInbox('shipping', 'old', at, 6_000), true, 'the old key was deleted')
        assert.equal(await tx.recordInbox('shipping', 'recent', at, 6_000), false, 'the recent key stays')
        assert.deepEqual(await tx.claimRequest('billing', 'old', 6_000), { state: 'new' })
        assert.deepEqual(await tx.claimRequest('billing', 'recent', 6_000), { state: 'done', response: Buffer.from('b') })
      })
      await assert.rejects(store.transaction((tx) => tx.claimRequest('billing', 'unfinished', 6_000)), /no stored response/, 'a pending claim is kept')
    })

    test('a parked key stays parked until unparked, per group, partition and key bytes, and remembers a blocked redrive', TIMEOUT, async () => {
      const store = await migratedStore(backend)
      const key = Buffer.from([0x00, 0x6b, 0xff])
      await store.transaction(async (tx) => {
        assert.equal(await tx.parkedKey('billing', 'orders', 1, key), null)
        await tx.parkKey('billing', 'orders', 1, key, BEYOND_DOUBLES, NOW, null)
        assert.deepEqual(await tx.parkedKey('billing', 'orders', 1, key), { blockedRedrive: null })
        await tx.parkKey('billing', 'orders', 1, key, 5n, NOW + 1, 'redrive-1') // parked already: offset and time stay
        assert.deepEqual(await tx.parkedKey('billing', 'orders', 1, key), { blockedRedrive: 'redrive-1' })
        await tx.parkKey('billing', 'orders', 1, key, 6n, NOW + 2, null)
        assert.deepEqual(await tx.parkedKey('billing', 'orders', 1, key), { blockedRedrive: 'redrive-1' }, 'a plain park keeps the blocked redrive')
        assert.equal(await tx.parkedKey('billing', 'orders', 0, key), null, 'another partition')
        assert.equal(await tx.parkedKey('shipping', 'orders', 1, key), null, 'another group')
        assert.equal(await tx.parkedKey('billing', 'orders', 1, Buffer.from([0x00, 0x6b])), null, 'another key')
      })
      assert.deepEqual(await store.readParkedKeys('billing'), [
        { topic: 'orders', partition: 1, recordKey: key, parkedOffset: BEYOND_DOUBLES, parkedAtMs: NOW, blockedRedrive: 'redrive-1' },
      ])
      await store.transaction(async (tx) => {
        assert.equal(await tx.unparkKey('billing', 'orders', 1, key), true)
        assert.equal(await tx.unparkKey('billing', 'orders', 1, key), false)
      })
      assert.deepEqual(await store.readParkedKeys('billing'), [])
    })

    test("readOffsets lists one group's stored offsets and leaves out partitions locked without one", TIMEOUT, async () => {
      const store = await migratedStore(backend)
      await store.transaction(async (tx) => {
        await tx.setPartitionOffset('analytics', 'views', 1, 20n)
        await tx.setPartitionOffset('analytics', 'clicks', 0, BEYOND_DOUBLES)
        await tx.setPartitionOffset('analytics', 'views', 0, 10n)
        await tx.setPartitionOffset('other-group', 'views', 0, 5n)
        await tx.lockPartition('analytics', 'views', 2)
      })
      assert.deepEqual(await store.readOffsets('analytics'), [
        { topic: 'clicks', partition: 0, nextOffset: BEYOND_DOUBLES },
        { topic: 'views', partition: 0, nextOffset: 10n },
        { topic: 'views', partition: 1, nextOffset: 20n },
      ])
      assert.deepEqual(await store.readOffsets('nobody'), [])
    })

    test('a transaction refuses calls made after it ended, and a closed store refuses operations', TIMEOUT, async () => {
      const database = await backend.database()
      const store = database.open()
      await store.migrate()
      let leaked: StoreTransaction | undefined
      await store.transaction(async (tx) => {
        leaked = tx
      })
      await assert.rejects(leaked!.setPartitionOffset('late', 'orders', 0, 1n), { code: 'TIDEWAY_ERR_CLOSED' })
      assert.deepEqual(await store.readOffsets('late'), [])

      const closing = database.open()
      await closing.close()
      await assert.rejects(closing.transaction(async () => 1), { code: 'TIDEWAY_ERR_CLOSED' })
      await assert.rejects(closing.outbox.pending(1), { code: 'TIDEWAY_ERR_CLOSED' })
    })
  })
}

describe('sqlite store on its file', () => {
  test('a store reopened from the same file keeps offsets, inbox keys, outbox events and responses', TIMEOUT, async () => {
    const file = join(sqliteDir, 'reopened.db')
    const first = sqliteStore(file)
    await first.migrate()
    const id = await first.transaction(async (tx) => {
      await tx.setPartitionOffset('billing', 'payments', 0, BEYOND_DOUBLES)
      await tx.recordInbox('billing', 'payment-1', { topic: 'payments', partition: 0, offset: 1n }, NOW)
      await tx.claimRequest('charges', 'charge-1', NOW)
      await tx.completeRequest('charges', 'charge-1', Buffer.from([0xca, 0xfe]))
      return tx.enqueueOutbox(event('receipts', { headers: [['h', Buffer.from([1, 2])]] }), NOW)
    })
    await first.close()

    const reopened = track(sqliteStore(file))
    await reopened.migrate()
    assert.deepEqual(await reopened.readOffsets('billing'), [{ topic: 'payments', partition: 0, nextOffset: BEYOND_DOUBLES }])
    assert.deepEqual(await reopened.outbox.pending(10), [
      { ...event('receipts', { headers: [['h', Buffer.from([1, 2])]] }), id, createdAtMs: NOW },
    ])
    await reopened.transaction(async (tx) => {
      assert.equal(await tx.recordInbox('billing', 'payment-1', { topic: 'payments', partition: 0, offset: 1n }, NOW), false)
      assert.deepEqual(await tx.claimRequest('charges', 'charge-1', NOW), { state: 'done', response: Buffer.from([0xca, 0xfe]) })
    })
  })

  test('a store opens its file in WAL mode with synchronous=FULL', TIMEOUT, async () => {
    const store = track(sqliteStore(join(sqliteDir, 'pragmas.db')))
    const [journal, synchronous] = await store.transaction(async (tx) => [
      await tx.query<{ journal_mode: string }>('PRAGMA journal_mode'),
      await tx.query<{ synchronous: number }>('PRAGMA synchronous'),
    ] as const)
    assert.deepEqual([journal[0]?.journal_mode, synchronous[0]?.synchronous], ['wal', 2]) // 2 is FULL
  })
})

describe('postgres store on a shared server', { skip: pgProblem ?? false }, () => {
  test('an outbox row committed after a higher id was published is still pending', TIMEOUT, async () => {
    const store = await migratedStore(postgres)
    const enqueued = latch()
    const mayCommit = latch()
    let earlyId = 0n
    const early = store.transaction(async (tx) => {
      earlyId = await tx.enqueueOutbox(event('orders', { value: Buffer.from('early') }), NOW)
      enqueued.open()
      await mayCommit.wait
    })
    await enqueued.wait
    const lateId = await store.transaction((tx) => tx.enqueueOutbox(event('orders', { value: Buffer.from('late') }), NOW))
    assert.ok(earlyId < lateId, 'the transaction that commits last holds the lower id')

    assert.deepEqual((await store.outbox.pending(10)).map((row) => row.id), [lateId])
    await store.outbox.markPublished([lateId], NOW)
    mayCommit.open()
    await early
    assert.deepEqual((await store.outbox.pending(10)).map((row) => [row.id, row.value?.toString()]), [[earlyId, 'early']])
  })

  test("int8 reads are exact bigints in the store without changing pg's process-wide parser", TIMEOUT, async () => {
    const store = await migratedStore(postgres)
    await store.transaction((tx) => tx.setPartitionOffset('audit', 'ledger', 0, BEYOND_DOUBLES))
    assert.deepEqual(await store.readOffsets('audit'), [{ topic: 'ledger', partition: 0, nextOffset: BEYOND_DOUBLES }])
    const plain = await adminPool().query<{ offset: unknown }>('SELECT 9007199254740993::int8 AS offset')
    assert.equal(plain.rows[0]?.offset, '9007199254740993', 'pg still reads int8 as a string elsewhere')
    const user = await store.transaction((tx) => tx.query<{ next_offset: unknown }>('SELECT next_offset FROM tideway_consumer_offsets'))
    assert.deepEqual(user, [{ next_offset: '9007199254740993' }], "the user's query keeps the pool's parsers")
  })

  test("a store on a caller's pool excludes a relay of another pool and leaves the caller's pool open on close", TIMEOUT, async () => {
    const schema = await freshSchema()
    const pool = callerPool(schema)
    const onCallerPool = postgresStore({ pool })
    await onCallerPool.migrate()
    const ownPool = openPostgres(schema)

    const inside = latch()
    const mayLeave = latch()
    const holder = onCallerPool.outbox.withRelayLock(async () => {
      inside.open()
      await mayLeave.wait
      return 'held'
    })
    await inside.wait
    assert.equal(await ownPool.outbox.withRelayLock(async () => 'also held'), null)
    mayLeave.open()
    assert.equal(await holder, 'held')
    assert.equal(await ownPool.outbox.withRelayLock(async () => 'now mine'), 'now mine')

    await onCallerPool.close()
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0]?.one, 1, 'the pool still serves queries')
  })

  test('relays of outboxes in different schemas of one database do not exclude each other', TIMEOUT, async () => {
    const here = await migratedStore(postgres)
    const elsewhere = await migratedStore(postgres)
    const inside = latch()
    const mayLeave = latch()
    const holder = here.outbox.withRelayLock(async () => {
      inside.open()
      await mayLeave.wait
    })
    await inside.wait
    assert.equal(await elsewhere.outbox.withRelayLock(async () => 'independent'), 'independent')
    mayLeave.open()
    await holder
  })
})

describe('cleanup schedule', () => {
  test('scheduleCleanup runs at once and then every interval, deleting what is past its retention', TIMEOUT, async () => {
    const store = await migratedStore(sqlite)
    const now = Date.now()
    await store.transaction(async (tx) => {
      await tx.recordInbox('g', 'old', { topic: 't', partition: 0, offset: 1n }, now - 10_000)
      await tx.recordInbox('g', 'new', { topic: 't', partition: 0, offset: 2n }, now)
    })
    const runs: { inbox: number }[] = []
    const stop = scheduleCleanup(store, { inboxMs: 5_000, intervalMs: 20, onCleaned: (counts) => void runs.push(counts) })
    try {
      await waitFor(() => runs.length >= 3, { what: 'three cleanup runs' })
    } finally {
      await stop()
    }
    assert.deepEqual(runs.slice(0, 2).map((r) => r.inbox), [1, 0], 'the old key goes at the first run, the recent one stays')
    await store.transaction(async (tx) => assert.equal(await tx.recordInbox('g', 'new', { topic: 't', partition: 0, offset: 2n }, now), false))
  })
})
