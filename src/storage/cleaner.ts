// What log compaction keeps (cleanup.policy=compact; Kafka's LogCleaner is the model). Pure
// apart from the codecs' async inflate: the I/O that rewrites segments is compaction.ts.
//
// The keep rule, for the records below the cleaning point (the sealed segments old enough for
// min.compaction.lag.ms; never the active segment):
// - a record whose key has a later record below the cleaning point is removed: the last record
//   of each key wins, judged by offset;
// - the last record of a key stays, unless it is a tombstone (null value) whose timestamp is
//   before now - delete.retention.ms: then it goes too, with every older record of its key;
// - a record without a key goes (Kafka's cleaner does the same; produce refuses such records on
//   a compacted topic, so only a topic switched to compact holds them);
// - control batches (dedup and compaction markers) hold no data and go, unless they must stay.
// A batch keeps its offset range whatever happens to its records (consumers step over the
// holes, records.ts). A batch with no record left disappears, unless it must stay: it is one of
// its idempotent producer's last batches (so producer state rebuilt from batch headers still
// recognises retries and sequences), or it ends a cleaned group of segments (so the group's
// offset range is visible in the cleaned file, which recovery relies on, compaction.ts); then a
// marker takes its place: a control batch with the same offset range and producer fields.
//
// Offsets are numbers here, exact below 2^53, as in the dedup window: this runs per record.

import { isControlBatch, type BatchHeader } from '../protocol/record-batch.ts'
import { openProducedRecords, openRecords, type RecordView } from '../protocol/records.ts'
import { Reader } from '../protocol/primitives.ts'
import { dedupKeyOf } from './dedup-window.ts'

export interface CompactionConfig {
  /** A record stays at least this long after its timestamp (min.compaction.lag.ms). */
  minLagMs: number
  /** A tombstone stays this long after its timestamp (delete.retention.ms). */
  deleteRetentionMs: number
}

/** One record of a batch being cleaned. */
export interface CleanedRecord {
  readonly view: RecordView
  readonly offset: number
  readonly timestamp: number
  /** The key's name in the offset map (keyName), null without a key. */
  readonly key: string | null
  readonly tombstone: boolean
}

/**
 * The offset map's name for a key: named as the dedup window names its keys (a long key by its
 * digest, so an entry stays small), and the empty key, which is a key here, as ''.
 */
export function keyName(key: Buffer): string {
  return key.length === 0 ? '' : dedupKeyOf(key)!
}

/** A record's key (null when absent) and whether its value is null, read from the record's bytes. */
export function keyAndValueOf(record: RecordView): { key: Buffer | null; valueIsNull: boolean } {
  const reader = new Reader(record.bytes)
  reader.varint() // length
  reader.int8() // attributes
  reader.varlong() // timestamp delta
  reader.varint() // offset delta
  const keyLength = reader.varint()
  let key: Buffer | null = null
  if (keyLength >= 0) {
    reader.need(keyLength, 'record key')
    key = record.bytes.subarray(reader.pos, reader.pos + keyLength)
    reader.pos += keyLength
  }
  return { key, valueIsNull: reader.varint() < 0 }
}

/**
 * Whether a producer's batch holds a record without a key, which a compacted topic refuses
 * (Kafka: INVALID_RECORD, "Compacted topic cannot accept message without key"). Records that do
 * not open throw TIDEWAY_ERR_INVALID_RECORD.
 */
export async function hasRecordWithoutKey(batch: Buffer, header: BatchHeader): Promise<boolean> {
  return (await openProducedRecords(batch, header)).some((record) => keyAndValueOf(record).key === null)
}

/** Opens a batch for cleaning; null for a control batch, whose records are not data. */
export async function recordsForCleaning(batch: Buffer, header: BatchHeader): Promise<CleanedRecord[] | null> {
  if (isControlBatch(header.attributes)) return null
  const base = Number(header.baseOffset)
  const baseTimestamp = Number(header.baseTimestamp)
  return (await openRecords(batch, header)).map((view) => {
    const { key, valueIsNull } = keyAndValueOf(view)
    return {
      view,
      offset: base + view.offsetDelta,
      timestamp: baseTimestamp + Number(view.timestampDelta),
      key: key === null ? null : keyName(key),
      tombstone: valueIsNull,
    }
  })
}

