// A consumer group member with its delivery guarantee as one word (delivery.ts), over
// @platformatic/kafka, so it runs unchanged against Tideway, Kafka or Redpanda.
//
//   at-most-once   each partition's fetched records are committed, then handled once; a failure
//                  is logged and dropped. A crash loses what was committed and not yet handled.
//   at-least-once  handled (with retries), then committed; a crash repeats what was handled and
//                  not yet committed. Commits are coalesced per partition (commitIntervalMs).
//   exactly-once   each record is handled inside one transaction of the user's database (the
//                  store) that also checks and advances the group's offset for the partition and
//                  records the record's idempotency key in the inbox: a record at or below the
//                  stored offset, or with a key the inbox has, is skipped. Offsets are restored
//                  from the store on start. Kafka's committed offset follows, only to start near
//                  the right place and to show lag.
//
// The pipeline per record, in this fixed order (research frameworks.md finding 1: a preset chain,
// because a mis-ordered one is the classic bug): decode the record -> skip it if already applied
// (exactly-once) -> retry policy -> [one attempt: store transaction (exactly-once) -> the user's
// middleware, outermost first -> the handler] -> on failure, classify (failures.ts): expected
// failures count as handled; transient ones are retried and then, like permanent ones,
// dead-lettered with provenance (dead-letter.ts) -> commit.
//
// Partitions are independent lanes: records of one partition are handled strictly in order, one
// at a time; different partitions run concurrently. A lane whose partition is revoked drops
// what it had queued (the new owner reads it) and never commits that partition again.

import { Admin, Consumer, MessagesStreamFallbackModes, MessagesStreamModes, type Message, type MessagesStream } from '@platformatic/kafka'
import { silentLogger, type Logger } from '../logger.ts'
import { DeadLetterPublisher, type DeadLetterOptions } from './dead-letter.ts'
import { DeliveryMode, IDEMPOTENCY_KEY_HEADER, assertDeliveryMode, consumerContract } from './delivery.ts'
import { FailureKind, messageOf, type Classifier } from './failures.ts'
import { RetriesExhausted, retryPolicy, withRetry, type RetryOptions, type RetryPolicy } from './retry.ts'
import type { Store, StoreTransaction } from './store.ts'

export interface IncomingMessage {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: ReadonlyMap<string, Buffer>
  readonly timestamp: bigint
  /** The record's idempotency key header, if it has one. */
  readonly idempotencyKey: string | null
}

export interface HandlerContext {
  /** 1 for the first attempt. */
  readonly attempt: number
  /** Aborts when the attempt times out or the consumer stops. */
  readonly signal: AbortSignal
  /** exactly-once: the transaction the handler's database writes must use; undefined otherwise. */
  readonly tx: StoreTransaction | undefined
  readonly logger: Logger
}

export type Handler = (message: IncomingMessage, context: HandlerContext) => Promise<void> | void
/** Runs around the handler inside each attempt; call `next()` once to go on. */
export type Middleware = (message: IncomingMessage, context: HandlerContext, next: () => Promise<void>) => Promise<void>

export interface ConsumerOptions {
  readonly bootstrap: string | readonly string[]
  readonly groupId: string
  readonly topics: readonly string[]
  readonly delivery: DeliveryMode
  readonly handler: Handler
  /** exactly-once: the user's database (src/stores/). */
  readonly store?: Store
  /** at-least-once and exactly-once: in-place retries (default 5 attempts, 100 ms doubling to 10 s). */
  readonly retry?: Partial<RetryPolicy>
  /** Classifies errors that are not ExpectedFailure/TransientFailure/PermanentFailure (default: transient). */
  readonly classify?: Classifier
  /** Where records go when attempts run out (default: `<topic>.dlt`); false halts the partition instead. */
  readonly deadLetter?: DeadLetterOptions | false
  readonly middleware?: readonly Middleware[]
  /** Where a partition without a committed offset starts (default earliest). */
  readonly from?: 'earliest' | 'latest'
  readonly idempotencyHeader?: string
  readonly clientId?: string
  /**
   * Static membership (KIP-345): a member restarted with the same id takes its partitions back at
   * once, without waiting for its old session to time out.
   */
  readonly groupInstanceId?: string
  readonly sessionTimeoutMs?: number
  readonly heartbeatIntervalMs?: number
  /** at-least-once: the longest a handled record waits for its commit (default 100 ms). */
  readonly commitIntervalMs?: number
  /** Records buffered across partitions before fetching pauses (default 1000). */
  readonly maxBufferedRecords?: number
  readonly logger?: Logger
  /** Tests: the retry loop's time and randomness. */
  readonly retryOptions?: Pick<RetryOptions, 'scheduler' | 'random'>
}

