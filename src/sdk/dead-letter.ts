// Dead-letter topics: where a record goes when its handler will not succeed (a permanent failure,
// or a transient one after every attempt), with its provenance in headers so that a person or
// `tideway dlq` can see why and send it back (research frameworks.md finding 3: Watermill's
// PoisonQueue and pg-boss's deadLetter stamp where a message came from and why it failed). The
// headers are listed in copies.ts: source topic, partition and offset, the group, the error
// class and message, the attempts, the first and last failure times.
//
// Policies for records with a key (research frameworks.md finding 4; Axon's sequenced dead-letter
// queue): `skip` dead-letters the record and goes on with the next; `park-key` also parks its key
// in the store, so every later record of that key in the partition is dead-lettered behind it
// (error class `parked`, not attempted) and per-key order holds, while other keys flow. A
// redrive (`tideway dlq redrive`) sends the records back in order; they pass the parking, and
// after the last one of a key is handled the key is unparked. If a redriven record fails again,
// the key stays parked and the rest of that redrive is parked behind it.

import { silentLogger, type Logger } from '../logger.ts'
import { CopyHeader, copyHeaders } from './copies.ts'
import { messageOf } from './failures.ts'
import { TidewayProducer } from './producer.ts'
import type { IncomingMessage } from './consumer.ts'

export interface DeadLetterOptions {
  /** The dead-letter topic for a source topic (default `<topic>.dlt`). */
  readonly topic?: string | ((sourceTopic: string) => string)
  /** For records with a key: `skip` (default) or `park-key` (needs a store). */
  readonly policy?: 'skip' | 'park-key'
}

/** Bounds a stored error message, so a huge stack cannot make the record too large. */
const MAX_ERROR_CHARS = 2_000

export function deadLetterTopicOf(options: DeadLetterOptions, sourceTopic: string): string {
  const { topic } = options
  if (typeof topic === 'function') return topic(sourceTopic)
  return topic ?? `${sourceTopic}.dlt`
}

export interface DeadLetterReason {
  readonly errorClass: 'transient' | 'permanent' | 'parked'
  readonly error: unknown
  readonly attempts: number
  readonly firstFailureAt: number
  readonly lastFailureAt: number
}

export class DeadLetterPublisher {
  readonly #producer: TidewayProducer
  readonly #options: DeadLetterOptions
  readonly #groupId: string
  readonly #idempotencyHeader: string

  constructor(options: DeadLetterOptions & { bootstrap: readonly string[]; groupId: string; idempotencyHeader: string; logger?: Logger }) {
    this.#options = options
    this.#groupId = options.groupId
    this.#idempotencyHeader = options.idempotencyHeader
    this.#producer = new TidewayProducer({
      bootstrap: options.bootstrap,
      delivery: 'at-least-once',
      clientId: `tideway-${options.groupId}-dlt`,
      idempotencyHeader: options.idempotencyHeader,
      // A dead-letter topic is created on first use, with the cluster's defaults.
      autocreateTopics: true,
      logger: options.logger ?? silentLogger,
    })
  }

  get policy(): 'skip' | 'park-key' {
    return this.#options.policy ?? 'skip'
  }

  async publish(message: IncomingMessage<unknown>, reason: DeadLetterReason): Promise<void> {
    const headers = copyHeaders(message.headers, this.#idempotencyHeader, message.idempotencyKey, {
      [CopyHeader.dltSourceTopic]: message.topic,
      [CopyHeader.dltSourcePartition]: String(message.partition),
      [CopyHeader.dltSourceOffset]: String(message.offset),
      [CopyHeader.dltGroup]: this.#groupId,
      [CopyHeader.dltErrorClass]: reason.errorClass,
      [CopyHeader.dltError]: messageOf(reason.error).slice(0, MAX_ERROR_CHARS),
      [CopyHeader.dltAttempts]: String(reason.attempts),
      [CopyHeader.dltFirstFailure]: new Date(reason.firstFailureAt).toISOString(),
      [CopyHeader.dltLastFailure]: new Date(reason.lastFailureAt).toISOString(),
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
