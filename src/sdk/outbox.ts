// The transactional outbox: "change my database and publish an event" as one atomic step
// (architecture.md). The event is written as a row in the same transaction as the business
// change (`enqueue`), so both commit or neither does; a relay publishes committed rows and marks
// them published.
//
// The relay publishes each row with the idempotency key `<prefix><row id>`: when it crashes
// after publishing and before marking, the rows it publishes again carry the same keys, so a
// Tideway topic with tideway.dedup.enable stores each event once, and on any other cluster the
// exactly-once consumer's inbox drops the repeat. Rows are found by their unpublished state,
// never by a cursor over ids, so a transaction that commits after a later id was published is
// still relayed (research frameworks.md finding 7). One relay publishes at a time (the store's
// relay lock); rows are sent in id order, one request per topic and partition.

import { silentLogger, type Logger } from '../logger.ts'
import { TidewayProducer, type OutgoingMessage } from './producer.ts'
import type { RetryPolicy } from './retry.ts'
import type { OutboxRow, Store, StoreTransaction } from './store.ts'

export interface OutboxEvent {
  readonly topic: string
  readonly key?: string | Buffer | null
  readonly value: string | Buffer | null
  readonly headers?: Readonly<Record<string, string | Buffer>>
  readonly partition?: number
}

/** Adds an event to the outbox inside the caller's transaction; returns the row id. */
export function enqueueEvent(tx: StoreTransaction, event: OutboxEvent, nowMs = Date.now()): Promise<bigint> {
  const bytes = (v: string | Buffer | null | undefined) => (v === null || v === undefined ? null : typeof v === 'string' ? Buffer.from(v) : v)
  return tx.enqueueOutbox(
    {
      topic: event.topic,
      key: bytes(event.key),
      value: bytes(event.value),
      headers: Object.entries(event.headers ?? {}).map(([name, value]) => [name, bytes(value)!] as const),
      partition: event.partition ?? null,
    },
    nowMs,
  )
}

export interface OutboxRelayOptions {
  readonly store: Store
  readonly bootstrap: string | readonly string[]
  /** Rows published per round (default 500). */
  readonly batchSize?: number
  /** The pause when there is nothing to publish (default 100 ms). */
  readonly pollIntervalMs?: number
  /** Prefix of the idempotency keys (default `outbox-`): make it unique per database. */
  readonly idempotencyKeyPrefix?: string
  readonly retry?: Partial<RetryPolicy>
  readonly clientId?: string
  readonly logger?: Logger
}

export class OutboxRelay {
  readonly #options: OutboxRelayOptions
  readonly #producer: TidewayProducer
  readonly #logger: Logger
  readonly #stopping = new AbortController()
  #loop: Promise<void> | null = null
  /** Rows published since start (a row published again after a crash counts again). */
  published = 0

  constructor(options: OutboxRelayOptions) {
    this.#options = options
    this.#logger = options.logger ?? silentLogger
    this.#producer = new TidewayProducer({
      bootstrap: options.bootstrap,
      delivery: 'exactly-once',
      clientId: options.clientId ?? 'tideway-outbox-relay',
      logger: this.#logger,
      ...(options.retry ? { retry: options.retry } : {}),
    })
  }

  /** Starts relaying in the background. */
  start(): void {
    this.#loop ??= this.#run()
  }

  /** Publishes every row committed so far (one round after another) and resolves with how many. */
  async drain(): Promise<number> {
    let total = 0
    for (;;) {
      const round = await this.#options.store.outbox.withRelayLock(() => this.#publishRound())
      if (!round) return total
      total += round
    }
  }

  async stop(): Promise<void> {
    this.#stopping.abort()
    await this.#loop
    await this.#producer.close()
  }

  async #run(): Promise<void> {
    const pause = this.#options.pollIntervalMs ?? 100
    while (!this.#stopping.signal.aborted) {
      let published: number | null = 0
      try {
        published = await this.#options.store.outbox.withRelayLock(() => this.#publishRound())
      } catch (err) {
        this.#logger.warn('outbox relay round failed; retrying', { err })
      }
      if (!published) await sleep(pause, this.#stopping.signal)
    }
  }

  /** Publishes one batch of pending rows, then marks them; returns how many. */
  async #publishRound(): Promise<number> {
    const rows = await this.#options.store.outbox.pending(this.#options.batchSize ?? 500)
    if (rows.length === 0) return 0
    for (const run of runsByTopic(rows)) {
      await this.#producer.sendBatch(run[0]!.topic, run.map((row) => this.#message(row)))
    }
    await this.#options.store.outbox.markPublished(rows.map((r) => r.id), Date.now())
    this.published += rows.length
    return rows.length
  }

  #message(row: OutboxRow): OutgoingMessage {
    return {
      key: row.key,
      value: row.value,
      headers: Object.fromEntries(row.headers),
      idempotencyKey: `${this.#options.idempotencyKeyPrefix ?? 'outbox-'}${row.id}`,
      ...(row.partition === null ? {} : { partition: row.partition }),
    }
  }
}

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  return new OutboxRelay(options)
}

/** Consecutive rows of one topic, in id order: each run is one send. */
function runsByTopic(rows: readonly OutboxRow[]): OutboxRow[][] {
  const runs: OutboxRow[][] = []
  for (const row of rows) {
    const last = runs.at(-1)
    if (last && last[0]!.topic === row.topic) last.push(row)
    else runs.push([row])
  }
  return runs
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true })
  })
}
