// A producer with its delivery guarantee as one word (delivery.ts). It speaks the Kafka protocol
// through @platformatic/kafka and nothing else, so it runs unchanged against Tideway, Kafka or
// Redpanda.
//
//   at-most-once   acks=1, one attempt: a send that fails is reported and never repeated.
//   at-least-once  an idempotent producer (the client's own retries of one batch are stored once)
//                  with acks=-1, and the whole send attempted again under the retry policy until
//                  acknowledged or the deadline passes; a send attempted again after an unknown
//                  outcome may be stored twice, which consumers must tolerate.
//   exactly-once   at-least-once, and every record carries an idempotency key (a business id: an
//                  order id, an outbox row id) in the `idempotency-key` header, so a repeat is
//                  recognised: by Tideway when the topic has tideway.dedup.enable, and by the
//                  exactly-once consumer's inbox on any cluster.
//
// When an idempotent send fails, the client drops its producer id and takes a new one on the next
// attempt, so a retry can never be mistaken for the batch before it and dropped.

import { Producer, ProduceAcks } from '@platformatic/kafka'
import { silentLogger, type Logger } from '../logger.ts'
import { DeliveryMode, IDEMPOTENCY_KEY_HEADER, assertDeliveryMode, producerContract } from './delivery.ts'
import { PermanentFailure, TransientFailure } from './failures.ts'
import { retryPolicy, withRetry, type RetryOptions, type RetryPolicy } from './retry.ts'
import { TRACEPARENT_HEADER, TRACESTATE_HEADER } from './trace.ts'

export interface ProducerOptions {
  /** `host:port` of one or more brokers of the cluster. */
  readonly bootstrap: string | readonly string[]
  readonly delivery: DeliveryMode
  readonly clientId?: string
  /** at-least-once and exactly-once: how sends are retried (default: 5 attempts within 2 minutes). */
  readonly retry?: Partial<RetryPolicy>
  /** The header that carries idempotency keys (default `idempotency-key`, Tideway's default too). */
  readonly idempotencyHeader?: string
  /** Per-request timeout of the underlying client, in ms (default 5000). */
  readonly requestTimeoutMs?: number
  readonly compression?: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'
  /** Ask the cluster to create a missing topic (with its defaults) instead of failing (default false). */
  readonly autocreateTopics?: boolean
  readonly logger?: Logger
  /** Tests: the retry loop's time and randomness. */
  readonly retryOptions?: Pick<RetryOptions, 'scheduler' | 'random'>
}

export interface OutgoingMessage {
  readonly key?: string | Buffer | null
  readonly value: string | Buffer | null
  readonly headers?: Readonly<Record<string, string | Buffer>>
  /** A partition of your choosing; by default murmur2 of the key (Java's partitioner). */
  readonly partition?: number
  /** Required in exactly-once mode: what makes a repeat of this message recognisable. */
  readonly idempotencyKey?: string
  /** W3C trace context to carry (a handler passes on `ctx.traceparent`); see trace.ts. */
  readonly traceparent?: string
  readonly tracestate?: string
}

export interface SentMessage {
  readonly topic: string
  readonly partition: number
  /** The offset the broker answered: for a repeat on a Tideway dedup topic, the original's. */
  readonly offset: bigint
}

export class TidewayProducer {
  readonly delivery: DeliveryMode
  readonly #client: Producer<Buffer, Buffer, Buffer, Buffer>
  readonly #policy: RetryPolicy
  readonly #header: string
  readonly #logger: Logger
  readonly #retryOptions: Pick<RetryOptions, 'scheduler' | 'random'>
  readonly #closing = new AbortController()