export interface ConsumerStats {
  /** Handler runs that succeeded (or ended in an expected failure). */
  handled: number
  /** Attempts that failed and were tried again. */
  retried: number
  deadLettered: number
  /** exactly-once: records skipped because the store had already applied them. */
  skippedAsApplied: number
  /** at-most-once: records whose one attempt failed, dropped. */
  dropped: number
}

interface Lane {
  readonly topic: string
  readonly partition: number
  queue: Message<Buffer, Buffer, Buffer, Buffer>[]
  working: boolean
  /** The offset after the last record this lane finished (skip anything below it). */
  done: bigint
  halted: boolean
  leaderEpoch: number
}

const laneKey = (topic: string, partition: number) => `${topic}\u0000${partition}`
/** at-most-once: records committed ahead of handling, per partition (the most a crash can lose there). */
const AT_MOST_ONCE_BATCH = 100

export class TidewayConsumer {
  readonly delivery: DeliveryMode
  readonly stats: ConsumerStats = { handled: 0, retried: 0, deadLettered: 0, skippedAsApplied: 0, dropped: 0 }
  readonly #options: ConsumerOptions
  readonly #policy: RetryPolicy
  readonly #logger: Logger
  readonly #header: string
  readonly #client: Consumer<Buffer, Buffer, Buffer, Buffer>
  readonly #lanes = new Map<string, Lane>()
  readonly #assigned = new Set<string>()
  readonly #pendingCommits = new Map<string, { topic: string; partition: number; offset: bigint; leaderEpoch: number }>()
  readonly #stopping = new AbortController()
  readonly #deadLetters: DeadLetterPublisher | null
  readonly #bootstrapBrokers: string[]
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | null = null
  #buffered = 0
  #commitTimer: NodeJS.Timeout | null = null
  #committing: Promise<void> = Promise.resolve()
  #lastFlushAt = 0
  #lastYieldAt = 0
  #idle: (() => void)[] = []

