// The three delivery modes as one word, and what each one means for a producer and a consumer
// (architecture.md, "The SDK's contract, per delivery mode"; seeds 1 and 2). This table is the one
// place the modes are defined: the producer and the consumer read their behaviour from it, and
// the README's table says the same.
//
//   mode           producer                                consumer                               a crash can
//   at-most-once   one attempt, acks=1, no retry           commit, then handle                    lose, never repeat
//   at-least-once  idempotent producer, retried until      handle, then commit                    repeat, never lose
//                  acked within a deadline
//   exactly-once   as at-least-once, and an idempotency    dedup row + the handler's writes +     neither: each effect
//                  key on every record                     the offset in ONE database transaction  is applied once

export const DeliveryMode = { atMostOnce: 'at-most-once', atLeastOnce: 'at-least-once', exactlyOnce: 'exactly-once' } as const
export type DeliveryMode = (typeof DeliveryMode)[keyof typeof DeliveryMode]

export interface ProducerContract {
  /** Kafka acks: 1 (the leader stored it) or -1 (all in-sync replicas; on Tideway, fsynced). */
  readonly acks: 1 | -1
  readonly idempotent: boolean
  /** Whether a failed send is attempted again under the retry policy. */
  readonly retries: boolean
  /** Whether every record must carry an idempotency key. */
  readonly requiresIdempotencyKey: boolean
}

export interface ConsumerContract {
  /** Whether the offset is committed before the handler runs (at-most-once) or after it. */
  readonly commitBeforeHandling: boolean
  /** Whether a failed handler is retried and then dead-lettered, or the message is dropped. */
  readonly retries: boolean
  /** Whether handling runs in a store transaction with the dedup row and the offset. */
  readonly transactional: boolean
}

export const producerContract: Readonly<Record<DeliveryMode, ProducerContract>> = {
  'at-most-once': { acks: 1, idempotent: false, retries: false, requiresIdempotencyKey: false },
  'at-least-once': { acks: -1, idempotent: true, retries: true, requiresIdempotencyKey: false },
  'exactly-once': { acks: -1, idempotent: true, retries: true, requiresIdempotencyKey: true },
}

export const consumerContract: Readonly<Record<DeliveryMode, ConsumerContract>> = {
  'at-most-once': { commitBeforeHandling: true, retries: false, transactional: false },
  'at-least-once': { commitBeforeHandling: false, retries: true, transactional: false },
  'exactly-once': { commitBeforeHandling: false, retries: true, transactional: true },
}

export function assertDeliveryMode(value: unknown): asserts value is DeliveryMode {
  if (value !== 'at-most-once' && value !== 'at-least-once' && value !== 'exactly-once') {
    throw new TypeError(`delivery must be 'at-most-once', 'at-least-once' or 'exactly-once', got ${JSON.stringify(value)}`)
  }
}

/** The record header carrying the idempotency key (Tideway's tideway.dedup.header default). */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key'