/** The offset of each key's last record seen so far (Kafka's OffsetMap, unbounded here). */
export class LatestOffsets {
  readonly #latest = new Map<string, number>()

  get size(): number {
    return this.#latest.size
  }

  observe(records: readonly CleanedRecord[]): void {
    for (const r of records) {
      if (r.key === null) continue
      const known = this.#latest.get(r.key)
      if (known === undefined || r.offset > known) this.#latest.set(r.key, r.offset)
    }
  }

  get(key: string): number | undefined {
    return this.#latest.get(key)
  }
}

export type BatchPlan =
  /** Every record stays: the batch is written as it is. */
  | { readonly kind: 'copy' }
  /** Some records stay: the batch is rebuilt with them (same offset range, codec and producer fields). */
  | { readonly kind: 'rewrite'; readonly kept: readonly RecordView[] }
  /** Nothing stays but the batch must: a marker takes its place. */
  | { readonly kind: 'marker' }
  | { readonly kind: 'drop' }

/**
 * Whether one record survives: it is its key's last record (or its key is unknown to the map,
 * which holds only the dirty part of the log: a record of the already-cleaned part whose key
 * was not written since is still its key's last), and not an expired tombstone.
 */
export function keepsRecord(record: CleanedRecord, latest: LatestOffsets, tombstonesBeforeMs: number): boolean {
  if (record.key === null) return false
  const last = latest.get(record.key)
  if (last !== undefined && last > record.offset) return false
  return !record.tombstone || record.timestamp >= tombstonesBeforeMs
}

/**
 * What becomes of one batch. `records` is null for a control batch; `mustStay` says the batch
 * may not disappear (see the module header).
 */
export function planBatch(
  records: readonly CleanedRecord[] | null,
  latest: LatestOffsets,
  tombstonesBeforeMs: number,
  mustStay: boolean,
): BatchPlan {
  if (records === null) return mustStay ? { kind: 'copy' } : { kind: 'drop' }
  const kept = records.filter((r) => keepsRecord(r, latest, tombstonesBeforeMs))
  if (kept.length === records.length) return { kind: 'copy' }
  if (kept.length > 0) return { kind: 'rewrite', kept: kept.map((r) => r.view) }
  return mustStay ? { kind: 'marker' } : { kind: 'drop' }
}

/** The earliest time a kept tombstone becomes removable (Infinity when none is kept). */
export function nextTombstoneExpiry(records: readonly CleanedRecord[] | null, latest: LatestOffsets, tombstonesBeforeMs: number, deleteRetentionMs: number): number {
  let next = Infinity
  for (const r of records ?? []) {
    if (r.tombstone && keepsRecord(r, latest, tombstonesBeforeMs)) next = Math.min(next, r.timestamp + deleteRetentionMs)
  }
  return next
}

export interface SegmentExtent {
  readonly baseOffset: bigint
  readonly size: number
  /** The offset after the segment's last batch. */
  readonly nextOffset: bigint
}

/**
 * Splits consecutive segments into groups, each rewritten into one cleaned segment: a group's
 * bytes before cleaning are at most `maxBytes` (segment.bytes; a bigger segment is a group of
 * its own), and its offsets fit one segment's relative index. Groups start and end with a
 * non-empty segment (an empty one inside a group goes with it; one at the end is left alone),
 * so a cleaned group always ends exactly where its last segment did (compaction.ts).
 * Returns index ranges [from, to) into `segments`.
 */
export function groupSegments(segments: readonly SegmentExtent[], maxBytes: number, maxRelativeOffset: number): [number, number][] {
  const groups: [number, number][] = []
  let i = 0
  while (i < segments.length) {
    if (segments[i]!.size === 0) {
      i++
      continue
    }
    const first = segments[i]!
    let bytes = first.size
    let end = i + 1
    let lastNonEmpty = i
    while (end < segments.length) {
      const next = segments[end]!
      if (bytes + next.size > maxBytes || next.nextOffset - 1n - first.baseOffset > BigInt(maxRelativeOffset)) break
      bytes += next.size
      if (next.size > 0) lastNonEmpty = end
      end++
    }
    groups.push([i, lastNonEmpty + 1])
    i = lastNonEmpty + 1
  }
  return groups
}
