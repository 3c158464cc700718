// The Store contract (src/sdk/store.ts) on SQLite, through node:sqlite's synchronous DatabaseSync.
//
// Guarantees: a resolved transaction is durable. The file runs in WAL mode with
// synchronous=FULL, so COMMIT returns only after the WAL is fsynced; `synchronous: 'normal'`
// trades the last commits before a power loss (never consistency) for fewer fsyncs.
// Transactions start with BEGIN IMMEDIATE, taking SQLite's write lock up front, so a
// transaction never fails halfway with SQLITE_BUSY when it first writes.
//
// One connection serves the store, and a transaction's work is async: every operation of the
// store, reads included, waits its turn in one queue. Anything run on the connection while a
// transaction is open would otherwise join that transaction, or read its uncommitted rows.
// Hence `work` must never wait on another operation of the same store: it would wait behind
// itself. lockPartition needs no row lock here: the queue and the write lock already make each
// transaction exclusive.
//
// Assumes one process owns the file. The relay lock is held in memory (per file, across the
// stores of this process); a second process on the same file is excluded from nothing but
// SQLite's write lock. Integers of the SDK's tables are read as bigint, so offsets and ids
// are exact over the full int64 range. The user's `query` gets node:sqlite's defaults
// (integers as numbers, which node:sqlite refuses to round beyond 2^53) with blobs as Buffers.

import { resolve } from 'node:path'
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite'
import { TidewayError } from '../errors.ts'
import type { CleanupAges, CleanupCounts, OutboxRow, Store, ParkedKey, StoredOffset, StoreTransaction } from '../sdk/store.ts'
import {
  cleanup,
  markPublished,
  pendingOutbox,
  readOffsets,
  readParkedKeys,
  schemaStatements,
  SqlTransaction,
  toBuffer,
  type Row,
  type StoreStatements,
} from './common.ts'

export interface SqliteStoreOptions {
  /** How long a statement waits for another connection's lock on the file before failing. Default 5000 ms. */
  busyTimeoutMs?: number
  /**
   * 'full' (default) fsyncs the WAL at every commit. 'normal' fsyncs only at checkpoints: a power
   * loss may undo the last commits, an application crash loses nothing.
   */
  synchronous?: 'full' | 'normal'
}

/** Relay locks held in this process, by resolved file path (an in-memory database by its store). */
const relayHolders = new Set<unknown>()

