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
// what it had queued (the new owner reads it) and never commits that partition again; one whose
// partition stays assigned through a rejoin keeps its queue, and skips what is fetched again.

import { Admin, Consumer, MessagesStreamFallbackModes, MessagesStreamModes, type Message, type MessagesStream } from '@platformatic/kafka'
import { silentLogger, type Logger } from '../logger.ts'
import { CopyHeader } from './copies.ts'
import { DeadLetterPublisher, type DeadLetterOptions } from './dead-letter.ts'
import { RetryTopicPublisher, type RetryTopicOptions } from './retry-topic.ts'
import { DeliveryMode, IDEMPOTENCY_KEY_HEADER, assertDeliveryMode, consumerContract } from './delivery.ts'
import { AttemptTimeout, FailureKind, messageOf, PermanentFailure, type Classifier } from './failures.ts'
import { realScheduler, RetriesExhausted, retryPolicy, withRetry, type RetryOptions, type RetryPolicy } from './retry.ts'
import type { Store, StoreTransaction } from './store.ts'
import { childContext, consumeChannel, formatTraceparent, parseTraceparent, TRACEPARENT_HEADER, TRACESTATE_HEADER, type TraceContext } from './trace.ts'

export interface IncomingMessage<Body = Buffer | null> {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: ReadonlyMap<string, Buffer>
  readonly timestamp: bigint
  /**
   * The record's idempotency key, if it has one: for a copy (a delayed retry, a redriven dead
   * letter) the original record's, so the effect is applied once for a record and its copies.
   */
  readonly idempotencyKey: string | null
  /** Where the record first arrived: for a delayed-retry copy, the source topic's record. */
  readonly origin: { readonly topic: string; readonly partition: number; readonly offset: bigint }
  /** How many times the record went through the retry topic (0 for a first delivery). */
  readonly retryCount: number
  /** The `tideway dlq redrive` run that sent this record back, or null. */
  readonly redriveId: string | null
  /** Whether this is the last record of its key in that redrive. */
  readonly lastOfRedrive: boolean
  /** The W3C trace context the record carries (its traceparent header), or null. */
  readonly trace: TraceContext | null
  /** The value as the `decode` option made it (by default the value's bytes). */
  readonly body: Body
}

export interface HandlerContext {
  /** 1 for the first attempt. */
  readonly attempt: number
  /** Aborts when the attempt times out or the consumer stops. */
  readonly signal: AbortSignal
  /** exactly-once: the transaction the handler's database writes must use; undefined otherwise. */
  readonly tx: StoreTransaction | undefined
  readonly logger: Logger
  /** This handling's span: a child of the record's trace context (or a new trace). */
  readonly trace: TraceContext
  /** `trace` as a traceparent header value, to pass on with what the handler sends. */
  readonly traceparent: string
}

export type Handler<Body = Buffer | null> = (message: IncomingMessage<Body>, context: HandlerContext) => Promise<void> | void
/** Runs around the handler inside each attempt; call `next()` once to go on. */
export type Middleware<Body = Buffer | null> = (message: IncomingMessage<Body>, context: HandlerContext, next: () => Promise<void>) => Promise<void>

export interface ConsumerOptions<Body = Buffer | null> {
  readonly bootstrap: string | readonly string[]
  readonly groupId: string
  readonly topics: readonly string[]
  readonly delivery: DeliveryMode
  readonly handler: Handler<Body>
  /**
   * Turns a record's value into the handler's `message.body`, before anything else runs (e.g.
   * JSON.parse). A value that does not decode is a permanent failure: it is dead-lettered at
   * once, since no retry can fix it.
   */
  readonly decode?: (value: Buffer | null) => Body
  /** exactly-once: the user's database (src/stores/). */
  readonly store?: Store
  /** at-least-once and exactly-once: in-place retries (default 5 attempts, 100 ms doubling to 10 s). */
  readonly retry?: Partial<RetryPolicy>
  /** Classifies errors that are not ExpectedFailure/TransientFailure/PermanentFailure (default: transient). */
  readonly classify?: Classifier
  /** Where records go when attempts run out (default: `<topic>.dlt`, policy skip); false halts the partition instead. */
  readonly deadLetter?: DeadLetterOptions | false
  /** The second retry tier: after in-place retries, release to a delayed retry topic (default off). */
  readonly retryTopic?: RetryTopicOptions | false
  readonly middleware?: readonly Middleware<Body>[]
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
  /** Records released to the retry topic. */
  releasedToRetry: number
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
  /** The offset after the last record this lane finished. */
  done: bigint
  /**
   * The offset after the last record this lane queued or finished: anything below it is skipped
   * as fetched again (after a rejoin the stream reads on from the committed offset). So the
   * queue is never dropped while the partition stays assigned: a record fetched before the
   * rejoin could land after the drop, be handled and committed, and the dropped records below
   * it be skipped for good.
   */
  seen: bigint
  halted: boolean
  leaderEpoch: number
  /** Aborts a delayed retry's wait when the partition is revoked. */
  revoked: AbortController
}

