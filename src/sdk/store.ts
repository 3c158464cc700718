// The contract between the SDK and the user's database: what the exactly-once consumer, the
// transactional outbox and request idempotency keep there, and the one transaction they share
// with the user's own writes (research frameworks.md finding 5: exactly-once processing is always
// "dedup record + side effect in one database transaction"). The SDK only depends on this
// interface; src/stores/ holds the adapters (SQLite through node:sqlite, PostgreSQL through pg).
//
// Tables (the adapter creates them in migrate(); names are fixed, prefixed `tideway_`):
//   tideway_consumer_offsets   (group_id, topic, partition) -> next_offset: where a group's
//                              exactly-once consumer resumes, written in the handler's transaction
//   tideway_inbox              (group_id, message_key) -> topic, partition, offset, processed_at:
//                              idempotency keys a group has applied
//   tideway_outbox             id -> topic, key, value, headers, created_at, published_at: events
//                              written in a business transaction, published by the relay
//   tideway_requests           (scope, request_key) -> status, response, created_at: request/response
//                              idempotency (the seed's billing service: sequence_key + is_retry)
//   tideway_parked_keys        (group_id, topic, partition, record_key) -> parked_offset, parked_at:
//                              record keys a group's consumer parked after a dead letter, so their
//                              later records wait behind it (dead-letter policy park-key)
//
// Offsets are bigint; times are epoch milliseconds; payloads are bytes (Buffer).

export type StoreDialect = 'sqlite' | 'postgres'

export interface Store {
  readonly dialect: StoreDialect
  /** Creates the SDK's tables and indexes if they are missing. Safe to call on every start. */
  migrate(): Promise<void>
  /**
   * Runs `work` inside one transaction: commits when it resolves, rolls back when it throws (and
   * rethrows). Transactions of one store never interleave on one connection: SQLite runs them
   * one at a time; PostgreSQL gives each its own pooled connection.
   */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T>
  /** Exactly-once consumer progress of a group, to restore offsets on start. */
  readOffsets(groupId: string): Promise<StoredOffset[]>
  /** The record keys a group has parked, oldest first. */
  readParkedKeys(groupId: string): Promise<ParkedKey[]>
  readonly outbox: OutboxReader
  /** Deletes rows older than the given ages (inbox rows, published outbox rows, completed requests). */
  cleanup(olderThan: CleanupAges, nowMs: number): Promise<CleanupCounts>
  close(): Promise<void>
}

export interface StoreTransaction {
  /**
   * The user's own SQL, in this transaction and the store's dialect: `$1, $2` placeholders on
   * PostgreSQL, `?` on SQLite. Returns the rows (empty for statements without a result).
   */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>
  /**
   * Locks the group's progress row for this partition until the transaction ends (inserting it
   * if missing) and returns its next offset, or null when the group never stored one. Two
   * consumers of one partition (a zombie after a rebalance) serialise here.
   */
  lockPartition(groupId: string, topic: string, partition: number): Promise<bigint | null>
  setPartitionOffset(groupId: string, topic: string, partition: number, nextOffset: bigint): Promise<void>
  /** Records that the group applied `messageKey`; false (and nothing written) when it already had. */
  recordInbox(groupId: string, messageKey: string, at: { topic: string; partition: number; offset: bigint }, nowMs: number): Promise<boolean>
  /** Adds an event to the outbox, to be published by the relay; returns its id. */
  enqueueOutbox(message: OutboxMessage, nowMs: number): Promise<bigint>
  /**
   * Claims a request key in `scope`: `new` (a row is inserted, status pending, visible to others
   * once this transaction commits), or `done` with the response stored by completeRequest.
   * Concurrent claims of one key wait for each other (a primary key).
   */
  claimRequest(scope: string, requestKey: string, nowMs: number): Promise<{ state: 'new' } | { state: 'done'; response: Buffer }>
  completeRequest(scope: string, requestKey: string, response: Buffer): Promise<void>
  /**
   * Parks a record key of a partition for the group, or, when it is parked already, records
   * which redrive was stopped by a new failure (`blockedRedrive`; see dead-letter.ts).
   */
  parkKey(groupId: string, topic: string, partition: number, recordKey: Buffer, offset: bigint, nowMs: number, blockedRedrive: string | null): Promise<void>
  /** The key's parking, or null when it is not parked. */
  parkedKey(groupId: string, topic: string, partition: number, recordKey: Buffer): Promise<{ readonly blockedRedrive: string | null } | null>
  /** Ends a key's parking; false when it was not parked. */
  unparkKey(groupId: string, topic: string, partition: number, recordKey: Buffer): Promise<boolean>
}

export interface ParkedKey {
  readonly topic: string
  readonly partition: number
  readonly recordKey: Buffer
  /** The offset of the record whose dead letter parked the key. */
  readonly parkedOffset: bigint
  readonly parkedAtMs: number
  /** The redrive a failure stopped, whose later records must stay parked too. */
  readonly blockedRedrive: string | null
}

export interface StoredOffset {
  readonly topic: string
  readonly partition: number
  readonly nextOffset: bigint
}

export interface OutboxMessage {
  readonly topic: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: readonly (readonly [string, Buffer])[]
  /** A partition chosen by the writer, or null for the producer's partitioner. */
  readonly partition: number | null
}

export interface OutboxRow extends OutboxMessage {
  readonly id: bigint
  readonly createdAtMs: number
}

export interface OutboxReader {
  /**
   * Up to `limit` committed rows not yet published, lowest id first. Never skips a row: rows
   * are found by their unpublished state, not by a cursor over ids, so a transaction that
   * committed after a higher id was published is still seen (frameworks.md finding 7).
   */
  pending(limit: number): Promise<OutboxRow[]>
  markPublished(ids: readonly bigint[], nowMs: number): Promise<void>
  /**
   * Runs `work` while holding the store's relay lock, so only one relay publishes at a time
   * (PostgreSQL: an advisory lock on a dedicated connection; SQLite: one process). Resolves to
   * null without running `work` when another relay holds it.
   */
  withRelayLock<T>(work: () => Promise<T>): Promise<T | null>
}

export interface CleanupAges {
  readonly inboxMs?: number
  readonly publishedOutboxMs?: number
  readonly requestsMs?: number
}

export interface CleanupCounts {
  readonly inbox: number
  readonly outbox: number
  readonly requests: number
}
