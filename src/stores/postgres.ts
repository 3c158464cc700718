// The Store contract (src/sdk/store.ts) on PostgreSQL, through a pg connection pool.
//
// Each transaction checks out its own connection: BEGIN … COMMIT, ROLLBACK when `work` throws,
// at READ COMMITTED. The guarantees rest on row locks and on waiting at a primary key:
// lockPartition inserts the progress row if missing and reads it FOR UPDATE, so two consumers
// of one partition serialise; recordInbox and claimRequest insert ON CONFLICT DO NOTHING, which
// waits for an uncommitted row with the same key and then sees that transaction's outcome.
// A COMMIT whose answer is lost with the connection may have committed: a caller that retries
// meets its own inbox, offset and request rows, and a repeated outbox event is one more
// at-least-once delivery.
//
// The relay lock is a session advisory lock held on a connection dedicated to the relay for
// the duration of `work`. Its key is a constant derived from 'tideway_outbox_relay' plus the
// oid of the tideway_outbox table the search_path resolves to: relays of one outbox exclude
// each other, outboxes in other schemas of the database do not. If that connection dies
// during `work` the lock goes with it; a second relay may then publish alongside, which the
// at-least-once relay and the consumers' inbox already tolerate.
//
// BIGINT columns come back as exact bigints through a type parser given per query, so neither
// pg's process-wide parsers nor a caller's pool are changed. The user's `query` gets the
// pool's own parsers (int8 as a string by default).

import { createHash } from 'node:crypto'
import pg from 'pg'
import { TidewayError } from '../errors.ts'
import type { CleanupAges, CleanupCounts, OutboxReader, OutboxRow, Store, ParkedKey, StoredOffset, StoreTransaction } from '../sdk/store.ts'
import {
  cleanup,
  markPublished,
  numberPlaceholders,
  pendingOutbox,
  readOffsets,
  readParkedKeys,
  schemaStatements,
  SqlTransaction,
  type Row,
  type StoreStatements,
} from './common.ts'

export interface PostgresStoreOptions {
  /** Where to connect (`postgres://user@host:port/database`); without it and without `pool`, pg reads the PG* variables. */
  connectionString?: string
  /**
   * A pool the caller owns, used instead of creating one: close() leaves it open. The options
   * below configure a pool the store creates, and are refused alongside this one.
   */
  pool?: pg.Pool
  /** application_name of the store's connections, shown in pg_stat_activity. Default 'tideway'. */
  applicationName?: string
  /** search_path of the store's connections, e.g. a schema per service: comma-separated names. */
  searchPath?: string
  /** Size of the store's pool; withRelayLock holds one connection while it runs. Default 10. */
  maxConnections?: number
  /** Longest wait to open a connection or, with the pool exhausted, to get one. Default 10000 ms. */
  connectTimeoutMs?: number
}

const INT8_OID = 20

/** Per-query type parsers: int8 as an exact bigint, everything else as pg parses it. */
const exactTypes = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary'
      ? (text: string) => BigInt(text)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
}

/** int4 from the first bytes of SHA-256('tideway_outbox_relay'): the relay lock's key space. */
const RELAY_LOCK_CLASS = createHash('sha256').update('tideway_outbox_relay').digest().readInt32BE(0)
/** int4 from the same for 'tideway_migrate': concurrent migrate() calls take turns. */
const MIGRATE_LOCK_CLASS = createHash('sha256').update('tideway_migrate').digest().readInt32BE(0)
/** The outbox table's oid (unsigned 32-bit) folded into int4, the second key of the relay lock. */
const OUTBOX_OID_KEY = `('tideway_outbox'::regclass::oid::int8 - 2147483648)::int4`

export function postgresStore(options: PostgresStoreOptions = {}): Store {
  if (options.pool) {
    const ignored = (['connectionString', 'applicationName', 'searchPath', 'maxConnections', 'connectTimeoutMs'] as const).filter(
      (name) => options[name] !== undefined,
    )
    // Refused rather than ignored: a caller's pool is configured by the caller.
    if (ignored.length > 0) {
      throw new TidewayError('TIDEWAY_ERR_CONFIG', `options for creating a pool cannot go with a caller's pool: ${ignored.join(', ')}`)
    }
    return new PostgresStore(options.pool, false)
  }

  const maxConnections = options.maxConnections ?? 10
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 2) {
    // One for the relay lock, at least one for the relay's reads and writes while it holds it.
    throw new TidewayError('TIDEWAY_ERR_CONFIG', `maxConnections must be an integer of at least 2, got ${maxConnections}`)
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000
  if (!Number.isSafeInteger(connectTimeoutMs) || connectTimeoutMs < 1) {
    throw new TidewayError('TIDEWAY_ERR_CONFIG', `connectTimeoutMs must be a positive integer, got ${connectTimeoutMs}`)
  }
  const searchPath = options.searchPath
  // The value travels inside the startup `options` string, where spaces and quotes would need
  // libpq escaping: plain identifiers only.
  if (searchPath !== undefined && !/^[A-Za-z_][A-Za-z0-9_$]*(,[A-Za-z_][A-Za-z0-9_$]*)*$/.test(searchPath)) {
    throw new TidewayError('TIDEWAY_ERR_CONFIG', `searchPath must be comma-separated plain identifiers, got ${JSON.stringify(searchPath)}`)
  }
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    application_name: options.applicationName ?? 'tideway',
    max: maxConnections,
    connectionTimeoutMillis: connectTimeoutMs,
    ...(searchPath === undefined ? {} : { options: `-c search_path=${searchPath}` }),
  })
  // An idle connection that breaks is dropped by the pool and reported here; the next checkout
  // opens a new one. Without a listener the event would crash the process.
  pool.on('error', () => {})
  return new PostgresStore(pool, true)
}

