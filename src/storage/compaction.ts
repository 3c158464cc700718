// Log compaction's I/O: one pass over a partition's cleanable segments (what to keep is
// cleaner.ts), the crash-safe swap of cleaned segments into the log, and its recovery.
//
// A pass, given the segments below the cleaning point (sealed, old enough for
// min.compaction.lag.ms):
// 1. Map: read the dirty segments (those past the previous pass's checkpoint) and note each
//    key's last offset. The part cleaned before holds each key at most once, so only the dirty
//    part can supersede a record.
// 2. Clean, group by group, oldest first (cleaner.groupSegments merges small segments): write
//    the kept batches to a new file and swap it in for the group. Oldest first matters: a record
//    is removed only for a later one of its key, which sits in the same group (swapped at the
//    same instant) or in a later one (not yet touched), so at every instant, crash included,
//    each key's latest record is in the log, and a tombstone is removed only after every older
//    record of its key already was.
// Every byte read or written goes through an IoThrottle, and the pass yields at every batch,
// so it stops promptly when the log closes (before the commit point it leaves nothing behind).
//
// The swap of a group whose first segment has base offset B (file names as in segment.ts):
//   a. write <B>.log.cleaned and fdatasync it              crash: recovery deletes it (rolled back)
//   b. rename it to <B>.log.swap, fsync the directory     the commit point
//   c. rename each old segment's files to *.deleted, fsync the directory
//   d. rename <B>.log.swap to <B>.log, fsync the directory
//   e. write <B>.index and <B>.timeindex durably (a crash before: rebuilt by scanning)
//   f. unlink the *.deleted files once no reader holds them
// Recovery (finishInterruptedSwaps, before the log's own recovery) finds a <B>.log.swap: the
// swap was committed. The cleaned file ends exactly where the group did (its last batch always
// stays, as a marker if need be), so the group is every segment with a base offset in
// [B, the swap file's next offset): their files are deleted, the directory synced, and the swap
// file renamed to <B>.log. Step c is synced before d, so the new <B>.log never appears beside
// a segment of the group it replaced.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from '../clock.ts'
import type { Logger } from '../logger.ts'
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, lastOffsetOf, readBatchHeader, type BatchHeader } from '../protocol/record-batch.ts'
import { batchWithRecords, markerBatch } from '../protocol/records.ts'
import {
  groupSegments,
  LatestOffsets,
  nextTombstoneExpiry,
  planBatch,
  recordsForCleaning,
  type CompactionConfig,
} from './cleaner.ts'
import { writeFileDurably, type FileIO } from './file-io.ts'
import { ChunkedReader, MAX_RELATIVE_OFFSET, parseSegmentFileName, Segment, SegmentFile, segmentFileName } from './segment.ts'

export const CLEANED_SUFFIX = '.cleaned'
export const SWAP_SUFFIX = '.swap'
/** Cleaned bytes are written in pieces of about this size (each one throttled). */
const WRITE_PIECE_BYTES = 256 * 1024
const READ_CHUNK_BYTES = 256 * 1024
/** Bursts the throttle lets through before it makes the cleaner wait. */
const THROTTLE_SLACK_MS = 20

/**
 * At most `bytesPerSecond` of cleaner reads and writes, shared by every partition the broker
 * cleans (0: unlimited). A caller over its budget waits; the wait ends early, with an
 * AbortError, when its signal aborts.
 */
export class IoThrottle {
  readonly #bytesPerSecond: number
  readonly #clock: Clock
  #freeAtMs = 0

  constructor(bytesPerSecond: number, clock: Clock) {
    this.#bytesPerSecond = bytesPerSecond
    this.#clock = clock
  }

