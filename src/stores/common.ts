// What the SQLite and PostgreSQL stores share: the tables of src/sdk/store.ts (one declaration,
// with each dialect's column types filled in), the statements whose SQL is the same in both
// dialects, and the mapping between rows and the contract's values.
//
// Statements here are written with `?` placeholders; the PostgreSQL adapter numbers them
// (`numberPlaceholders`). Each adapter supplies a `StoreStatements` that reads 64-bit integers
// as exact bigints and BLOB/BYTEA as bytes, so the row mapping below never goes through a
// double. Nothing here knows about connections, transactions or locks: those differ per dialect.

import { TidewayError } from '../errors.ts'
import type { CleanupAges, CleanupCounts, OutboxMessage, OutboxRow, ParkedKey, StoredOffset, StoreTransaction } from '../sdk/store.ts'

export type Row = Record<string, unknown>

/** The store's own statements, on one connection (inside or outside a transaction). */
export interface StoreStatements {
  /** Runs a statement that returns rows (a SELECT, or a write with RETURNING). */
  rows(sql: string, params: readonly unknown[]): Promise<Row[]>
  /** Runs a write and returns how many rows it changed. */
  changes(sql: string, params: readonly unknown[]): Promise<number>
}

export interface ColumnTypes {
  /** Type of payload columns: BLOB (SQLite) or BYTEA (PostgreSQL). */
  readonly bytes: string
  /** Column definition of the outbox id: ascending, never reused after rows are deleted. */
  readonly outboxId: string
}

/**
 * The SDK's tables, in creation order. `partition` is an ordinary identifier in both dialects;
 * the inbox's offset column is `message_offset` because OFFSET is reserved in PostgreSQL.
 * Times are epoch milliseconds in 64-bit integer columns.
 */