class PostgresStore implements Store {
  readonly dialect = 'postgres' as const
  readonly outbox: OutboxReader
  readonly #pool: pg.Pool
  readonly #ownsPool: boolean
  #closed = false

  constructor(pool: pg.Pool, ownsPool: boolean) {
    this.#pool = pool
    this.#ownsPool = ownsPool
    this.outbox = new PostgresOutbox(this, pool)
  }

  checkOpen(): void {
    if (this.#closed) throw new TidewayError('TIDEWAY_ERR_CLOSED', 'the PostgreSQL store is closed')
  }

  /** One transaction on its own connection; the connection is discarded when its state is unknown. */
  async inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>, onSettled?: () => void): Promise<T> {
    this.checkOpen()
    return withClient(this.#pool, async (client, checkout) => {
      try {
        await client.query('BEGIN')
        const result = await work(client)
        onSettled?.()
        try {
          await client.query('COMMIT')
        } catch (err) {
          checkout.discard(err)
          throw err
        }
        return result
      } catch (err) {
        onSettled?.()
        if (!checkout.discarded) {
          try {
            await client.query('ROLLBACK')
          } catch (rollbackError) {
            // Closing the connection rolls the transaction back on the server.
            checkout.discard(rollbackError)
          }
        }
        throw err
      }
    })
  }

  async migrate(): Promise<void> {
    await this.inTransaction(async (client) => {
      // CREATE … IF NOT EXISTS is not safe against itself: two concurrent creators of one table
      // can both pass the check and one fails on the catalog's unique index.
      await client.query('SELECT pg_advisory_xact_lock($1, 0)', [MIGRATE_LOCK_CLASS])
      for (const sql of schemaStatements({ bytes: 'BYTEA', outboxId: 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY' })) {
        await client.query(sql)
      }
    })
  }

  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    let tx: SqlTransaction | undefined
    return this.inTransaction((client) => {
      tx = new SqlTransaction(sdkStatements(client), {
        rowLock: ' FOR UPDATE',
        query: async (sql, params) => (await client.query(sql, params as unknown[])).rows as Row[],
      })
      return work(tx)
    }, () => tx?.end())
  }

  async readOffsets(groupId: string): Promise<StoredOffset[]> {
    this.checkOpen()
    return readOffsets(sdkStatements(this.#pool), groupId)
  }

  async readParkedKeys(groupId: string): Promise<ParkedKey[]> {
    this.checkOpen()
    return readParkedKeys(sdkStatements(this.#pool), groupId)
  }

  cleanup(olderThan: CleanupAges, nowMs: number): Promise<CleanupCounts> {
    return this.inTransaction((client) => cleanup(sdkStatements(client), olderThan, nowMs))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#ownsPool) await this.#pool.end()
  }
}

class PostgresOutbox implements OutboxReader {
  readonly #store: PostgresStore
  readonly #pool: pg.Pool

  constructor(store: PostgresStore, pool: pg.Pool) {
    this.#store = store
    this.#pool = pool
  }

  async pending(limit: number): Promise<OutboxRow[]> {
    this.#store.checkOpen()
    return pendingOutbox(sdkStatements(this.#pool), limit)
  }

  async markPublished(ids: readonly bigint[], nowMs: number): Promise<void> {
    if (ids.length === 0) return
    await this.#store.inTransaction((client) => markPublished(sdkStatements(client), ids, nowMs))
  }

  async withRelayLock<T>(work: () => Promise<T>): Promise<T | null> {
    this.#store.checkOpen()
    return withClient(this.#pool, async (client, checkout) => {
      const attempt = await client.query<{ acquired: boolean }>(
        `SELECT pg_try_advisory_lock($1, ${OUTBOX_OID_KEY}) AS acquired`,
        [RELAY_LOCK_CLASS],
      )
      if (attempt.rows[0]?.acquired !== true) return null
      try {
        return await work()
      } finally {
        try {
          await client.query(`SELECT pg_advisory_unlock($1, ${OUTBOX_OID_KEY})`, [RELAY_LOCK_CLASS])
        } catch (err) {
          // A session lock outlives a failed unlock only as long as its connection: end that.
          checkout.discard(err)
        }
      }
    })
  }
}

interface Checkout {
  /** Makes the release destroy the connection instead of returning it to the pool. */
  discard(reason: unknown): void
  readonly discarded: boolean
}

/**
 * Checks out a connection for `use` and always releases it. A connection whose session state
 * is unknown (a failed COMMIT or ROLLBACK, an unlock that failed, an error it reported
 * meanwhile) is destroyed on release: it may still hold a transaction or a lock.
 */
async function withClient<T>(pool: pg.Pool, use: (client: pg.PoolClient, checkout: Checkout) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let reason: Error | undefined
  const checkout: Checkout = {
    discard(cause) {
      reason ??= cause instanceof Error ? cause : new Error(String(cause))
    },
    get discarded() {
      return reason !== undefined
    },
  }
  // A checked-out client has no pool listener: an unhandled 'error' would crash the process.
  const onError = (err: Error) => checkout.discard(err)
  client.on('error', onError)
  try {
    return await use(client, checkout)
  } finally {
    client.off('error', onError)
    client.release(reason)
  }
}

/** The SDK's statements on a pool or one client: `?` numbered, int8 read as bigint. */
function sdkStatements(queryable: pg.Pool | pg.PoolClient): StoreStatements {
  const run = (sql: string, params: readonly unknown[]) =>
    queryable.query({ text: numberPlaceholders(sql), values: params as unknown[], types: exactTypes })
  return {
    rows: async (sql, params) => (await run(sql, params)).rows as Row[],
    changes: async (sql, params) => (await run(sql, params)).rowCount ?? 0,
  }
}
