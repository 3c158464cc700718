// The idempotency-key dedup window of one partition: which application keys it stored recently,
// and at which offset (seed 2: "Message broker will check if an event with the same ID is
// already in the logs, if it is, the event will be ignored"; NATS JetStream's Nats-Msg-Id and
// duplicate window are the model, research kafka-protocol.md §5). Pure: the partition log asks
// it about a batch's keys before assigning offsets and tells it what it stored, in offset order.
//
// A key is remembered while its original is both
// - younger than windowMs: by the broker's clock when it was stored, or, for keys rebuilt from
//   the log after a restart, by the record's own timestamp (the log keeps no broker time);
// - among the partition's last windowRecords offsets, which bounds memory and the rebuild.
// The key's scope is the partition: producers that share keys must send a key to one partition,
// as the record key and a common partitioner (murmur2, the Java default) do.
// Offsets are held as numbers, exact below 2^53 (285 years of a million records a second): this
// runs per record, and bigint arithmetic would double its cost.

import { createHash } from 'node:crypto'

export interface DedupLimits {
  readonly windowMs: number
  readonly windowRecords: number
}

interface Remembered {
  readonly offset: number
  readonly storedMs: number
}

/** Keys longer than this are remembered by their SHA-256 digest, so one entry stays small. */
const MAX_RAW_KEY_BYTES = 64

const DIGEST_PREFIX = 'sha256 of a key longer than 64 bytes:'

/**
 * The window's name for a header value; null for a record without a usable key (no header, a null
 * or empty value), which is never deduplicated. A key of at most 64 bytes is its bytes as latin1
 * (one character a byte); a longer one is a prefixed digest, longer than 64 characters, so the
 * two never collide.
 */
export function dedupKeyOf(value: Buffer | null | undefined): string | null {
  if (!value || value.length === 0) return null
  if (value.length <= MAX_RAW_KEY_BYTES) return value.toString('latin1')
  return DIGEST_PREFIX + createHash('sha256').update(value).digest('base64')
}

export class DedupWindow {
  /** Insertion order is offset order: the oldest entries are evicted from the front. */
  readonly #keys = new Map<string, Remembered>()
  #limits: DedupLimits

  constructor(limits: DedupLimits) {
    this.#limits = limits
  }

  get size(): number {
    return this.#keys.size
  }

  get limits(): DedupLimits {
    return this.#limits
  }

  set limits(limits: DedupLimits) {
    this.#limits = limits
  }

  /** The offset of the key's original if it is still inside the window, else undefined. */
  lookup(key: string, nowMs: number, logEndOffset: number): number | undefined {
    const entry = this.#keys.get(key)
    return entry && this.#inside(entry, nowMs, logEndOffset) ? entry.offset : undefined
  }

  /**
   * For each record of a batch about to be stored at `baseOffset` (its keys, null for none, in
   * offset-delta order `offsetDeltas`): the original's offset when the record is a duplicate,
   * else undefined. A key repeated inside the batch is a duplicate of its first occurrence.
   */
  classify(keys: readonly (string | null)[], offsetDeltas: readonly number[], baseOffset: number, nowMs: number, logEndOffset: number): (number | undefined)[] {
    const inBatch = new Map<string, number>()
    return keys.map((key, i) => {
      if (key === null) return undefined
      const original = inBatch.get(key) ?? this.lookup(key, nowMs, logEndOffset)
      if (original === undefined) inBatch.set(key, baseOffset + offsetDeltas[i]!)
      return original
    })
  }

  /** Remembers a stored key. Calls come in offset order; a key stored again moves to the back. */
  remember(key: string, offset: number, storedMs: number): void {
    this.#keys.delete(key)
    this.#keys.set(key, { offset, storedMs })
  }

  /** Forgets keys that left the window, oldest first; returns how many. */
  evict(nowMs: number, logEndOffset: number): number {
    let removed = 0
    for (const [key, entry] of this.#keys) {
      if (this.#inside(entry, nowMs, logEndOffset)) break
      this.#keys.delete(key)
      removed++
    }
    return removed
  }

  clear(): void {
    this.#keys.clear()
  }

  /** The oldest offset the window can still hold at this log end. */
  firstOffsetInWindow(logEndOffset: number): number {
    return logEndOffset - this.#limits.windowRecords
  }

  #inside(entry: Remembered, nowMs: number, logEndOffset: number): boolean {
    return nowMs - entry.storedMs <= this.#limits.windowMs && entry.offset >= this.firstOffsetInWindow(logEndOffset)
  }
}