export function schemaStatements(types: ColumnTypes): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS tideway_consumer_offsets (
      group_id TEXT NOT NULL,
      topic TEXT NOT NULL,
      partition INTEGER NOT NULL,
      next_offset BIGINT,
      PRIMARY KEY (group_id, topic, partition)
    )`,
    `CREATE TABLE IF NOT EXISTS tideway_inbox (
      group_id TEXT NOT NULL,
      message_key TEXT NOT NULL,
      topic TEXT NOT NULL,
      partition INTEGER NOT NULL,
      message_offset BIGINT NOT NULL,
      processed_at BIGINT NOT NULL,
      PRIMARY KEY (group_id, message_key)
    )`,
    `CREATE INDEX IF NOT EXISTS tideway_inbox_processed_at ON tideway_inbox (processed_at)`,
    `CREATE TABLE IF NOT EXISTS tideway_outbox (
      id ${types.outboxId},
      topic TEXT NOT NULL,
      partition INTEGER,
      key ${types.bytes},
      value ${types.bytes},
      headers TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      published_at BIGINT
    )`,
    // The relay's scan touches only unpublished rows however many published ones await cleanup.
    `CREATE INDEX IF NOT EXISTS tideway_outbox_pending ON tideway_outbox (id) WHERE published_at IS NULL`,
    `CREATE INDEX IF NOT EXISTS tideway_outbox_published_at ON tideway_outbox (published_at) WHERE published_at IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS tideway_requests (
      scope TEXT NOT NULL,
      request_key TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'done')),
      response ${types.bytes},
      created_at BIGINT NOT NULL,
      PRIMARY KEY (scope, request_key)
    )`,
    `CREATE INDEX IF NOT EXISTS tideway_requests_done_created_at ON tideway_requests (created_at) WHERE status = 'done'`,
    `CREATE TABLE IF NOT EXISTS tideway_parked_keys (
      group_id TEXT NOT NULL,
      topic TEXT NOT NULL,
      partition INTEGER NOT NULL,
      record_key ${types.bytes} NOT NULL,
      parked_offset BIGINT NOT NULL,
      parked_at BIGINT NOT NULL,
      blocked_redrive TEXT,
      PRIMARY KEY (group_id, topic, partition, record_key)
    )`,
  ]
}

/** Rewrites `?` placeholders as `$1, $2, …`; only for the store's own SQL, which has no `?` in literals. */
export function numberPlaceholders(sql: string): string {
  let index = 0
  return sql.replace(/\?/g, () => `$${++index}`)
}

export interface TransactionDialect {
  /** Appended to the read of a progress row: ' FOR UPDATE' where rows lock, '' where the whole transaction is exclusive. */
  readonly rowLock: string
  /** Runs the user's SQL on the transaction's connection. */
  query(sql: string, params: readonly unknown[]): Promise<Row[]>
}

/**
 * The StoreTransaction handed to `work`. It refuses every call once `end()` ran, so a promise
 * the user left running cannot write outside its transaction (or, on SQLite's one shared
 * connection, inside the next one).
 */
export class SqlTransaction implements StoreTransaction {
  readonly #statements: StoreStatements
  readonly #dialect: TransactionDialect
  #ended = false

  constructor(statements: StoreStatements, dialect: TransactionDialect) {
    this.#statements = statements
    this.#dialect = dialect
  }

  end(): void {
    this.#ended = true
  }

  #open(): StoreStatements {
    if (this.#ended) throw new TidewayError('TIDEWAY_ERR_CLOSED', 'the store transaction has already ended')
    return this.#statements
  }

  async query<R = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    this.#open()
    return (await this.#dialect.query(sql, params)) as R[]
  }

  async lockPartition(groupId: string, topic: string, partition: number): Promise<bigint | null> {
    const statements = this.#open()
    // The row must exist before it can be locked: a missing row would let two first-time
    // consumers of a partition both read "nothing stored" and both proceed.
    await statements.changes(
      `INSERT INTO tideway_consumer_offsets (group_id, topic, partition, next_offset) VALUES (?, ?, ?, NULL)
       ON CONFLICT (group_id, topic, partition) DO NOTHING`,
      [groupId, topic, partition],
    )
    const rows = await statements.rows(
      `SELECT next_offset FROM tideway_consumer_offsets WHERE group_id = ? AND topic = ? AND partition = ?${this.#dialect.rowLock}`,
      [groupId, topic, partition],
    )
    const stored = rows[0]?.next_offset
    return stored === null || stored === undefined ? null : exactBigInt(stored, 'next_offset')
  }

  async setPartitionOffset(groupId: string, topic: string, partition: number, nextOffset: bigint): Promise<void> {
    await this.#open().changes(
      `INSERT INTO tideway_consumer_offsets (group_id, topic, partition, next_offset) VALUES (?, ?, ?, ?)
       ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset`,
      [groupId, topic, partition, nextOffset],
    )
  }

  async recordInbox(
    groupId: string,
    messageKey: string,
    at: { topic: string; partition: number; offset: bigint },
    nowMs: number,
  ): Promise<boolean> {
    const inserted = await this.#open().rows(
      `INSERT INTO tideway_inbox (group_id, message_key, topic, partition, message_offset, processed_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (group_id, message_key) DO NOTHING
       RETURNING message_key`,
      [groupId, messageKey, at.topic, at.partition, at.offset, nowMs],
    )
    return inserted.length > 0
  }

  async enqueueOutbox(message: OutboxMessage, nowMs: number): Promise<bigint> {
    const rows = await this.#open().rows(
      `INSERT INTO tideway_outbox (topic, partition, key, value, headers, created_at) VALUES (?, ?, ?, ?, ?, ?)
       RETURNING id`,
      [message.topic, message.partition, message.key, message.value, encodeHeaders(message.headers), nowMs],
    )
    return exactBigInt(rows[0]?.id, 'id')
  }

  async claimRequest(
    scope: string,
    requestKey: string,
    nowMs: number,
  ): Promise<{ state: 'new' } | { state: 'done'; response: Buffer }> {
    const statements = this.#open()
    // On a conflict with an uncommitted claim, PostgreSQL waits here until that transaction
    // ends: a commit leaves its row for the read below, a rollback lets this insert through.
    const inserted = await statements.rows(
      `INSERT INTO tideway_requests (scope, request_key, status, response, created_at) VALUES (?, ?, 'pending', NULL, ?)
       ON CONFLICT (scope, request_key) DO NOTHING
       RETURNING request_key`,
      [scope, requestKey, nowMs],
    )
    if (inserted.length > 0) return { state: 'new' }
    const rows = await statements.rows(`SELECT status, response FROM tideway_requests WHERE scope = ? AND request_key = ?`, [
      scope,
      requestKey,
    ])
    const stored = rows[0]
    if (stored?.status === 'done') return { state: 'done', response: toBuffer(stored.response) ?? Buffer.alloc(0) }
    // A pending row we can see is either this transaction's own claim or one a transaction
    // committed without completing it: there is no response to answer with, and running the
    // request again could repeat effects that claim already committed.
    throw new Error(`request ${JSON.stringify(requestKey)} in scope ${JSON.stringify(scope)} is claimed but has no stored response`)
  }

  async parkKey(groupId: string, topic: string, partition: number, recordKey: Buffer, offset: bigint, nowMs: number, blockedRedrive: string | null): Promise<void> {
    // Parked already: the first parking's offset and time stay; a newer blocked redrive wins.
    await this.#open().changes(
      `INSERT INTO tideway_parked_keys (group_id, topic, partition, record_key, parked_offset, parked_at, blocked_redrive) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (group_id, topic, partition, record_key) DO UPDATE SET blocked_redrive = COALESCE(excluded.blocked_redrive, tideway_parked_keys.blocked_redrive)`,
      [groupId, topic, partition, recordKey, offset, nowMs, blockedRedrive],
    )
  }

  async parkedKey(groupId: string, topic: string, partition: number, recordKey: Buffer): Promise<{ blockedRedrive: string | null } | null> {
    const rows = await this.#open().rows(
      `SELECT blocked_redrive FROM tideway_parked_keys WHERE group_id = ? AND topic = ? AND partition = ? AND record_key = ?`,
      [groupId, topic, partition, recordKey],
    )
    const row = rows[0]
    if (!row) return null
    return { blockedRedrive: row.blocked_redrive === null || row.blocked_redrive === undefined ? null : String(row.blocked_redrive) }
  }

  async unparkKey(groupId: string, topic: string, partition: number, recordKey: Buffer): Promise<boolean> {
    const changed = await this.#open().changes(
      `DELETE FROM tideway_parked_keys WHERE group_id = ? AND topic = ? AND partition = ? AND record_key = ?`,
      [groupId, topic, partition, recordKey],
    )
    return changed > 0
  }

  async completeRequest(scope: string, requestKey: string, response: Buffer): Promise<void> {
    const changed = await this.#open().changes(
      `UPDATE tideway_requests SET status = 'done', response = ? WHERE scope = ? AND request_key = ? AND status = 'pending'`,
      [response, scope, requestKey],
    )
    if (changed === 0) {
      throw new Error(`request ${JSON.stringify(requestKey)} in scope ${JSON.stringify(scope)} has no pending claim to complete`)
    }
  }
}