const laneKey = (topic: string, partition: number) => `${topic}\u0000${partition}`
/** at-most-once: records committed ahead of handling, per partition (the most a crash can lose there). */
const AT_MOST_ONCE_BATCH = 100
/** exactly-once: records of a partition handled in one store transaction when they are queued. */
const TRANSACTION_BATCH = 100

export class TidewayConsumer<Body = Buffer | null> {
  readonly delivery: DeliveryMode
  readonly stats: ConsumerStats = { handled: 0, retried: 0, deadLettered: 0, releasedToRetry: 0, skippedAsApplied: 0, dropped: 0 }
  readonly #options: ConsumerOptions<Body>
  readonly #policy: RetryPolicy
  readonly #logger: Logger
  readonly #header: string
  readonly #client: Consumer<Buffer, Buffer, Buffer, Buffer>
  readonly #lanes = new Map<string, Lane>()
  readonly #assigned = new Set<string>()
  readonly #pendingCommits = new Map<string, { topic: string; partition: number; offset: bigint; leaderEpoch: number }>()
  readonly #stopping = new AbortController()
  readonly #deadLetters: DeadLetterPublisher | null
  readonly #retryTopic: RetryTopicPublisher | null
  /** park-key: the record keys (hex) parked per partition, as last read from the store. */
  readonly #parked = new Map<string, Set<string>>()
  readonly #bootstrapBrokers: string[]
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | null = null
  #buffered = 0
  #commitTimer: NodeJS.Timeout | null = null
  #committing: Promise<void> = Promise.resolve()
  #lastFlushAt = 0
  #lastYieldAt = 0
  #idle: (() => void)[] = []

  constructor(options: ConsumerOptions<Body>) {
    assertDeliveryMode(options.delivery)
    const contract = consumerContract[options.delivery]
    if (contract.transactional && !options.store) {
      throw new TypeError('exactly-once delivery needs a store: the database the handler writes to (sqliteStore or postgresStore)')
    }
    if (options.topics.length === 0) throw new TypeError('topics must name at least one topic')
    if (options.deadLetter && options.deadLetter.policy === 'park-key' && !options.store) {
      throw new TypeError("the dead-letter policy 'park-key' needs a store, to remember parked keys across restarts")
    }
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
    const copies = { bootstrap: bootstrapBrokers, groupId: options.groupId, idempotencyHeader: this.#header, logger: this.#logger }
    this.#deadLetters = contract.retries && options.deadLetter !== false ? new DeadLetterPublisher({ ...copies, ...(options.deadLetter ?? {}) }) : null
    this.#retryTopic = contract.retries && options.retryTopic ? new RetryTopicPublisher({ ...copies, ...options.retryTopic }) : null
    this.#client.on('consumer:group:join', (payload: { assignments?: { topic: string; partitions: number[] }[] }) => this.#onAssignment(payload.assignments ?? []))
    // The client emits 'error' when a rejoin it started on its own fails, a stop during a
    // rebalance included; unheard, that event would throw and take the whole process down.
    this.#client.on('error', (err: unknown) => {
      if (this.#stopping.signal.aborted) this.#logger.debug('consumer client error while stopping', { err: messageOf(err) })
      else this.#logger.warn('rejoining the group failed; the client keeps trying', { err })
    })
  }