  constructor(options: ProducerOptions) {
    assertDeliveryMode(options.delivery)
    this.delivery = options.delivery
    const contract = producerContract[options.delivery]
    this.#policy = contract.retries ? retryPolicy(options.retry) : retryPolicy({ attempts: 1 })
    this.#header = options.idempotencyHeader ?? IDEMPOTENCY_KEY_HEADER
    this.#logger = options.logger ?? silentLogger
    this.#retryOptions = options.retryOptions ?? {}
    this.#client = new Producer({
      clientId: options.clientId ?? 'tideway-producer',
      bootstrapBrokers: typeof options.bootstrap === 'string' ? [options.bootstrap] : [...options.bootstrap],
      acks: contract.acks === 1 ? ProduceAcks.LEADER : ProduceAcks.ALL,
      idempotent: contract.idempotent,
      // at-most-once: not even the client's own retry of a request, which could store it twice.
      retries: contract.retries ? 3 : 0,
      timeout: options.requestTimeoutMs ?? 5_000,
      autocreateTopics: options.autocreateTopics ?? false,
      ...(options.compression && options.compression !== 'none' ? { compression: options.compression } : {}),
    })
  }

  /** Sends one message and resolves with where it was stored once the broker acknowledged it. */
  async send(topic: string, message: OutgoingMessage): Promise<SentMessage> {
    const [sent] = await this.sendBatch(topic, [message])
    return sent!
  }

  /**
   * Sends messages in one request per partition, retried as a whole under the delivery mode.
   * Resolves with the first offset each partition received, in partition order.
   */
  async sendBatch(topic: string, messages: readonly OutgoingMessage[]): Promise<SentMessage[]> {
    if (messages.length === 0) return []
    const records = messages.map((m, i) => this.#record(topic, m, i))
    try {
      return await withRetry(
        this.#policy,
        async () => {
          const result = await this.#client.send({ messages: records })
          const offsets = (result.offsets ?? []).map((o) => ({ topic: o.topic, partition: o.partition, offset: BigInt(o.offset) }))
          return offsets.sort((a, b) => a.partition - b.partition)
        },
        {
          ...this.#retryOptions,
          signal: this.#closing.signal,
          // The client classifies its own errors: retriable Kafka codes and lost connections can
          // succeed on another attempt; anything else (a message too large, a bad topic) cannot.
          classify: (err) => (isRetriable(err) ? 'transient' : 'permanent'),
          onRetry: ({ attempt, delayMs, error }) => this.#logger.warn('send failed; retrying', { topic, attempt, delayMs, err: error }),
        },
      )
    } catch (err) {
      throw err instanceof Error && 'cause' in err && err.name === 'RetriesExhausted' ? (err.cause as Error) : err
    }
  }

  /** Stops retries under way and closes the connections. */
  async close(): Promise<void> {
    this.#closing.abort(new Error('the producer was closed'))
    await this.#client.close()
  }

  #record(topic: string, message: OutgoingMessage, index: number) {
    const headers = new Map<Buffer, Buffer>()
    for (const [name, value] of Object.entries(message.headers ?? {})) headers.set(Buffer.from(name), toBuffer(value)!)
    if (message.traceparent) headers.set(Buffer.from(TRACEPARENT_HEADER), Buffer.from(message.traceparent))
    if (message.tracestate) headers.set(Buffer.from(TRACESTATE_HEADER), Buffer.from(message.tracestate))
    if (message.idempotencyKey !== undefined) {
      if (typeof message.idempotencyKey !== 'string' || message.idempotencyKey.length === 0) {
        throw new TypeError(`message ${index}: idempotencyKey must be a non-empty string`)
      }
      headers.set(Buffer.from(this.#header), Buffer.from(message.idempotencyKey))
    } else if (producerContract[this.delivery].requiresIdempotencyKey) {
      throw new TypeError(
        `message ${index}: exactly-once delivery needs an idempotencyKey on every message (a business id such as an order id or an outbox row id)`,
      )
    }
    return {
      topic,
      key: toBuffer(message.key) ?? undefined,
      value: toBuffer(message.value) ?? undefined,
      headers,
      ...(message.partition === undefined ? {} : { partition: message.partition }),
    }
  }
}

export function createProducer(options: ProducerOptions): TidewayProducer {
  return new TidewayProducer(options)
}

function toBuffer(value: string | Buffer | null | undefined): Buffer | null {
  if (value === null || value === undefined) return null
  return typeof value === 'string' ? Buffer.from(value) : value
}

/** platformatic marks errors that another attempt may cure (network errors, retriable Kafka codes). */
function isRetriable(err: unknown): boolean {
  if (err instanceof TransientFailure) return true
  if (err instanceof PermanentFailure) return false
  const seen = new Set<unknown>()
  const visit = (e: unknown): boolean => {
    if (!e || typeof e !== 'object' || seen.has(e)) return false
    seen.add(e)
    const fields = e as { canRetry?: unknown; code?: unknown; errors?: unknown[]; cause?: unknown }
    if (fields.canRetry === true) return true
    if (typeof fields.code === 'string' && /NETWORK|TIMEOUT|ECONNREFUSED|ECONNRESET|EPIPE/.test(fields.code)) return true
    return (Array.isArray(fields.errors) && fields.errors.some(visit)) || visit(fields.cause)
  }
  return visit(err)
}