export function sqliteStore(path: string, options: SqliteStoreOptions = {}): Store {
  const busyTimeoutMs = options.busyTimeoutMs ?? 5_000
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new TidewayError('TIDEWAY_ERR_CONFIG', `busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}`)
  }
  const synchronous = options.synchronous ?? 'full'
  if (synchronous !== 'full' && synchronous !== 'normal') {
    throw new TidewayError('TIDEWAY_ERR_CONFIG', `synchronous must be 'full' or 'normal', got ${String(synchronous)}`)
  }
  const inMemory = path === ':memory:' || path === ''
  const db = new DatabaseSync(path, { timeout: busyTimeoutMs })
  try {
    // SQLite answers with the mode it kept rather than failing: a file system without shared
    // memory keeps the rollback journal, whose durability this header does not describe.
    const journal = db.prepare('PRAGMA journal_mode = WAL').get()?.journal_mode
    if (!inMemory && journal !== 'wal') {
      throw new TidewayError('TIDEWAY_ERR_CONFIG', `SQLite kept journal_mode ${String(journal)} for ${path}; the store needs WAL`)
    }
    db.exec(`PRAGMA synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
  } catch (err) {
    db.close()
    throw err
  }
  return new SqliteStore(db, inMemory ? {} : resolve(path))
}

class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const
  readonly outbox: SqliteOutbox
  readonly #db: DatabaseSync
  readonly #statements: StoreStatements
  #tail: Promise<unknown> = Promise.resolve()
  #closed = false

  constructor(db: DatabaseSync, relayLockKey: unknown) {
    this.#db = db
    this.#statements = sdkStatements(db)
    this.outbox = new SqliteOutbox(this, relayLockKey)
  }

  /** Runs `task` after every operation queued before it; a failure does not stop the queue. */
  serial<T>(task: () => T | Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new TidewayError('TIDEWAY_ERR_CLOSED', 'the SQLite store is closed'))
    const result = this.#tail.then(task)
    this.#tail = result.catch(() => {})
    return result
  }

  /** One transaction on the shared connection; only ever called from inside `serial`. */
  async inTransaction<T>(work: (statements: StoreStatements) => Promise<T>, onSettled?: () => void): Promise<T> {
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      const result = await work(this.#statements)
      onSettled?.()
      this.#db.exec('COMMIT')
      return result
    } catch (err) {
      onSettled?.()
      // A failed COMMIT can leave the transaction open; a failed BEGIN leaves none.
      if (this.#db.isTransaction) {
        try {
          this.#db.exec('ROLLBACK')
        } catch (rollbackError) {
          throw new AggregateError([err, rollbackError], 'the transaction failed and so did its rollback')
        }
      }
      throw err
    }
  }

  get statements(): StoreStatements {
    return this.#statements
  }

  migrate(): Promise<void> {
    return this.serial(() =>
      this.inTransaction(async () => {
        // AUTOINCREMENT: without it SQLite hands a deleted highest id to the next row, and
        // cleanup deletes published rows.
        for (const sql of schemaStatements({ bytes: 'BLOB', outboxId: 'INTEGER PRIMARY KEY AUTOINCREMENT' })) {
          this.#db.exec(sql)
        }
      }),
    )
  }

  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    return this.serial(() => {
      const tx = new SqlTransaction(this.#statements, { rowLock: '', query: (sql, params) => userQuery(this.#db, sql, params) })
      return this.inTransaction(() => work(tx), () => tx.end())
    })
  }

  readOffsets(groupId: string): Promise<StoredOffset[]> {
    return this.serial(() => readOffsets(this.#statements, groupId))
  }

  readParkedKeys(groupId: string): Promise<ParkedKey[]> {
    return this.serial(() => readParkedKeys(this.#statements, groupId))
  }

  cleanup(olderThan: CleanupAges, nowMs: number): Promise<CleanupCounts> {
    return this.serial(() => this.inTransaction((statements) => cleanup(statements, olderThan, nowMs)))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    const drained = this.serial(() => this.#db.close())
    this.#closed = true
    await drained
  }
}

class SqliteOutbox {
  readonly #store: SqliteStore
  readonly #relayLockKey: unknown

  constructor(store: SqliteStore, relayLockKey: unknown) {
    this.#store = store
    this.#relayLockKey = relayLockKey
  }

  pending(limit: number): Promise<OutboxRow[]> {
    return this.#store.serial(() => pendingOutbox(this.#store.statements, limit))
  }

  markPublished(ids: readonly bigint[], nowMs: number): Promise<void> {
    if (ids.length === 0) return Promise.resolve()
    return this.#store.serial(() => this.#store.inTransaction((statements) => markPublished(statements, ids, nowMs)))
  }

  async withRelayLock<T>(work: () => Promise<T>): Promise<T | null> {
    // Not queued: `work` itself calls pending() and markPublished(), which are.
    if (relayHolders.has(this.#relayLockKey)) return null
    relayHolders.add(this.#relayLockKey)
    try {
      return await work()
    } finally {
      relayHolders.delete(this.#relayLockKey)
    }
  }
}

/** The SDK's statements, prepared once and read with bigint integers. */
function sdkStatements(db: DatabaseSync): StoreStatements {
  const prepared = new Map<string, StatementSync>()
  const statement = (sql: string): StatementSync => {
    let found = prepared.get(sql)
    if (!found) {
      found = db.prepare(sql)
      found.setReadBigInts(true)
      // markPublished's id lists vary in length: one statement per length would pile up here.
      if (!sql.includes('id IN (')) prepared.set(sql, found)
    }
    return found
  }
  return {
    rows: async (sql, params) => statement(sql).all(...(params as SQLInputValue[])) as Row[],
    changes: async (sql, params) => Number(statement(sql).run(...(params as SQLInputValue[])).changes),
  }
}

/** The user's SQL: rows for statements that return columns, [] for the others. */
async function userQuery(db: DatabaseSync, sql: string, params: readonly unknown[]): Promise<Row[]> {
  const statement = db.prepare(sql)
  const values = params as SQLInputValue[]
  if (statement.columns().length === 0) {
    statement.run(...values)
    return []
  }
  const rows = statement.all(...values) as Row[]
  for (const row of rows) {
    for (const column of Object.keys(row)) {
      if (row[column] instanceof Uint8Array) row[column] = toBuffer(row[column])
    }
  }
  return rows
}