  /** Joins the group and starts handling; resolves once the first assignment has been received. */
  async start(): Promise<void> {
    const { store, groupId } = this.#options
    if (store) await store.migrate()
    if (consumerContract[this.delivery].transactional && store) await this.#restoreOffsets(store, groupId)
    const topics = [...this.#options.topics, ...(this.#retryTopic?.topicsFor(this.#options.topics) ?? [])]
    if (this.#retryTopic) await this.#ensureTopics(this.#retryTopic.topicsFor(this.#options.topics))
    if (this.#deadLetters?.policy === 'park-key') await this.#loadParkedKeys()
    this.#stream = await this.#client.consume({
      topics,
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
    await this.#retryTopic?.close()
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
      const kept = this.#assigned.has(key)
      // A partition halted on a record it could not dead-letter tries again from its commit.
      if (kept && !lane.halted) continue // its queue goes on in order; what is fetched again is skipped
      // Revoked (its new owner reads on from the commit) or halted: start again from what this lane finished.
      this.#drop(lane)
      lane.seen = lane.done
      lane.halted = false
      if (!kept) {
        lane.revoked.abort()
        lane.revoked = new AbortController()
        this.#pendingCommits.delete(key)
      }
    }
    if (this.#deadLetters?.policy === 'park-key') {
      // Another member may have parked keys of the partitions this one now owns.
      this.#loadParkedKeys().catch((err: unknown) => this.#logger.error('reading parked keys failed', { err }))
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
    // A fetch sent before a rebalance can answer after it: a partition this member no longer
    // owns is its new owner's to read (handling it here could run ahead of the owner's commits).
    if (!this.#assigned.has(key)) return
    let lane = this.#lanes.get(key)
    if (!lane) {
      lane = { topic: message.topic, partition: message.partition, queue: [], working: false, done: -1n, seen: -1n, halted: false, leaderEpoch: message.leaderEpoch, revoked: new AbortController() }
      this.#lanes.set(key, lane)
    }
    if (message.offset < lane.seen) return // fetched again after a rejoin: queued or handled here already
    lane.seen = message.offset + 1n
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
        else if (this.#batchable(lane)) await this.#transactionalBatch(lane)
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
      const message = this.#toMessage(record)
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
    const message = this.#toMessage(record)
    const store = consumerContract[this.delivery].transactional ? this.#options.store! : null
    if (message.retryCount > 0 && !(await this.#waitUntilDue(lane, message))) return // stopping or revoked
    const outcome = (await this.#parkedBehind(lane, message)) ? 'parked' : await this.#attempts(message, store)
    if (outcome === 'stopped') return // the record stays uncommitted
    if (outcome === 'handled') await this.#afterHandled(lane, message)
    else if (outcome !== 'expected') {
      const released = outcome !== 'parked' && outcome.kind === FailureKind.transient && (await this.#releaseToRetryTopic(message, outcome))
      if (!released && !(await this.#deadLetter(lane, message, outcome))) {
        lane.halted = true
        this.#logger.error('partition halted: a record failed and could not be dead-lettered', { topic: message.topic, partition: message.partition, offset: message.offset })
        return
      }
    }
    if (outcome !== 'handled' && store) await this.#advanceInStore(store, message, outcome === 'expected')
    lane.done = message.offset + 1n
    lane.leaderEpoch = record.leaderEpoch
    this.#queueCommit(lane, message.offset + 1n, record.leaderEpoch)
  }

  /** Runs the attempts under the retry policy: handled, an expected failure, or the exhausted failure. */
  async #attempts(message: IncomingMessage<unknown>, store: Store | null): Promise<'handled' | 'expected' | 'stopped' | RetriesExhausted> {
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
      return 'handled'
    } catch (err) {
      if (this.#stopping.signal.aborted) return 'stopped'
      if (!(err instanceof RetriesExhausted)) throw err
      if (err.kind === FailureKind.expected) {
        this.stats.handled++
        return 'expected'
      }
      return err
    }
  }

  /**
   * park-key: whether the record must wait behind a parked key (it is dead-lettered as `parked`).
   * A redriven record passes, unless its redrive was stopped by a new failure of that key.
   */
  async #parkedBehind(lane: Lane, message: IncomingMessage<unknown>): Promise<boolean> {
    const parked = this.#parked.get(laneKey(lane.topic, lane.partition))
    if (!message.key || !parked?.has(message.key.toString('hex'))) return false
    const state = await this.#options.store!.transaction((tx) => tx.parkedKey(this.#options.groupId, message.topic, message.partition, message.key!))
    if (!state) {
      parked.delete(message.key.toString('hex')) // unparked elsewhere
      return false
    }
    return message.redriveId === null || state.blockedRedrive === message.redriveId
  }

  /** After a handled record: the last record of a redriven key unparks it. */
  async #afterHandled(lane: Lane, message: IncomingMessage<unknown>): Promise<void> {
    if (!message.lastOfRedrive || !message.key || this.#deadLetters?.policy !== 'park-key') return
    const { groupId } = this.#options
    await this.#options.store!.transaction(async (tx) => {
      const state = await tx.parkedKey(groupId, message.topic, message.partition, message.key!)
      if (state && state.blockedRedrive !== message.redriveId) await tx.unparkKey(groupId, message.topic, message.partition, message.key!)
    })
    this.#parked.get(laneKey(lane.topic, lane.partition))?.delete(message.key.toString('hex'))
    this.#logger.info('key unparked after its redrive', { topic: message.topic, partition: message.partition, key: message.key.toString() })
  }

  /** The second retry tier: true when a copy went to the retry topic, to be handled after a delay. */
  async #releaseToRetryTopic(message: IncomingMessage<unknown>, failure: RetriesExhausted): Promise<boolean> {
    const retry = this.#retryTopic
    if (!retry || message.retryCount >= retry.delaysMs.length) return false
    try {
      await retry.publish(message, failure)
    } catch (err) {
      this.#logger.error('publishing to the retry topic failed', { topic: message.topic, partition: message.partition, offset: message.offset, err })
      return false
    }
    this.stats.releasedToRetry++
    return true
  }

  /** A delayed retry waits for its time; false when the consumer stops or the partition is revoked first. */
  async #waitUntilDue(lane: Lane, message: IncomingMessage<unknown>): Promise<boolean> {
    const wait = Number(message.headers.get(CopyHeader.retryNotBefore)?.toString() ?? 0) - Date.now()
    if (wait <= 0) return true
    const signal = AbortSignal.any([this.#stopping.signal, lane.revoked.signal])
    try {
      await realScheduler.sleep(wait, signal)
      return true
    } catch {
      return false
    }
  }

  /** true when the record is dead-lettered (and, park-key, its key parked). */
  async #deadLetter(lane: Lane, message: IncomingMessage<unknown>, failure: RetriesExhausted | 'parked'): Promise<boolean> {
    if (!this.#deadLetters) return false
    const now = Date.now()
    const reason =
      failure === 'parked'
        ? { errorClass: 'parked' as const, error: 'an earlier record of this key is dead-lettered (park-key)', attempts: 0, firstFailureAt: now, lastFailureAt: now }
        : { errorClass: failure.kind === FailureKind.permanent ? ('permanent' as const) : ('transient' as const), error: failure.cause, attempts: failure.attempts, firstFailureAt: failure.firstFailureAt, lastFailureAt: failure.lastFailureAt }
    try {
      await this.#deadLetters.publish(message, reason)
    } catch (err) {
      this.#logger.error('publishing to the dead-letter topic failed', { topic: message.topic, partition: message.partition, offset: message.offset, err })
      return false
    }
    this.stats.deadLettered++
    if (this.#deadLetters.policy === 'park-key' && message.key && failure !== 'parked') {
      const { groupId } = this.#options
      await this.#options.store!.transaction((tx) => tx.parkKey(groupId, message.topic, message.partition, message.key!, message.offset, now, message.redriveId))
      const key = laneKey(lane.topic, lane.partition)
      if (!this.#parked.has(key)) this.#parked.set(key, new Set())
      this.#parked.get(key)!.add(message.key.toString('hex'))
      this.#logger.warn('key parked behind a dead letter', { topic: message.topic, partition: message.partition, offset: message.offset, key: message.key.toString() })
    }
    return true
  }

  /**
   * exactly-once with a backlog: several records of the partition in one transaction (one lock,
   * one offset write, one commit and fsync instead of one each), as long as none of them needs
   * anything but the plain path: no delayed retry copy, no parked key on the lane.
   */
  #batchable(lane: Lane): boolean {
    if (!consumerContract[this.delivery].transactional || lane.queue.length < 2) return false
    if ((this.#parked.get(laneKey(lane.topic, lane.partition))?.size ?? 0) > 0) return false
    return lane.queue.slice(0, TRANSACTION_BATCH).every((record) => !isRetryCopy(record))
  }

  /**
   * Handles up to TRANSACTION_BATCH records in one store transaction. If any handler fails, the
   * transaction rolls back, so none of their effects happened, and each record is then handled
   * on its own, with retries and dead letters as usual.
   */
  async #transactionalBatch(lane: Lane): Promise<void> {
    const records = lane.queue.splice(0, TRANSACTION_BATCH)
    this.#buffered -= records.length
    this.#maybeResume()
    const store = this.#options.store!
    const { groupId } = this.#options
    const messages = records.map((r) => this.#toMessage(r))
    let applied = 0
    let skipped = 0
    try {
      await store.transaction(async (tx) => {
        applied = 0
        skipped = 0
        const next = await tx.lockPartition(groupId, lane.topic, lane.partition)
        for (const message of messages) {
          if (next !== null && message.offset < next) {
            skipped++
            continue
          }
          if (message.idempotencyKey !== null && !(await tx.recordInbox(groupId, message.idempotencyKey, message, Date.now()))) {
            skipped++
            continue
          }
          await this.#withinAttemptTimeout((signal) => this.#runAttempt(message, 1, signal, tx))
          applied++
        }
        await tx.setPartitionOffset(groupId, lane.topic, lane.partition, messages.at(-1)!.offset + 1n)
      })
    } catch (err) {
      if (this.#stopping.signal.aborted) return
      this.#logger.debug('a record of a transaction batch failed; handling the batch one record at a time', { topic: lane.topic, partition: lane.partition, err })
      for (const record of records) {
        if (lane.halted || this.#stopping.signal.aborted) return
        await this.#handleWithRetries(lane, record)
      }
      return
    }
    this.stats.handled += applied
    this.stats.skippedAsApplied += skipped
    const last = records.at(-1)!
    lane.done = last.offset + 1n
    lane.leaderEpoch = last.leaderEpoch
    this.#queueCommit(lane, last.offset + 1n, last.leaderEpoch)
  }

  /** Runs one attempt under the policy's per-attempt timeout (the batch path has no retry loop to do it). */
  async #withinAttemptTimeout(attempt: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const limit = this.#policy.attemptTimeoutMs
    if (limit <= 0) return attempt(this.#stopping.signal)
    const timeout = new AbortController()
    const signal = AbortSignal.any([this.#stopping.signal, timeout.signal])
    const timer = setTimeout(() => timeout.abort(new AttemptTimeout(limit)), limit)
    try {
      await Promise.race([attempt(signal), new Promise<never>((_, reject) => timeout.signal.addEventListener('abort', () => reject(timeout.signal.reason), { once: true }))])
    } finally {
      clearTimeout(timer)
    }
  }

  /** One attempt of an exactly-once record: skip it if applied, else handle and advance in one transaction. */
  async #transactionalAttempt(store: Store, message: IncomingMessage<unknown>, attempt: number, signal: AbortSignal): Promise<void> {
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

  /**
   * Moves the stored offset past a record that was not handled here: an expected failure (its key
   * joins the inbox: it counts as handled) or a record released to the retry topic or
   * dead-lettered (its key stays out of the inbox, so the copy's effect can still be applied).
   */
  async #advanceInStore(store: Store, message: IncomingMessage<unknown>, countsAsHandled: boolean): Promise<void> {
    const { groupId } = this.#options
    await store.transaction(async (tx) => {
      const next = await tx.lockPartition(groupId, message.topic, message.partition)
      if (next !== null && message.offset < next) return
      if (countsAsHandled && message.idempotencyKey !== null) await tx.recordInbox(groupId, message.idempotencyKey, message, Date.now())
      await tx.setPartitionOffset(groupId, message.topic, message.partition, message.offset + 1n)
    })
  }

  async #runAttempt(message: IncomingMessage<unknown>, attempt: number, signal: AbortSignal, tx: StoreTransaction | undefined): Promise<void> {
    const trace = childContext(message.trace)
    const context: HandlerContext = { attempt, signal, tx, logger: this.#logger, trace, traceparent: formatTraceparent(trace) }
    const decoded = this.#withBody(message)
    const chain = this.#options.middleware ?? []
    const run = (i: number): Promise<void> => {
      if (i === chain.length) return Promise.resolve(this.#options.handler(decoded, context))
      let called = false
      return chain[i]!(decoded, context, () => {
        if (called) throw new Error(`middleware ${i} called next() twice`)
        called = true
        return run(i + 1)
      })
    }
    await consumeChannel.tracePromise(() => run(0), { message, trace })
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

  /** The message with its body decoded by the `decode` option; a decoder failure is permanent. */
  #withBody(message: IncomingMessage<unknown>): IncomingMessage<Body> {
    const { decode } = this.#options
    if (!decode) return message as IncomingMessage<Body>
    try {
      return { ...message, body: decode(message.value) }
    } catch (err) {
      throw new PermanentFailure(`the record's value does not decode: ${messageOf(err)}`, { cause: err })
    }
  }

  /** The record as the SDK's stages see it (its body not decoded yet). */
  #toMessage(record: Message<Buffer, Buffer, Buffer, Buffer>): IncomingMessage<unknown> {
    const headers = new Map<string, Buffer>()
    for (const [name, value] of record.headers) headers.set(name.toString(), value)
    const text = (name: string) => {
      const value = headers.get(name)
      return value && value.length > 0 ? value.toString() : null
    }
    const retrySource = text(CopyHeader.retrySourceTopic)
    return {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      key: record.key ?? null,
      value: record.value ?? null,
      headers,
      timestamp: record.timestamp,
      idempotencyKey: text(CopyHeader.originalIdempotencyKey) ?? text(this.#header),
      origin: retrySource
        ? { topic: retrySource, partition: Number(text(CopyHeader.retrySourcePartition)), offset: BigInt(text(CopyHeader.retrySourceOffset) ?? '0') }
        : { topic: record.topic, partition: record.partition, offset: record.offset },
      retryCount: Number(text(CopyHeader.retryCount) ?? 0),
      redriveId: text(CopyHeader.redriveId),
      lastOfRedrive: text(CopyHeader.redriveLast) === 'true',
      trace: parseTraceparent(text(TRACEPARENT_HEADER), text(TRACESTATE_HEADER)),
      body: record.value ?? null,
    }
  }

  async #loadParkedKeys(): Promise<void> {
    const parked = await this.#options.store!.readParkedKeys(this.#options.groupId)
    this.#parked.clear()
    for (const { topic, partition, recordKey } of parked) {
      const key = laneKey(topic, partition)
      if (!this.#parked.has(key)) this.#parked.set(key, new Set())
      this.#parked.get(key)!.add(recordKey.toString('hex'))
    }
  }

  /** Creates missing topics (the retry topics) with as many partitions as their source. */
  async #ensureTopics(topics: readonly string[]): Promise<void> {
    const admin = new Admin({ clientId: `tideway-${this.#options.groupId}-admin`, bootstrapBrokers: this.#bootstrapBrokers })
    try {
      const existing = new Set(await admin.listTopics())
      const missing = topics.filter((t) => !existing.has(t))
      if (missing.length === 0) return
      const sources = await admin.metadata({ topics: [...this.#options.topics] })
      for (const [i, topic] of topics.entries()) {
        if (!missing.includes(topic)) continue
        const partitions = sources.topics.get(this.#options.topics[i]!)?.partitionsCount ?? 1
        await admin.createTopics({ topics: [topic], partitions }).catch((err: unknown) => {
          // Another member created it first.
          const findBy = (err as { findBy?: (property: string, value: unknown) => unknown }).findBy
          if (!findBy?.call(err, 'apiId', 'TOPIC_ALREADY_EXISTS')) throw err
        })
      }
    } finally {
      await admin.close().catch(() => {})
    }
  }
}

const RETRY_COUNT_HEADER = Buffer.from(CopyHeader.retryCount)

/** Whether a record is a delayed-retry copy (it carries a retry count), without decoding it. */
function isRetryCopy(record: Message<Buffer, Buffer, Buffer, Buffer>): boolean {
  for (const name of record.headers.keys()) if (RETRY_COUNT_HEADER.equals(name)) return true
  return false
}

export function createConsumer<Body = Buffer | null>(options: ConsumerOptions<Body>): TidewayConsumer<Body> {
  return new TidewayConsumer(options)
}