  async take(bytes: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    if (this.#bytesPerSecond <= 0) return
    const now = this.#clock.monotonicMs()
    this.#freeAtMs = Math.max(this.#freeAtMs, now) + (bytes * 1000) / this.#bytesPerSecond
    const wait = this.#freeAtMs - now - THROTTLE_SLACK_MS
    if (wait > 0) await sleep(wait, undefined, { signal })
  }
}

export interface CompactionRun {
  readonly dir: string
  readonly io: FileIO
  readonly clock: Clock
  readonly logger: Logger
  /** The segments below the cleaning point, oldest first: sealed, never the active one. */
  readonly segments: readonly Segment[]
  /** Everything below this offset was cleaned by an earlier pass (the checkpoint). */
  readonly cleanedBelow: bigint
  readonly config: CompactionConfig
  /** Groups of segments are merged up to this many bytes (segment.bytes). */
  readonly segmentBytes: number
  readonly indexIntervalBytes: number
  /** Last offsets of batches that must stay: each idempotent producer's retained batches. */
  readonly protectedLastOffsets: ReadonlySet<bigint>
  readonly throttle: IoThrottle
  readonly signal: AbortSignal
  /** Runs `work` with the segment's file kept open for it, even if retention deletes the segment. */
  withReader<T>(segment: Segment, work: () => Promise<T>): Promise<T>
  /** Swaps a group's cleaned segment in (swapIn); false, with nothing done, when the log no longer holds the group. */
  commit(group: readonly Segment[], cleaned: Segment): Promise<boolean>
}

export interface CompactionResult {
  readonly keys: number
  readonly groupsSwapped: number
  readonly segmentsBefore: number
  readonly bytesBefore: number
  readonly bytesAfter: number
  readonly recordsRemoved: number
  /** When the earliest tombstone kept becomes removable (Infinity: none kept). */
  readonly tombstoneExpiryMs: number
}

/** One pass (see the module header). Rejects with an AbortError when `signal` aborts first. */
export async function compact(run: CompactionRun): Promise<CompactionResult> {
  const latest = new LatestOffsets()
  for (const segment of run.segments) {
    if (segment.nextOffset <= run.cleanedBelow) continue
    await forEachBatch(run, segment, async (batch, header) => {
      if (lastOffsetOf(header) < run.cleanedBelow) return
      const records = await recordsForCleaning(batch, header)
      if (records) latest.observe(records)
    })
  }
  const tombstonesBeforeMs = run.clock.wallMs() - run.config.deleteRetentionMs
  let groupsSwapped = 0
  let bytesBefore = 0
  let bytesAfter = 0
  let recordsRemoved = 0
  let tombstoneExpiryMs = Infinity
  for (const [from, to] of groupSegments(run.segments, run.segmentBytes, MAX_RELATIVE_OFFSET)) {
    const group = run.segments.slice(from, to)
    const before = group.reduce((n, s) => n + s.size, 0)
    const written = await writeCleaned(run, group, latest, tombstonesBeforeMs)
    tombstoneExpiryMs = Math.min(tombstoneExpiryMs, written.tombstoneExpiryMs)
    // A lone segment that would come out the same is left as it is.
    const changed = written.changed || group.length > 1
    if (changed && (await run.commit(group, written.segment))) {
      groupsSwapped++
      bytesBefore += before
      bytesAfter += written.segment.size
      recordsRemoved += written.recordsRemoved
    } else await discardCleaned(run, written.segment)
  }
  return { keys: latest.size, groupsSwapped, segmentsBefore: run.segments.length, bytesBefore, bytesAfter, recordsRemoved, tombstoneExpiryMs }
}

/** Visits each batch of a sealed segment in order, throttled; `batch` is valid only during the visit. */
async function forEachBatch(run: CompactionRun, segment: Segment, visit: (batch: Buffer, header: BatchHeader) => Promise<void>): Promise<void> {
  await run.withReader(segment, async () => {
    const reader = new ChunkedReader(segment.file, segment.size, READ_CHUNK_BYTES)
    for (let position = 0; position + BATCH_HEADER_SIZE <= segment.size; ) {
      const length = LOG_OVERHEAD + (await reader.view(position, BATCH_HEADER_SIZE)).readInt32BE(8)
      await run.throttle.take(length, run.signal)
      const batch = await reader.view(position, length)
      await visit(batch, readBatchHeader(batch))
      position += length
    }
  })
}

/** Writes the group's kept batches to `<base>.log.cleaned`, synced, as a segment not yet in the log. */
async function writeCleaned(run: CompactionRun, group: readonly Segment[], latest: LatestOffsets, tombstonesBeforeMs: number) {
  const base = group[0]!.baseOffset
  const groupEnd = group.at(-1)!.nextOffset
  const file = await run.io.open(cleanedPath(run.dir, base), 'write')
  const cleaned = new Segment(base, file, run.clock.wallMs())
  let pending: Buffer[] = []
  let pendingBytes = 0
  let changed = false
  let recordsRemoved = 0
  let tombstoneExpiryMs = Infinity
  const flush = async () => {
    await run.throttle.take(pendingBytes, run.signal)
    await file.write(pending, cleaned.size - pendingBytes)
    pending = []
    pendingBytes = 0
  }
  try {
    await file.truncate(0)
    for (const segment of group) {
      await forEachBatch(run, segment, async (batch, header) => {
        const records = await recordsForCleaning(batch, header)
        const mustStay = run.protectedLastOffsets.has(lastOffsetOf(header)) || lastOffsetOf(header) + 1n === groupEnd
        const plan = planBatch(records, latest, tombstonesBeforeMs, mustStay)
        tombstoneExpiryMs = Math.min(tombstoneExpiryMs, nextTombstoneExpiry(records, latest, tombstonesBeforeMs, run.config.deleteRetentionMs))
        let out: Buffer | null
        if (plan.kind === 'copy') out = Buffer.from(batch) // the read buffer is reused
        else if (plan.kind === 'rewrite') out = await batchWithRecords(batch, header, plan.kept)
        else if (plan.kind === 'marker') out = markerBatch(header)
        else out = null
        if (plan.kind !== 'copy') {
          changed = true
          recordsRemoved += (records?.length ?? 0) - (plan.kind === 'rewrite' ? plan.kept.length : 0)
        }
        if (!out) return
        cleaned.track(plan.kind === 'copy' ? header : readBatchHeader(out), cleaned.size, run.indexIntervalBytes)
        cleaned.size += out.length
        pending.push(out)
        pendingBytes += out.length
        if (pendingBytes >= WRITE_PIECE_BYTES) await flush()
      })
    }
    await flush()
    await file.datasync()
    cleaned.durableSize = cleaned.size
  } catch (err) {
    await discardCleaned(run, cleaned)
    throw err
  }
  return { segment: cleaned, changed, recordsRemoved, tombstoneExpiryMs }
}

async function discardCleaned(run: CompactionRun, cleaned: Segment): Promise<void> {
  await cleaned.closeFile().catch(() => {})
  // Best effort: recovery removes a `.cleaned` file left behind.
  await run.io.unlink(cleanedPath(run.dir, cleaned.baseOffset)).catch(() => {})
}

const cleanedPath = (dir: string, base: bigint) => `${dir}/${segmentFileName(base, SegmentFile.log)}${CLEANED_SUFFIX}`
const swapPath = (dir: string, base: bigint) => `${dir}/${segmentFileName(base, SegmentFile.log)}${SWAP_SUFFIX}`

/**
 * Steps b to e of the swap (module header) for a group whose cleaned segment is written and
 * synced. Returns the `.deleted` files to unlink once no reader holds the old segments (step f).
 */
export async function swapIn(io: FileIO, dir: string, group: readonly Segment[], cleaned: Segment): Promise<string[]> {
  const base = cleaned.baseOffset
  await io.rename(cleanedPath(dir, base), swapPath(dir, base))
  await io.syncDir(dir)
  const present = new Set(await io.readdir(dir))
  const doomed: string[] = []
  for (const segment of group) {
    for (const suffix of [SegmentFile.log, SegmentFile.index, SegmentFile.timeIndex]) {
      const name = segmentFileName(segment.baseOffset, suffix)
      if (!present.has(name)) continue
      await io.rename(`${dir}/${name}`, `${dir}/${name}.deleted`)
      doomed.push(`${dir}/${name}.deleted`)
    }
  }
  await io.syncDir(dir)
  await io.rename(swapPath(dir, base), `${dir}/${segmentFileName(base, SegmentFile.log)}`)
  await io.syncDir(dir)
  await writeFileDurably(io, dir, segmentFileName(base, SegmentFile.index), cleaned.encodeIndex())
  await writeFileDurably(io, dir, segmentFileName(base, SegmentFile.timeIndex), cleaned.encodeTimeIndex())
  return doomed
}

/**
 * Recovery: removes `.cleaned` files (swaps that never committed) and completes every committed
 * swap (a `.swap` file), as the module header says. Runs before the log reads its segments.
 */
export async function finishInterruptedSwaps(io: FileIO, dir: string, logger: Logger): Promise<void> {
  const names = await io.readdir(dir)
  let removed = false
  for (const name of names.filter((n) => n.endsWith(CLEANED_SUFFIX))) {
    await io.unlink(`${dir}/${name}`)
    removed = true
  }
  if (removed) await io.syncDir(dir)
  for (const swap of names.filter((n) => n.endsWith(SWAP_SUFFIX))) {
    const parsed = parseSegmentFileName(swap.slice(0, -SWAP_SUFFIX.length))
    if (!parsed || parsed.suffix !== SegmentFile.log) continue
    const base = parsed.baseOffset
    const end = await nextOffsetOf(io, `${dir}/${swap}`, base, logger)
    const replaced: string[] = []
    for (const name of await io.readdir(dir)) {
      const segment = parseSegmentFileName(name)
      if (!segment || segment.baseOffset < base || segment.baseOffset >= end) continue
      await io.unlink(`${dir}/${name}`)
      replaced.push(name)
    }
    await io.syncDir(dir)
    await io.rename(`${dir}/${swap}`, `${dir}/${segmentFileName(base, SegmentFile.log)}`)
    await io.syncDir(dir)
    logger.warn('recovery: finished a compaction swap interrupted by a crash', { swap, replaced: replaced.length, endOffset: end })
  }
}

/** The offset after the last whole batch of a file (it was synced before its swap committed, so it is whole). */
async function nextOffsetOf(io: FileIO, path: string, base: bigint, logger: Logger): Promise<bigint> {
  const file = await io.open(path, 'read')
  const segment = new Segment(base, file, 0)
  let next = base
  try {
    await segment.walkHeaders(0, await file.size(), (header) => void (next = lastOffsetOf(header) + 1n))
  } catch (err) {
    // Damage after the sync: the segment's own recovery cuts it where it breaks.
    logger.error('recovery: a committed compaction swap file does not read to its end', { path, err })
  } finally {
    await segment.closeFile()
  }
  return next
}