export async function readParkedKeys(statements: StoreStatements, groupId: string): Promise<ParkedKey[]> {
  const rows = await statements.rows(
    `SELECT topic, partition, record_key, parked_offset, parked_at, blocked_redrive FROM tideway_parked_keys WHERE group_id = ? ORDER BY parked_at, topic, partition`,
    [groupId],
  )
  return rows.map((row) => ({
    topic: String(row.topic),
    partition: Number(row.partition),
    recordKey: toBuffer(row.record_key) ?? Buffer.alloc(0),
    parkedOffset: exactBigInt(row.parked_offset, 'parked_offset'),
    parkedAtMs: Number(row.parked_at),
    blockedRedrive: row.blocked_redrive === null || row.blocked_redrive === undefined ? null : String(row.blocked_redrive),
  }))
}

export async function readOffsets(statements: StoreStatements, groupId: string): Promise<StoredOffset[]> {
  // A row locked but never given an offset is no progress: it is left out.
  const rows = await statements.rows(
    `SELECT topic, partition, next_offset FROM tideway_consumer_offsets
     WHERE group_id = ? AND next_offset IS NOT NULL
     ORDER BY topic, partition`,
    [groupId],
  )
  return rows.map((row) => ({
    topic: String(row.topic),
    partition: Number(row.partition),
    nextOffset: exactBigInt(row.next_offset, 'next_offset'),
  }))
}