  constructor(options: ConsumerOptions) {
    assertDeliveryMode(options.delivery)
    const contract = consumerContract[options.delivery]
    if (contract.transactional && !options.store) {
      throw new TypeError('exactly-once delivery needs a store: the database the handler writes to (sqliteStore or postgresStore)')
    }
    if (options.topics.length === 0) throw new TypeError('topics must name at least one topic')
    this.delivery = options.delivery
    this.#options = options
    this.#policy = contract.retries ? retryPolicy(options.retry) : retryPolicy({ attempts: 1, attemptTimeoutMs: options.retry?.attemptTimeoutMs ?? 0 })
    this.#logger = (options.logger ?? silentLogger).child({ group: options.groupId })
    this.#header = options.idempotencyHeader ?? IDEMPOTENCY_KEY_HEADER
    const bootstrapBrokers = typeof options.bootstrap === 'string' ? [options.bootstrap] : [...options.bootstrap]
    this.#bootstrapBrokers = bootstrapBrokers
    this.#client = new Consumer({
      clientId: options.clientId ?? `tideway-${options.groupId}`,
      groupId: options.groupId,
      bootstrapBrokers,
      autocommit: false,
      ...(options.sessionTimeoutMs ? { sessionTimeout: options.sessionTimeoutMs } : {}),
      ...(options.groupInstanceId ? { groupInstanceId: options.groupInstanceId } : {}),
      ...(options.heartbeatIntervalMs ? { heartbeatInterval: options.heartbeatIntervalMs } : {}),
    })
    this.#deadLetters =
      contract.retries && options.deadLetter !== false
        ? new DeadLetterPublisher({ bootstrap: bootstrapBrokers, groupId: options.groupId, logger: this.#logger, ...(options.deadLetter ?? {}) })
        : null
    this.#client.on('consumer:group:join', (payload: { assignments?: { topic: string; partitions: number[] }[] }) => this.#onAssignment(payload.assignments ?? []))
  }

  /** Joins the group and starts handling; resolves once the first assignment has been received. */
  async start(): Promise<void> {
    const { store, groupId } = this.#options
    if (store) await store.migrate()
    if (consumerContract[this.delivery].transactional && store) await this.#restoreOffsets(store, groupId)
    this.#stream = await this.#client.consume({
      topics: [...this.#options.topics],
      mode: MessagesStreamModes.COMMITTED,
      fallbackMode: this.#options.from === 'latest' ? MessagesStreamFallbackModes.LATEST : MessagesStreamFallbackModes.EARLIEST,
      autocommit: false,
    })
    this.#stream.on('data', (message: Message<Buffer, Buffer, Buffer, Buffer>) => this.#dispatch(message))
    this.#stream.on('error', (err: unknown) => this.#logger.error('consumer stream failed', { err }))
    this.#commitTimer = setInterval(() => void this.#flushCommits(), this.#options.commitIntervalMs ?? 100)
    this.#commitTimer.unref()
  }

  /**
   * Stops fetching, lets each partition finish the record it is handling (its queue is dropped),
   * commits what was handled, leaves the group and closes the connections.
   */
  async stop(): Promise<void> {
    if (this.#stopping.signal.aborted) return
    this.#stopping.abort(new Error('the consumer is stopping'))
    if (this.#commitTimer) clearInterval(this.#commitTimer)
    this.#stream?.pause()
    for (const lane of this.#lanes.values()) this.#drop(lane)
    await this.#whenIdle()
    await this.#flushCommits()
    await this.#stream?.close().catch(() => {})
    await this.#client.close().catch((err: unknown) => this.#logger.warn('closing the consumer failed', { err }))
    await this.#deadLetters?.close()
  }

  /** Resolves when no partition is handling or holding a record. */
  #whenIdle(): Promise<void> {
    if ([...this.#lanes.values()].every((lane) => !lane.working && lane.queue.length === 0)) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #onAssignment(assignments: readonly { topic: string; partitions: number[] }[]): void {
    this.#assigned.clear()
    for (const { topic, partitions } of assignments) for (const p of partitions) this.#assigned.add(laneKey(topic, p))
    for (const [key, lane] of this.#lanes) {
      // Revoked, or fetched again from the committed offset: what is queued is stale either way.
      this.#drop(lane)
      if (!this.#assigned.has(key)) this.#pendingCommits.delete(key)
    }
    this.#logger.info('partitions assigned', { partitions: [...this.#assigned].map((k) => k.replace('\u0000', '-')) })
  }

  #drop(lane: Lane): void {
    this.#buffered -= lane.queue.length
    lane.queue = []
    this.#maybeResume()
  }

  #dispatch(message: Message<Buffer, Buffer, Buffer, Buffer>): void {
    if (this.#stopping.signal.aborted) return
    const key = laneKey(message.topic, message.partition)
    let lane = this.#lanes.get(key)
    if (!lane) {
      lane = { topic: message.topic, partition: message.partition, queue: [], working: false, done: -1n, halted: false, leaderEpoch: message.leaderEpoch }
      this.#lanes.set(key, lane)
    }
    if (message.offset < lane.done) return // fetched again after a rebalance; this member already handled it
    lane.queue.push(message)
    this.#buffered++
    if (this.#buffered >= (this.#options.maxBufferedRecords ?? 1000)) this.#stream?.pause()
    if (!lane.working) void this.#work(lane)
  }

  #maybeResume(): void {
    if (this.#stopping.signal.aborted || !this.#stream) return
    if (this.#buffered < (this.#options.maxBufferedRecords ?? 1000) / 2 && this.#stream.isPaused()) this.#stream.resume()
  }

  async #work(lane: Lane): Promise<void> {
    lane.working = true
    try {
      while (lane.queue.length > 0 && !lane.halted && !this.#stopping.signal.aborted) {
        if (this.delivery === DeliveryMode.atMostOnce) await this.#atMostOnce(lane)
        else {
          const message = lane.queue.shift()!
          this.#buffered--
          this.#maybeResume()
          await this.#handleWithRetries(lane, message)
        }
        await this.#yieldNowAndThen()
      }
    } finally {
      lane.working = false
      if ([...this.#lanes.values()].every((l) => !l.working && l.queue.length === 0)) for (const resolve of this.#idle.splice(0)) resolve()
    }
  }

  /**
   * A handler on a synchronous database (node:sqlite) resolves in microtasks, so a lane with a
   * backlog would never give timers a turn: no heartbeats, no commits. Every few milliseconds of
   * work, let the event loop run.
   */
  async #yieldNowAndThen(): Promise<void> {
    const now = performance.now()
    if (now - this.#lastYieldAt < 5) return
    this.#lastYieldAt = now
    await new Promise((resolve) => setImmediate(resolve))
  }

  /**
   * Commit up to AT_MOST_ONCE_BATCH of the lane's records, then handle each once: a crash loses at
   * most that many committed records that were not handled yet.
   */
  async #atMostOnce(lane: Lane): Promise<void> {
    const batch = lane.queue.splice(0, AT_MOST_ONCE_BATCH)
    this.#buffered -= batch.length
    this.#maybeResume()
    const last = batch.at(-1)!
    try {
      await this.#client.commit({ offsets: [{ topic: lane.topic, partition: lane.partition, offset: last.offset + 1n, leaderEpoch: last.leaderEpoch }] })
    } catch (err) {
      // Not committed, so not handled: the records stay for whoever owns the partition next.
      this.#logger.warn('commit before handling failed; records left unhandled', { topic: lane.topic, partition: lane.partition, err })
      return
    }
    lane.done = last.offset + 1n
    for (const record of batch) {
      const message = this.#decode(record)
      try {
        await this.#runAttempt(message, 1, this.#stopping.signal, undefined)
        this.stats.handled++
      } catch (err) {
        this.stats.dropped++
        this.#logger.warn('at-most-once: the one attempt failed; the record is dropped', { topic: message.topic, partition: message.partition, offset: message.offset, err })
      }
      await this.#yieldNowAndThen()
    }
  }

  async #handleWithRetries(lane: Lane, record: Message<Buffer, Buffer, Buffer, Buffer>): Promise<void> {
    const message = this.#decode(record)
    const store = consumerContract[this.delivery].transactional ? this.#options.store! : null
    try {
      await withRetry(
        this.#policy,
        async (attempt, signal) => {
          if (store) await this.#transactionalAttempt(store, message, attempt, signal)
          else {
            await this.#runAttempt(message, attempt, signal, undefined)
            this.stats.handled++
          }
        },
        {
          ...this.#options.retryOptions,
          signal: this.#stopping.signal,
          ...(this.#options.classify ? { classify: this.#options.classify } : {}),
          onRetry: ({ attempt, delayMs, error }) => {
            this.stats.retried++
            this.#logger.warn('handler failed; retrying', { topic: message.topic, partition: message.partition, offset: message.offset, attempt, delayMs, err: error })
          },
        },
      )
    } catch (err) {
      if (this.#stopping.signal.aborted) return // stopping: the record stays uncommitted
      if (!(err instanceof RetriesExhausted)) throw err
      if (err.kind === FailureKind.expected) {
        this.stats.handled++
        if (store) await this.#advanceInStore(store, message)
      } else if (!(await this.#deadLetter(message, err, store))) {
        lane.halted = true
        this.#logger.error('partition halted: a record failed and there is no dead-letter topic', { topic: message.topic, partition: message.partition, offset: message.offset, err })
        return
      }
    }
    lane.done = message.offset + 1n
    lane.leaderEpoch = record.leaderEpoch
    this.#queueCommit(lane, message.offset + 1n, record.leaderEpoch)
  }

  /** One attempt of an exactly-once record: skip it if applied, else handle and advance in one transaction. */
  async #transactionalAttempt(store: Store, message: IncomingMessage, attempt: number, signal: AbortSignal): Promise<void> {
    const { groupId } = this.#options
    const applied = await store.transaction(async (tx) => {
      const next = await tx.lockPartition(groupId, message.topic, message.partition)
      if (next !== null && message.offset < next) return true
      if (message.idempotencyKey !== null) {
        const fresh = await tx.recordInbox(groupId, message.idempotencyKey, message, Date.now())
        if (!fresh) {
          await tx.setPartitionOffset(groupId, message.topic, message.partition, message.offset + 1n)
          return true
        }
      }
      await this.#runAttempt(message, attempt, signal, tx)
      await tx.setPartitionOffset(groupId, message.topic, message.partition, message.offset + 1n)
      return false
    })
    if (applied) this.stats.skippedAsApplied++
    else this.stats.handled++
  }

  /** Moves the stored offset past a record that will not be handled (expected failure, dead-lettered). */
  async #advanceInStore(store: Store, message: IncomingMessage): Promise<void> {
    const { groupId } = this.#options
    await store.transaction(async (tx) => {
      const next = await tx.lockPartition(groupId, message.topic, message.partition)
      if (next !== null && message.offset < next) return
      if (message.idempotencyKey !== null) await tx.recordInbox(groupId, message.idempotencyKey, message, Date.now())
      await tx.setPartitionOffset(groupId, message.topic, message.partition, message.offset + 1n)
    })
  }

  async #runAttempt(message: IncomingMessage, attempt: number, signal: AbortSignal, tx: StoreTransaction | undefined): Promise<void> {
    const context: HandlerContext = { attempt, signal, tx, logger: this.#logger }
    const chain = this.#options.middleware ?? []
    const run = (i: number): Promise<void> => {
      if (i === chain.length) return Promise.resolve(this.#options.handler(message, context))
      let called = false
      return chain[i]!(message, context, () => {
        if (called) throw new Error(`middleware ${i} called next() twice`)
        called = true
        return run(i + 1)
      })
    }
    await run(0)
  }

  /** true when the record is dead-lettered (and, exactly-once, the store moved past it). */
  async #deadLetter(message: IncomingMessage, failure: RetriesExhausted, store: Store | null): Promise<boolean> {
    if (!this.#deadLetters) return false
    try {
      await this.#deadLetters.publish(message, failure)
    } catch (err) {
      this.#logger.error('publishing to the dead-letter topic failed', { topic: message.topic, partition: message.partition, offset: message.offset, err })
      return false
    }
    this.stats.deadLettered++
    if (store) await this.#advanceInStore(store, message)
    return true
  }

  #queueCommit(lane: Lane, offset: bigint, leaderEpoch: number): void {
    const key = laneKey(lane.topic, lane.partition)
    if (!this.#assigned.has(key)) return
    this.#pendingCommits.set(key, { topic: lane.topic, partition: lane.partition, offset, leaderEpoch })
    if (performance.now() - this.#lastFlushAt >= (this.#options.commitIntervalMs ?? 100)) void this.#flushCommits()
  }

  #flushCommits(): Promise<void> {
    this.#lastFlushAt = performance.now()
    this.#committing = this.#committing.then(async () => {
      if (this.#pendingCommits.size === 0) return
      const offsets = [...this.#pendingCommits.values()]
      this.#pendingCommits.clear()
      try {
        await this.#client.commit({ offsets })
      } catch (err) {
        // A rebalance under way: the offsets handled here are committed by whoever owns them
        // next, or this member commits them again after rejoining (at-least-once repeats them).
        this.#logger.debug('commit failed', { err: messageOf(err) })
      }
    })
    return this.#committing
  }

  /** exactly-once: commits the store's offsets to the group before joining, when they are ahead. */
  async #restoreOffsets(store: Store, groupId: string): Promise<void> {
    const stored = (await store.readOffsets(groupId)).filter((o) => this.#options.topics.includes(o.topic))
    if (stored.length === 0) return
    const byTopic = new Map<string, { partition: number; offset: bigint }[]>()
    for (const o of stored) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), { partition: o.partition, offset: o.nextOffset }])
    const admin = new Admin({ clientId: `tideway-${groupId}-restore`, bootstrapBrokers: this.#bootstrapBrokers })
    try {
      await admin.alterConsumerGroupOffsets({ groupId, topics: [...byTopic].map(([name, partitionOffsets]) => ({ name, partitionOffsets })) })
      this.#logger.info('offsets restored from the store', { partitions: stored.length })
    } catch (err) {
      // The group has live members (Kafka refuses a commit from outside it): their commits stand,
      // and the store's check skips anything already applied, so this only costs re-reading.
      this.#logger.info('offsets not restored from the store (the group is active); applied records will be skipped', { err: messageOf(err) })
    } finally {
      await admin.close().catch(() => {})
    }
  }

  #decode(record: Message<Buffer, Buffer, Buffer, Buffer>): IncomingMessage {
    const headers = new Map<string, Buffer>()
    for (const [name, value] of record.headers) headers.set(name.toString(), value)
    const keyHeader = headers.get(this.#header)
    return {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      key: record.key ?? null,
      value: record.value ?? null,
      headers,
      timestamp: record.timestamp,
      idempotencyKey: keyHeader && keyHeader.length > 0 ? keyHeader.toString() : null,
    }
  }
}

export function createConsumer(options: ConsumerOptions): TidewayConsumer {
  return new TidewayConsumer(options)
}
