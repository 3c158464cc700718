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
  readonly key: string
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

export interface Admitted {
  readonly originals: readonly (number | undefined)[]
  undo(): void
}

export class DedupWindow {
  readonly #keys = new Map<string, Remembered>()
  /**
   * Every entry in the order it was remembered, which is offset order, oldest first from #head:
   * eviction walks this queue rather than the Map, whose iteration from the front slows down
   * with every deletion there. An entry the Map no longer points to (its key was stored again,
   * or undone) is skipped.
   */
  #order: Remembered[] = []
  #head = 0
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
   * Admits a batch about to be stored at `baseOffset`, given each record's key (null for none) and
   * offset delta: for each record, the original's offset when it is a duplicate, else undefined.
   * Every new key is remembered at once, at its offset, so a key repeated inside the batch is a
   * duplicate of its first occurrence. `undo()` forgets what this call remembered, for a batch
   * that is not stored after all.
   */
  admit(keys: readonly (string | null)[], offsetDeltas: readonly number[], baseOffset: number, nowMs: number, logEndOffset: number): Admitted {
    const originals = new Array<number | undefined>(keys.length).fill(undefined)
    const added: string[] = []
    let replaced: Map<string, Remembered> | undefined
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (key === null || key === undefined) continue
      const entry = this.#keys.get(key)
      if (entry && this.#inside(entry, nowMs, logEndOffset)) {
        originals[i] = entry.offset
        continue
      }
      // Outside the window: stored again, remembered anew like any new key.
      if (entry) (replaced ??= new Map()).set(key, entry)
      this.#add({ key, offset: baseOffset + offsetDeltas[i]!, storedMs: nowMs })
      added.push(key)
    }
    const undo = () => {
      for (const key of added) {
        this.#keys.delete(key)
        const previous = replaced?.get(key)
        if (previous) this.#keys.set(key, previous)
      }
    }
    return { originals, undo }
  }

  /** Remembers a stored key (rebuilding from the log). Calls come in offset order. */
  remember(key: string, offset: number, storedMs: number): void {
    this.#add({ key, offset, storedMs })
  }

  /** Forgets keys that left the window, oldest first; returns how many. */
  evict(nowMs: number, logEndOffset: number): number {
    let removed = 0
    const order = this.#order
    let head = this.#head
    while (head < order.length) {
      const entry = order[head]!
      if (this.#inside(entry, nowMs, logEndOffset)) break
      if (this.#keys.get(entry.key) === entry) {
        this.#keys.delete(entry.key)
        removed++
      }
      head++
    }
    this.#head = head
    if (head > 4096 && head * 2 > order.length) {
      this.#order = order.slice(head)
      this.#head = 0
    }
    return removed
  }

  clear(): void {
    this.#keys.clear()
    this.#order = []
    this.#head = 0
  }

  #add(entry: Remembered): void {
    this.#keys.set(entry.key, entry)
    this.#order.push(entry)
  }

  /** The oldest offset the window can still hold at this log end. */
  firstOffsetInWindow(logEndOffset: number): number {
    return logEndOffset - this.#limits.windowRecords
  }

  #inside(entry: Remembered, nowMs: number, logEndOffset: number): boolean {
    return nowMs - entry.storedMs <= this.#limits.windowMs && entry.offset >= this.firstOffsetInWindow(logEndOffset)
  }
}
