// What a partition remembers of each idempotent producer (research kafka-protocol.md §2.3):
// its epoch and its last 5 batches (first and last sequence, offsets). Pure: the partition log
// asks `check` before assigning offsets and calls `record` right after, in append order.
//
// - A batch equal to one of the last 5 (same epoch, first and last sequence) is a retry: it is
//   not stored again and is answered with the original's offsets (never DUPLICATE_SEQUENCE_NUMBER,
//   which KafkaJS treats as fatal). 5 because no client keeps more than 5 requests in flight
//   with idempotence on. Where the original's records fingerprint is known (a CRC-32C of the
//   records section, which a client's retry repeats byte for byte even when it stamps the batch
//   header with a new time), the retry must match it: a client that reused the sequence numbers
//   for other records (@platformatic/kafka can, when sends race with its recovery from an error)
//   gets OUT_OF_ORDER_SEQUENCE_NUMBER, takes a new producer id and sends again, instead of being
//   told its records are stored when they are not.
// - An older epoch is fenced (INVALID_PRODUCER_EPOCH). A newer epoch must start at sequence 0.
// - Within an epoch, each batch's first sequence follows the previous batch's last, wrapping
//   from 2^31-1 to 0; anything else is OUT_OF_ORDER_SEQUENCE_NUMBER.
// - A producer the partition does not know (new here, or its state expired) may start at any
//   sequence, as in Kafka since KIP-360.
// Producers idle for longer than the expiry (Kafka: producer.id.expiration.ms, 1 day) are
// forgotten; a retry after that is stored again.

import { TidewayError } from '../errors.ts'
import { lastOffsetOf, type BatchHeader } from '../protocol/record-batch.ts'

export const RETAINED_BATCHES = 5
const INT32_MAX = 0x7fffffff

export interface ProducerBatch {
  readonly firstSeq: number
  readonly lastSeq: number
  readonly baseOffset: bigint
  readonly lastOffset: bigint
  /** CRC-32C of the records section as the client sent it (appends made here; unknown for batches rebuilt from the log). */
  readonly fingerprint?: number
  /** The original append's outcome while it may still be in flight (a retry waits for it). */
  readonly outcome?: Promise<unknown>
}

interface ProducerEntry {
  epoch: number
  /** Oldest first, at most RETAINED_BATCHES. */
  batches: ProducerBatch[]
  lastWriteMs: number
}

export type SequenceVerdict = { readonly kind: 'append' } | { readonly kind: 'duplicate'; readonly batch: ProducerBatch }

/** `sequence + increment` as Kafka counts: past 2^31-1 it goes on from 0. */
export function incrementSequence(sequence: number, increment: number): number {
  return sequence > INT32_MAX - increment ? increment - (INT32_MAX - sequence) - 1 : sequence + increment
}

export function lastSequenceOf(header: Pick<BatchHeader, 'baseSequence' | 'lastOffsetDelta'>): number {
  return incrementSequence(header.baseSequence, header.lastOffsetDelta)
}

export class ProducerStateTable {
  readonly #producers = new Map<bigint, ProducerEntry>()

  get size(): number {
    return this.#producers.size
  }

  /** Whether `header` (from an idempotent producer) may be appended, is a retry, or is refused (throws). */
  check(header: BatchHeader, fingerprint?: number): SequenceVerdict {
    const entry = this.#producers.get(header.producerId)
    if (!entry) return { kind: 'append' }
    const firstSeq = header.baseSequence
    const lastSeq = lastSequenceOf(header)
    if (header.producerEpoch === entry.epoch) {
      const duplicate = entry.batches.find((b) => b.firstSeq === firstSeq && b.lastSeq === lastSeq)
      if (duplicate && duplicate.fingerprint !== undefined && fingerprint !== undefined && duplicate.fingerprint !== fingerprint) {
        throw new TidewayError(
          'TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE',
          `producer ${header.producerId} epoch ${entry.epoch}: sequences ${firstSeq}-${lastSeq} were already used for other records; take a new producer id`,
        )
      }
      if (duplicate) return { kind: 'duplicate', batch: duplicate }
    }
    if (header.producerEpoch < entry.epoch) {
      throw new TidewayError('TIDEWAY_ERR_PRODUCER_FENCED', `producer ${header.producerId} epoch ${header.producerEpoch} < current ${entry.epoch}`)
    }
    if (header.producerEpoch > entry.epoch) {
      if (firstSeq !== 0) {
        throw new TidewayError('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE', `producer ${header.producerId}: new epoch ${header.producerEpoch} must start at sequence 0, not ${firstSeq}`)
      }
      return { kind: 'append' }
    }
    const last = entry.batches.at(-1)
    const expected = last ? incrementSequence(last.lastSeq, 1) : firstSeq
    if (firstSeq !== expected) {
      throw new TidewayError('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE', `producer ${header.producerId} epoch ${entry.epoch}: expected sequence ${expected}, got ${firstSeq}`)
    }
    return { kind: 'append' }
  }