export async function pendingOutbox(statements: StoreStatements, limit: number): Promise<OutboxRow[]> {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`outbox limit must be a positive integer, got ${limit}`)
  const rows = await statements.rows(
    `SELECT id, topic, partition, key, value, headers, created_at FROM tideway_outbox
     WHERE published_at IS NULL
     ORDER BY id
     LIMIT ?`,
    [limit],
  )
  return rows.map((row) => ({
    id: exactBigInt(row.id, 'id'),
    topic: String(row.topic),
    partition: row.partition === null ? null : Number(row.partition),
    key: toBuffer(row.key),
    value: toBuffer(row.value),
    headers: decodeHeaders(String(row.headers)),
    createdAtMs: Number(row.created_at),
  }))
}

/** Ids per UPDATE: well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters. */
const MARK_BATCH = 500

export async function markPublished(statements: StoreStatements, ids: readonly bigint[], nowMs: number): Promise<void> {
  for (let start = 0; start < ids.length; start += MARK_BATCH) {
    const batch = ids.slice(start, start + MARK_BATCH)
    // `published_at IS NULL` keeps the first publication time when a relay marks a row twice.
    await statements.changes(
      `UPDATE tideway_outbox SET published_at = ? WHERE published_at IS NULL AND id IN (${batch.map(() => '?').join(', ')})`,
      [nowMs, ...batch],
    )
  }
}

/** Runs inside one transaction of the caller's choosing, so the three deletes commit together. */
export async function cleanup(statements: StoreStatements, olderThan: CleanupAges, nowMs: number): Promise<CleanupCounts> {
  const before = (ageMs: number | undefined): number | undefined => (ageMs === undefined ? undefined : nowMs - ageMs)
  const inboxBefore = before(olderThan.inboxMs)
  const outboxBefore = before(olderThan.publishedOutboxMs)
  const requestsBefore = before(olderThan.requestsMs)
  return {
    inbox: inboxBefore === undefined ? 0 : await statements.changes(`DELETE FROM tideway_inbox WHERE processed_at < ?`, [inboxBefore]),
    outbox:
      outboxBefore === undefined
        ? 0
        : await statements.changes(`DELETE FROM tideway_outbox WHERE published_at IS NOT NULL AND published_at < ?`, [outboxBefore]),
    // Pending claims stay: they belong to a request whose transaction has not finished.
    requests:
      requestsBefore === undefined
        ? 0
        : await statements.changes(`DELETE FROM tideway_requests WHERE status = 'done' AND created_at < ?`, [requestsBefore]),
  }
}

/** Headers are stored as JSON `[[name, base64Value], …]`: order and duplicate names survive. */
export function encodeHeaders(headers: readonly (readonly [string, Buffer])[]): string {
  return JSON.stringify(headers.map(([name, value]) => [name, Buffer.from(value).toString('base64')]))
}

export function decodeHeaders(stored: string): [string, Buffer][] {
  const parsed: unknown = JSON.parse(stored)
  if (!Array.isArray(parsed)) throw new Error('stored outbox headers are not a JSON array')
  return parsed.map((pair: unknown) => {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new Error('a stored outbox header is not a [name, base64] pair')
    }
    return [pair[0], Buffer.from(pair[1], 'base64')]
  })
}

/** Bytes from a driver (node:sqlite gives Uint8Array, pg gives Buffer) as a Buffer, without copying. */
export function toBuffer(value: unknown): Buffer | null {
  if (value === null || value === undefined) return null
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  throw new TypeError(`expected bytes from the database, got ${typeof value}`)
}

/** Offsets and ids must arrive as bigint: a number here would mean a driver rounded through a double. */
export function exactBigInt(value: unknown, column: string): bigint {
  if (typeof value === 'bigint') return value
  throw new TypeError(`expected ${column} as a bigint from the database, got ${typeof value}`)
}
