// The second retry tier (research frameworks.md finding 2): in-place retries hold the partition,
// so after them a transient failure releases the record to a retry topic and the partition moves
// on. The consumer also reads the retry topic and handles each copy once its delay has passed
// (`tideway-retry-not-before`); a copy that fails again goes back with the next delay, and after
// the last delay to the dead-letter topic. This trades the record's order for liveness, which is
// why it is opt-in per consumer.

import { silentLogger, type Logger } from '../logger.ts'
import { CopyHeader, copyHeaders } from './copies.ts'
import { TidewayProducer } from './producer.ts'
import type { IncomingMessage } from './consumer.ts'
import type { RetriesExhausted } from './retry.ts'

export interface RetryTopicOptions {
  /** The retry topic of a source topic (default `<topic>.retry`). */
  readonly topic?: string | ((sourceTopic: string) => string)
  /** The delay before each pass through the retry topic (default 5 s, then 30 s). */
  readonly delaysMs?: readonly number[]
}

export function retryTopicOf(options: RetryTopicOptions, sourceTopic: string): string {
  const { topic } = options
  if (typeof topic === 'function') return topic(sourceTopic)
  return topic ?? `${sourceTopic}.retry`
}

export class RetryTopicPublisher {
  readonly delaysMs: readonly number[]
  readonly #options: RetryTopicOptions
  readonly #producer: TidewayProducer
  readonly #groupId: string
  readonly #idempotencyHeader: string

  constructor(options: RetryTopicOptions & { bootstrap: readonly string[]; groupId: string; idempotencyHeader: string; logger?: Logger }) {
    this.#options = options
    this.delaysMs = options.delaysMs ?? [5_000, 30_000]
    if (this.delaysMs.length === 0 || this.delaysMs.some((d) => !(d >= 0))) throw new RangeError('retryTopic.delaysMs needs one or more delays >= 0')
    this.#groupId = options.groupId
    this.#idempotencyHeader = options.idempotencyHeader
    this.#producer = new TidewayProducer({
      bootstrap: options.bootstrap,
      delivery: 'at-least-once',
      clientId: `tideway-${options.groupId}-retry`,
      idempotencyHeader: options.idempotencyHeader,
      autocreateTopics: true,
      logger: options.logger ?? silentLogger,
    })
  }

  /** The topics a consumer of `sourceTopics` also reads. */
  topicsFor(sourceTopics: readonly string[]): string[] {
    return sourceTopics.map((t) => retryTopicOf(this.#options, t))
  }

  async publish(message: IncomingMessage<unknown>, failure: RetriesExhausted): Promise<void> {
    const count = message.retryCount + 1
    const headers = copyHeaders(message.headers, this.#idempotencyHeader, message.idempotencyKey, {
      [CopyHeader.retrySourceTopic]: message.origin.topic,
      [CopyHeader.retrySourcePartition]: String(message.origin.partition),
      [CopyHeader.retrySourceOffset]: String(message.origin.offset),
      [CopyHeader.retryCount]: String(count),
      [CopyHeader.retryNotBefore]: String(Date.now() + this.delaysMs[count - 1]!),
      [CopyHeader.dltError]: String(failure.cause instanceof Error ? failure.cause.message : failure.cause).slice(0, 2_000),
    })
    // Copies of one record keep its key, so they stay in order with each other.
    await this.#producer.send(retryTopicOf(this.#options, message.origin.topic), {
      key: message.key,
      value: message.value,
      headers,
      idempotencyKey: `retry:${this.#groupId}:${message.origin.topic}:${message.origin.partition}:${message.origin.offset}:${count}`,
    })
  }

  close(): Promise<void> {
    return this.#producer.close()
  }
}
