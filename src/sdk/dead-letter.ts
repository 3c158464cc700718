// Dead-letter topics: where a record goes when its handler will not succeed (a permanent failure,
// or a transient one after every attempt), with its provenance in headers so that a person or
// `tideway dlq` can see why and send it back (research frameworks.md finding 3: Watermill's
// PoisonQueue and pg-boss's deadLetter stamp where a message came from and why it failed).
//
// The record is copied as it was (key, value, headers) with these headers added:
//   tideway-dlt-source-topic, tideway-dlt-source-partition, tideway-dlt-source-offset
//   tideway-dlt-group           the consumer group that gave up
//   tideway-dlt-error-class     transient | permanent
//   tideway-dlt-error           the last error's message
//   tideway-dlt-attempts        how many attempts were made
//   tideway-dlt-first-failure, tideway-dlt-last-failure   ISO 8601 times
//   tideway-dlt-idempotency-key the record's own idempotency key, if it had one (redrive restores it)
// and an idempotency key `dlt:<group>:<topic>:<partition>:<offset>`, so that a record
// dead-lettered again after a crash is stored once on a Tideway topic with dedup.

import { silentLogger, type Logger } from '../logger.ts'
import { messageOf } from './failures.ts'
import { TidewayProducer } from './producer.ts'
import type { RetriesExhausted } from './retry.ts'
import type { IncomingMessage } from './consumer.ts'

export interface DeadLetterOptions {
  /** The dead-letter topic for a source topic (default `<topic>.dlt`). */
  readonly topic?: string | ((sourceTopic: string) => string)
}

export const DLT_HEADER_PREFIX = 'tideway-dlt-'
export const DltHeader = {
  sourceTopic: 'tideway-dlt-source-topic',
  sourcePartition: 'tideway-dlt-source-partition',
  sourceOffset: 'tideway-dlt-source-offset',
  group: 'tideway-dlt-group',
  errorClass: 'tideway-dlt-error-class',
  error: 'tideway-dlt-error',
  attempts: 'tideway-dlt-attempts',
  firstFailure: 'tideway-dlt-first-failure',
  lastFailure: 'tideway-dlt-last-failure',
  idempotencyKey: 'tideway-dlt-idempotency-key',
} as const

/** Bounds a stored error message, so a huge stack cannot make the record too large. */
const MAX_ERROR_CHARS = 2_000

export function deadLetterTopicOf(options: DeadLetterOptions, sourceTopic: string): string {
  const { topic } = options
  if (typeof topic === 'function') return topic(sourceTopic)
  return topic ?? `${sourceTopic}.dlt`
}

export class DeadLetterPublisher {
  readonly #producer: TidewayProducer
  readonly #options: DeadLetterOptions
  readonly #groupId: string

  constructor(options: DeadLetterOptions & { bootstrap: readonly string[]; groupId: string; logger?: Logger }) {
    this.#options = options
    this.#groupId = options.groupId
    this.#producer = new TidewayProducer({
      bootstrap: options.bootstrap,
      delivery: 'at-least-once',
      clientId: `tideway-${options.groupId}-dlt`,
      // A dead-letter topic is created on first use, with the cluster's defaults.
      autocreateTopics: true,
      logger: options.logger ?? silentLogger,
    })
  }

  async publish(message: IncomingMessage, failure: RetriesExhausted): Promise<void> {
    const headers: Record<string, string | Buffer> = {}
    for (const [name, value] of message.headers) if (!name.startsWith(DLT_HEADER_PREFIX)) headers[name] = value
    Object.assign(headers, {
      [DltHeader.sourceTopic]: message.topic,
      [DltHeader.sourcePartition]: String(message.partition),
      [DltHeader.sourceOffset]: String(message.offset),
      [DltHeader.group]: this.#groupId,
      [DltHeader.errorClass]: failure.kind,
      [DltHeader.error]: messageOf(failure.cause).slice(0, MAX_ERROR_CHARS),
      [DltHeader.attempts]: String(failure.attempts),
      [DltHeader.firstFailure]: new Date(failure.firstFailureAt).toISOString(),
      [DltHeader.lastFailure]: new Date(failure.lastFailureAt).toISOString(),
      ...(message.idempotencyKey !== null ? { [DltHeader.idempotencyKey]: message.idempotencyKey } : {}),
    })
    await this.#producer.send(deadLetterTopicOf(this.#options, message.topic), {
      key: message.key,
      value: message.value,
      headers,
      idempotencyKey: `dlt:${this.#groupId}:${message.topic}:${message.partition}:${message.offset}`,
    })
  }

  close(): Promise<void> {
    return this.#producer.close()
  }
}