  /**
   * Remembers a batch that was given offsets (`header.baseOffset` is the assigned one; a retry is
   * answered with `answerOffset` instead when given).
   */
  record(header: BatchHeader, writeMs: number, outcome?: Promise<unknown>, answerOffset?: bigint, fingerprint?: number): void {
    let entry = this.#producers.get(header.producerId)
    if (!entry || header.producerEpoch > entry.epoch) {
      entry = { epoch: header.producerEpoch, batches: [], lastWriteMs: writeMs }
      this.#producers.set(header.producerId, entry)
    }
    entry.batches.push({
      firstSeq: header.baseSequence,
      lastSeq: lastSequenceOf(header),
      baseOffset: answerOffset ?? header.baseOffset,
      lastOffset: lastOffsetOf(header),
      ...(fingerprint === undefined ? {} : { fingerprint }),
      ...(outcome ? { outcome } : {}),
    })
    if (entry.batches.length > RETAINED_BATCHES) entry.batches.shift()
    entry.lastWriteMs = Math.max(entry.lastWriteMs, writeMs)
  }

  clear(): void {
    this.#producers.clear()
  }

  /** Every producer remembered, with its epoch, last sequence and last write (DescribeProducers). */
  list(): { producerId: bigint; epoch: number; lastSequence: number; lastWriteMs: number }[] {
    return [...this.#producers].map(([producerId, entry]) => ({
      producerId,
      epoch: entry.epoch,
      lastSequence: entry.batches.at(-1)?.lastSeq ?? -1,
      lastWriteMs: entry.lastWriteMs,
    }))
  }

  /** Forgets producers that have not written since `nowMs - idleMs`; returns how many. */
  expire(nowMs: number, idleMs: number): number {
    let removed = 0
    for (const [id, entry] of this.#producers) {
      if (nowMs - entry.lastWriteMs > idleMs) {
        this.#producers.delete(id)
        removed++
      }
    }
    return removed
  }

  /**
   * The state as of `asOf` (batches at or past it left out: they may not be durable yet), as
   * JSON for a snapshot file. Offsets and ids are decimal strings (int64).
   */
  toSnapshot(asOf: bigint): string {
    const producers: [string, number, ([number, number, string, string] | [number, number, string, string, number])[]][] = []
    for (const [id, entry] of this.#producers) {
      const batches = entry.batches.filter((b) => b.lastOffset < asOf)
      if (batches.length === 0) continue
      producers.push([
        id.toString(),
        entry.epoch,
        batches.map((b) => {
          const fields: [number, number, string, string] = [b.firstSeq, b.lastSeq, b.baseOffset.toString(), b.lastOffset.toString()]
          return b.fingerprint === undefined ? fields : [...fields, b.fingerprint]
        }),
      ])
    }
    return JSON.stringify({ version: 1, asOf: asOf.toString(), producers })
  }

  /**
   * Loads a snapshot made by `toSnapshot` into an empty table; returns the offset it was taken
   * at, or undefined (table untouched) when the text is not a valid snapshot.
   */
  restore(text: string, writeMs: number): bigint | undefined {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return undefined
    }
    const snapshot = parsed as { version?: unknown; asOf?: unknown; producers?: unknown }
    if (snapshot.version !== 1 || typeof snapshot.asOf !== 'string' || !/^\d+$/.test(snapshot.asOf) || !Array.isArray(snapshot.producers)) return undefined
    const entries = new Map<bigint, ProducerEntry>()
    const isInt = Number.isInteger
    for (const item of snapshot.producers as unknown[]) {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || !/^\d+$/.test(item[0]) || !isInt(item[1]) || !Array.isArray(item[2])) return undefined
      const batches: ProducerBatch[] = []
      for (const b of item[2] as unknown[]) {
        if (!Array.isArray(b) || !isInt(b[0]) || !isInt(b[1]) || typeof b[2] !== 'string' || typeof b[3] !== 'string') return undefined
        if (!/^\d+$/.test(b[2]) || !/^\d+$/.test(b[3])) return undefined
        if (b.length > 4 && !isInt(b[4])) return undefined
        batches.push({ firstSeq: b[0], lastSeq: b[1], baseOffset: BigInt(b[2]), lastOffset: BigInt(b[3]), ...(b.length > 4 ? { fingerprint: b[4] as number } : {}) })
      }
      entries.set(BigInt(item[0]), { epoch: item[1] as number, batches: batches.slice(-RETAINED_BATCHES), lastWriteMs: writeMs })
    }
    for (const [id, entry] of entries) this.#producers.set(id, entry)
    return BigInt(snapshot.asOf)
  }

  /** The state of one producer, for tests and DescribeProducers. */
  stateOf(producerId: bigint): { epoch: number; batches: readonly ProducerBatch[]; lastWriteMs: number } | undefined {
    return this.#producers.get(producerId)
  }
}
