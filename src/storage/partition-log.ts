// One partition's log: a directory of segments (see segment.ts) holding RecordBatch v2 bytes
// exactly as the client sent them, compressed or not; only baseOffset and partitionLeaderEpoch
// are rewritten, both outside the CRC.
//
// Guarantees
// - Offsets are assigned densely in call order, and never reused or shifted by retention or
//   restart (the active segment, which carries the log end, is never deleted). On a topic with
//   idempotency-key dedup, dropped duplicates leave holes inside their batch's offset range, and
//   batches take turns to be opened before offsets are assigned (see #appendDeduplicated).
// - Durability follows the flush policy, and append resolves only once it holds:
//     always    resolve after an fdatasync that covers the batch. Appends arriving while a sync is
//               in flight are written after it and share the next one (group commit), so one
//               fsync serves every waiting producer. Loses nothing acknowledged.
//     interval  resolve after write() returns; fdatasync every intervalMs. A process crash loses
//               nothing (the bytes are in the page cache); an OS crash or power loss loses up
//               to intervalMs of acknowledged data.
//     never     resolve after write() returns; the OS flushes when it likes. An OS crash or power
//               loss loses whatever it had not flushed.
//   Rolling a segment always syncs the sealed one, so only the active segment can hold
//   unsynced bytes.
// - highWatermark is the end of what is durable under the policy (after the fsync for
//   `always`, after the write otherwise). Reads never go past it, so under `always` a consumer
//   never sees a batch a crash could take back.
// - A failed write or fsync fences the partition: the appends it would have covered reject with
//   TIDEWAY_ERR_STORAGE_IO, every later one with TIDEWAY_ERR_STORAGE_FENCED (both retriable),
//   the failure is logged once, and the fsync is never retried to then acknowledge: after a
//   failed fsync the kernel may have dropped the dirty pages, so a second fsync can "succeed"
//   without the data (PostgreSQL's fsyncgate). Reads keep serving what was durable; a restart
//   recovers. No clean-shutdown marker is written for a fenced log.
// - Compacted topics (cleanup.policy compact): clean() rewrites sealed segments old enough for
//   min.compaction.lag.ms, keeping each key's last record (cleaner.ts), and swaps the cleaned
//   files in crash-safely (compaction.ts). Offsets never change; the active segment is never
//   touched; reads in flight finish on the files they started on.
//
// Recovery on open (after Kafka's LogLoader)
// - An interrupted compaction swap is rolled back (never committed) or finished (compaction.ts).
// - Stray `.tmp` and `.deleted` files and index files without a `.log` are removed: they are
//   interrupted atomic writes and deletions.
// - Sealed segments were fsynced, with their index files written durably, before the next
//   segment was created, so their indexes are trusted once plausible and once a walk of the
//   batch headers after the last index entry ends exactly at the end of the file. The last
//   segment is trusted the same way only after a clean shutdown (the `clean-shutdown` marker,
//   written by close() after everything is synced and removed durably on open before any
//   append). Any other segment is re-read batch by batch (length, magic, CRC-32C, offsets
//   following on) and cut at the first batch that fails: in the last segment that is a crash's
//   torn, unacknowledged tail, and what remains of the tail is synced before it is readable.
//   Inside an older segment it is corruption: we log it as an error and cut only that
//   segment, keeping the later segments' data (Kafka instead drops all later
//   unflushed segments; ours were all flushed, so they are good data). That leaves a gap in the
//   offsets, which readers step over (as they step over the gaps compaction leaves: offsets
//   ascend, but need not be dense). The next offset is the last valid batch's lastOffset + 1,
//   or the segment's base offset when it is empty.

import type { Clock } from '../clock.ts'
import { isTidewayError, TidewayError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import {
  BATCH_HEADER_SIZE,
  LOG_OVERHEAD,
  lastOffsetOf,
  isControlBatch,
  readBatchHeader,
  TimestampType,
  timestampTypeOf,
  validateBatch,
  writeBaseOffset,
  writePartitionLeaderEpoch,
  type BatchHeader,
} from '../protocol/record-batch.ts'
import { crc32c } from '../protocol/crc32c.ts'
import { batchWithRecords, markerBatch, openProducedRecords, openRecords, recordTimes } from '../protocol/records.ts'
import { dedupKeyOf, DedupWindow } from './dedup-window.ts'
import { ProducerStateTable, type ProducerBatch } from './producer-state.ts'
import { mkdirDurably, writeFileDurably, type FileIO } from './file-io.ts'
import type { CompactionConfig } from './cleaner.ts'
import { compact, finishInterruptedSwaps, swapIn, type CompactionResult, type IoThrottle } from './compaction.ts'
import { ChunkedReader, parseSegmentFileName, readFully, readFullyParallel, Segment, SegmentFile, segmentFileName } from './segment.ts'

export type FlushPolicy = { mode: 'always' } | { mode: 'interval'; intervalMs: number } | { mode: 'never' }

export interface LogConfig {
  /** Roll to a new segment when the active one would grow past this (segment.bytes). */
  segmentBytes: number
  /** Roll when the active segment is older than this (segment.ms), checked on append. */
  segmentMs: number
  /** Delete sealed segments whose newest timestamp is older than this; -1 keeps forever. */
  retentionMs: number
  /** Delete the oldest sealed segments while at least this much remains; -1 is unlimited. */
  retentionBytes: number
  /** Bytes of log between sparse offset-index entries. */
  indexIntervalBytes: number
  flush: FlushPolicy
  /** Idempotency-key dedup (dedup-window.ts); absent when the topic does not use it. */
  dedup?: DedupConfig
  /** Log compaction (cleanup.policy compact); absent when the topic is not compacted. */
  compaction?: CompactionConfig
}

export interface DedupConfig {
  /** The record header holding the key. */
  header: string
  windowMs: number
  windowRecords: number
}

export interface AppendResult {
  baseOffset: bigint
  lastOffset: bigint
  /** -1 for CreateTime topics (the only kind so far). */
  logAppendTimeMs: bigint
  logStartOffset: bigint
  /** Dedup topics: the originals' offsets of the records that were not stored again, in batch order. */
  duplicateOffsets?: bigint[]
  /** An idempotent producer's retry of a batch already stored: answered with its original offsets. */
  repeated?: true
}

export interface ReadResult {
  /** Whole batches, possibly empty. */
  records: Buffer
  highWatermark: bigint
  logStartOffset: bigint
}

export interface PartitionLogOptions {
  dir: string
  topic: string
  partition: number
  io: FileIO
  config: LogConfig
  clock: Clock
  logger: Logger
  /** Forget an idempotent producer idle this long (Kafka: producer.id.expiration.ms); default 1 day. */
  producerIdExpirationMs?: number
}

const DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000
/** How often appends look for expired producers. */
const PRODUCER_EXPIRY_CHECK_MS = 60_000

/**
 * What the partition knew of idempotent producers as of an offset (written at each segment roll
 * and at a clean close): start-up reads it and only the batch headers after that offset.
 */
const PRODUCER_SNAPSHOT = 'producers.snapshot'
/** Written by close() once everything is synced; its presence lets open() trust the last segment's indexes. */
const CLEAN_SHUTDOWN = 'clean-shutdown'
/** The log start offset DeleteRecords moved past the first segment's base, as decimal text. */
const LOG_START_OFFSET = 'log-start-offset'
/** Compaction's checkpoint: the offset below which the last complete pass cleaned, as decimal text. */
const CLEANER_CHECKPOINT = 'cleaner-checkpoint'
/** A single node is every partition's only leader, for ever: one leader epoch, stamped on every batch. */
export const LEADER_EPOCH = 0
/** scanBatchHeaders reads this much at a time. */
const SCAN_READ_BYTES = 1024 * 1024

interface PendingAppend {
  batch: Buffer
  header: BatchHeader
  resolve: (result: AppendResult) => void
  reject: (err: unknown) => void
}

export class PartitionLog {
  readonly topic: string
  readonly partition: number
  readonly dir: string
  readonly #io: FileIO
  readonly #clock: Clock
  readonly #logger: Logger
  #config: LogConfig
  /** Ascending by base offset; never empty; the last one is the active segment. */
  readonly #segments: Segment[] = []
  #logEndOffset = 0n
  #highWatermark = 0n
  /** Appends with offsets assigned, waiting for the next write round. */
  #queue: PendingAppend[] = []
  #writeLoopDone: Promise<void> | null = null
  #fenced: TidewayError | null = null
  #reopenable = false
  #closed = false
  /** Interval policy: bytes written since the last periodic sync. */
  #unsynced = false
  #flushTimer: NodeJS.Timeout | null = null
  #periodicSync: Promise<void> | null = null
  #retention: Promise<unknown> = Promise.resolve()
  #readsInFlight = 0
  #readsDrained: (() => void) | null = null
  readonly #listeners = new Set<(hw: bigint) => void>()
  readonly #producers = new ProducerStateTable()
  readonly #producerIdExpirationMs: number
  #lastProducerExpiry = 0
  #dedup: { window: DedupWindow; header: Buffer } | null = null
  /** Set by DeleteRecords: no offset below it is served (0n: none deleted that way). */
  #deletedBelow = 0n
  /** Dedup topics admit appends one at a time, in call order (see #inTurn). */
  #admissions: Promise<void> = Promise.resolve()
  #admissionsPending = 0
  /** Answers waiting for an original to become durable (dedup duplicates that store nothing). */
  #durableWaiters: { offset: bigint; resolve: () => void; reject: (err: unknown) => void }[] = []
  /** The compaction pass under way, if any; close() aborts it through #cleanerStop. */
  #cleaning: Promise<CompactionResult | null> | null = null
  readonly #cleanerStop = new AbortController()
  /** Below this offset the last complete compaction pass cleaned (its checkpoint). */
  #cleanedBelow = 0n
  /** When a tombstone kept by the last pass becomes removable (0: unknown, as after open). */
  #tombstonesDueMs = 0

  private constructor(options: PartitionLogOptions) {
    this.topic = options.topic
    this.partition = options.partition
    this.dir = options.dir
    this.#io = options.io
    this.#clock = options.clock
    this.#logger = options.logger.child({ topic: options.topic, partition: options.partition })
    this.#config = options.config
    this.#producerIdExpirationMs = options.producerIdExpirationMs ?? DEFAULT_PRODUCER_ID_EXPIRATION_MS
    this.#dedup = dedupStateFor(options.config.dedup)
  }

  /** Opens the log in `dir`, creating it or recovering it after a crash. */
  static async open(options: PartitionLogOptions): Promise<PartitionLog> {
    const log = new PartitionLog(options)
    try {
      await log.#recover()
      await log.#rebuildProducerState()
      await log.#rebuildDedupWindow()
    } catch (err) {
      await Promise.allSettled(log.#segments.map((segment) => segment.closeFile()))
      throw err
    }
    const { flush } = log.#config
    if (flush.mode === 'interval') log.#startFlushTimer(flush.intervalMs)
    return log
  }

  /** The first offset a reader may ask for: the first segment's base, or past it after DeleteRecords. */
  get logStartOffset(): bigint {
    const base = this.#segments[0]!.baseOffset
    return this.#deletedBelow > base ? this.#deletedBelow : base
  }
  /** The next offset to assign. */
  get logEndOffset(): bigint {
    return this.#logEndOffset
  }
  /** The offset after the last batch that is durable under the flush policy. */
  get highWatermark(): bigint {
    return this.#highWatermark
  }
  /** The storage failure that fenced this partition, or null. */
  get fenced(): TidewayError | null {
    return this.#fenced
  }
  get segmentCount(): number {
    return this.#segments.length
  }
  /** Total bytes in the partition's segments. */
  size(): number {
    let total = 0
    for (const segment of this.#segments) total += segment.size
    return total
  }

  /**
   * Applies new topic settings (segment size, retention, dedup) from the next append on; the
   * flush policy stays. Dedup newly turned on first rebuilds its window from the log, as on open.
   */
  reconfigure(config: LogConfig): void {
    const before = this.#config.dedup
    this.#config = { ...config, flush: this.#config.flush }
    const after = config.dedup
    if (!after) this.#dedup = null
    else if (this.#dedup && before?.header === after.header) this.#dedup.window.limits = after
    else {
      this.#dedup = dedupStateFor(after)
      this.#inTurn(() => this.#rebuildDedupWindow()).catch((err: unknown) => this.#logger.warn('rebuilding the dedup window failed', { err }))
    }
  }

  /** Calls `listener` each time the high watermark advances (the broker's long-poll fetch waits on it). */
  onHighWatermark(listener: (hw: bigint) => void): () => void {
    this.#listeners.add(listener)
    return () => void this.#listeners.delete(listener)
  }

  // ---------------------------------------------------------------------------------------------
  // Append

  /**
   * Appends one batch that validateBatch accepted. Its offsets are assigned in call order (the
   * batch's baseOffset field is rewritten in place); the promise resolves when the batch is
   * durable under the flush policy. On a topic with idempotency-key dedup the batch is opened
   * first (see #appendDeduplicated) and the result says which records were already stored.
   */
  append(batch: Buffer, header: BatchHeader): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(this.#closedError())
    if (this.#fenced) return Promise.reject(this.#fencedError())
    if (batch.length !== LOG_OVERHEAD + header.batchLength || header.lastOffsetDelta < 0) {
      return Promise.reject(
        new TidewayError('TIDEWAY_ERR_CORRUPT_BATCH', `header does not describe this ${batch.length}-byte batch`),
      )
    }
    if (this.#dedup || this.#admissionsPending > 0) return this.#appendDeduplicated(batch, header)
    try {
      return this.#admit(batch, header)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * The synchronous step every append ends in: the idempotent producer's sequence check (a retry
   * is answered with the original's offsets; a gap or an old epoch throws), then offsets, then the
   * write queue. `answerOffset` replaces the base offset in the answer (a marker's answer is the
   * offset of its first record's original).
   */
  #admit(batch: Buffer, header: BatchHeader, answerOffset?: bigint): Promise<AppendResult> {
    const idempotent = header.producerId >= 0n
    // What tells a retry from other records under reused sequences; not on a dedup topic, whose
    // batches may be rewritten before they get here.
    const fingerprint = idempotent && answerOffset === undefined && !this.#dedup ? crc32c(batch.subarray(BATCH_HEADER_SIZE)) : undefined
    if (idempotent) {
      const verdict = this.#producers.check(header, fingerprint)
      if (verdict.kind === 'duplicate') return this.#answerRetry(verdict.batch)
    }
    const baseOffset = this.#logEndOffset
    writeBaseOffset(batch, baseOffset)
    writePartitionLeaderEpoch(batch, LEADER_EPOCH)
    const assigned: BatchHeader = { ...header, baseOffset, partitionLeaderEpoch: LEADER_EPOCH }
    this.#logEndOffset = lastOffsetOf(assigned) + 1n
    const written = new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ batch, header: assigned, resolve, reject })
      this.#writeLoopDone ??= this.#writeLoop()
    })
    const appended = answerOffset === undefined ? written : written.then((result) => ({ ...result, baseOffset: answerOffset }))
    if (idempotent) {
      const now = this.#clock.wallMs()
      this.#producers.record(assigned, now, appended, answerOffset, fingerprint)
      if (now - this.#lastProducerExpiry >= PRODUCER_EXPIRY_CHECK_MS) {
        this.#lastProducerExpiry = now
        this.#producers.expire(now, this.#producerIdExpirationMs)
      }
    }
    return appended
  }

  /**
   * Idempotency-key dedup (dedup-window.ts). The batch's records are inflated at once, but
   * batches are admitted strictly in call order, one at a time, so offsets and an idempotent
   * producer's sequences still follow arrival order. Then:
   * - a retry of a batch an idempotent producer already sent is answered as any retry is;
   * - records whose key the window holds are dropped: a batch with none of them is stored as
   *   sent; one with some is rewritten without them, keeping its offset range (the dropped
   *   records leave holes, records.ts), so its other records get the offsets their producer
   *   expects; one with only duplicates is not stored and is answered with the offset of its
   *   first record's original, once that is durable, except that an idempotent producer's batch
   *   leaves a control marker carrying its sequence range (records.ts).
   */
  #appendDeduplicated(batch: Buffer, header: BatchHeader): Promise<AppendResult> {
    const opened = this.#dedup ? openProducedRecords(batch, header, this.#dedup.header) : Promise.resolve(null)
    opened.catch(() => {}) // observed below, in turn
    const admitted = this.#inTurn(async (): Promise<{ appended: Promise<AppendResult> }> => {
      const records = await opened
      if (this.#closed) throw this.#closedError()
      if (this.#fenced) throw this.#fencedError()
      const dedup = this.#dedup
      if (!records || !dedup) return { appended: this.#admit(batch, header) }
      if (header.producerId >= 0n) {
        // Before the keys: a retry's keys are all in the window, as its own first attempt's.
        const verdict = this.#producers.check(header)
        if (verdict.kind === 'duplicate') return { appended: this.#answerRetry(verdict.batch) }
      }
      const now = this.#clock.wallMs()
      const baseOffset = Number(this.#logEndOffset)
      dedup.window.evict(now, baseOffset)
      const keys = records.map((r) => dedupKeyOf(r.headerValue))
      const { originals, undo } = dedup.window.admit(keys, records.map((r) => r.offsetDelta), baseOffset, now, baseOffset)
      const duplicateOffsets = originals.filter((o) => o !== undefined).map(BigInt)
      let appended: Promise<AppendResult>
      try {
        if (duplicateOffsets.length === 0) appended = this.#admit(batch, header)
        else if (duplicateOffsets.length < records.length) {
          const rewritten = await batchWithRecords(batch, header, records.filter((_, i) => originals[i] === undefined))
          if (this.#closed) throw this.#closedError()
          if (this.#fenced) throw this.#fencedError()
          appended = this.#admit(rewritten, readBatchHeader(rewritten))
        } else if (header.producerId >= 0n) {
          const marker = markerBatch(header)
          appended = this.#admit(marker, readBatchHeader(marker), duplicateOffsets[0])
        } else {
          const answer = duplicateOffsets[0]!
          const latest = duplicateOffsets.reduce((a, b) => (a > b ? a : b))
          appended = this.#whenDurable(latest).then(() => ({ baseOffset: answer, lastOffset: answer, logAppendTimeMs: -1n, logStartOffset: this.logStartOffset }))
        }
      } catch (err) {
        undo() // the batch is not stored: its keys were never
        throw err
      }
      if (duplicateOffsets.length > 0) appended = appended.then((result) => ({ ...result, duplicateOffsets }))
      // Wrapped, so that this turn ends once the batch has its offsets, not once it is durable.
      return { appended }
    })
    return admitted.then(({ appended }) => appended)
  }

  /** Runs `work` once every earlier turn has finished; appends on dedup topics take turns. */
  #inTurn<T>(work: () => Promise<T>): Promise<T> {
    this.#admissionsPending++
    const done = this.#admissions.then(work)
    this.#admissions = done.then(
      () => void this.#admissionsPending--,
      () => void this.#admissionsPending--,
    )
    return done
  }

  /** Resolves once `offset` is below the high watermark; rejects if the partition is fenced first. */
  #whenDurable(offset: bigint): Promise<void> {
    if (offset < this.#highWatermark) return Promise.resolve()
    if (this.#fenced) return Promise.reject(this.#fencedError())
    return new Promise((resolve, reject) => this.#durableWaiters.push({ offset, resolve, reject }))
  }

  /**
   * A retried batch the partition already has: answered with the original's offsets once the
   * original is durable (it may still be in flight), and not stored again. If the original
   * failed, so does the retry: the partition is fenced then, and a restart rebuilds the state.
   */
  async #answerRetry(original: ProducerBatch): Promise<AppendResult> {
    await original.outcome
    return { baseOffset: original.baseOffset, lastOffset: original.lastOffset, logAppendTimeMs: -1n, logStartOffset: this.logStartOffset, repeated: true }
  }

  /**
   * Rebuilds what the partition knows of idempotent producers: the snapshot (as of the last roll
   * or clean close), then every batch header after it, oldest first, so each producer ends with
   * its last 5 batches. Without a usable snapshot, every header. Record timestamps are the
   * producers' and may be skewed, so a rebuilt producer's expiry clock starts at this open.
   */
  async #rebuildProducerState(): Promise<void> {
    const now = this.#clock.wallMs()
    let from = 0n
    const path = this.#path(PRODUCER_SNAPSHOT)
    if (await this.#io.exists(path)) {
      const asOf = this.#producers.restore((await this.#io.readFile(path)).toString('utf8'), now)
      if (asOf !== undefined && asOf <= this.#logEndOffset) from = asOf
      else {
        // Unreadable, or ahead of a log that lost its tail: start over from the log alone.
        this.#logger.warn('ignoring the producer state snapshot', { path, asOf: asOf?.toString(), logEndOffset: this.#logEndOffset.toString() })
        this.#producers.clear()
      }
    }
    const first = this.#segmentIndexFor(from)
    for (let i = first; i < this.#segments.length; i++) {
      const segment = this.#segments[i]!
      const start = i === first ? segment.positionAtOrBefore(from) : 0
      await segment.walkHeaders(start, segment.durableSize, (header) => {
        if (lastOffsetOf(header) < from) return
        // Control batches count too: a dedup marker carries its producer's sequence range
        // (a transaction marker, which has none, is left out by baseSequence -1).
        if (header.producerId >= 0n && header.baseSequence >= 0) this.#producers.record(header, now)
      })
    }
  }

  /**
   * Rebuilds the dedup window from the log tail, as JetStream's rebuildDedupe does: every keyed
   * record among the last windowRecords offsets whose own timestamp is inside windowMs (the log
   * holds no broker time). Opens only those batches; a batch whose records do not open is
   * skipped with a warning (its CRC held, so a producer wrote it so: it was never deduplicated).
   */
  async #rebuildDedupWindow(): Promise<void> {
    const dedup = this.#dedup
    if (!dedup) return
    dedup.window.clear()
    const now = this.#clock.wallMs()
    const cutoff = BigInt(now - dedup.window.limits.windowMs)
    const firstOffset = BigInt(dedup.window.firstOffsetInWindow(Number(this.#logEndOffset)))
    const recent = this.#segments.find((segment) => segment.maxTimestamp >= cutoff)
    if (!recent) return
    const from = recent.baseOffset > firstOffset ? recent.baseOffset : firstOffset
    let unreadable = 0
    for await (const { header, batch } of this.scanBatchHeaders(from)) {
      if (isControlBatch(header.attributes) || header.maxTimestamp < cutoff || lastOffsetOf(header) < firstOffset) continue
      let records
      try {
        records = await openRecords(batch, header, dedup.header)
      } catch {
        unreadable++
        continue
      }
      for (const record of records) {
        const offset = header.baseOffset + BigInt(record.offsetDelta)
        const timestamp = header.baseTimestamp + record.timestampDelta
        const key = dedupKeyOf(record.headerValue)
        if (key === null || offset < firstOffset || timestamp < cutoff) continue
        dedup.window.remember(key, Number(offset), Math.min(Number(timestamp), now))
      }
    }
    if (unreadable > 0) this.#logger.warn('dedup window rebuild skipped batches whose records do not open', { batches: unreadable })
    this.#logger.info('dedup window rebuilt from the log', { keys: dedup.window.size, fromOffset: from })
  }

  /** Records the producer state as of `asOf`, durably (everything below `asOf` must be durable). */
  async #snapshotProducers(asOf: bigint): Promise<void> {
    await writeFileDurably(this.#io, this.dir, PRODUCER_SNAPSHOT, Buffer.from(this.#producers.toSnapshot(asOf)))
  }

  /** What this partition remembers of an idempotent producer (tests, DescribeProducers). */
  producerState(producerId: bigint) {
    return this.#producers.stateOf(producerId)
  }

  /** The idempotent producers this partition remembers (DescribeProducers). */
  activeProducers() {
    return this.#producers.list()
  }

  /**
   * Drains the queue in rounds: each round writes every queued batch (one writev per segment),
   * then (policy `always`) one fdatasync covers them all. Appends that arrive meanwhile wait for
   * the next round.
   */
  async #writeLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const round = this.#queue
        this.#queue = []
        try {
          await this.#writeRound(round)
        } catch (err) {
          this.#fence(err)
          const covered = new TidewayError('TIDEWAY_ERR_STORAGE_IO', this.#name(), { cause: err })
          for (const pending of round) pending.reject(covered)
          const later = this.#fencedError()
          for (const pending of this.#queue) pending.reject(later)
          this.#queue = []
          return
        }
        this.#advanceHighWatermark()
        const logStartOffset = this.logStartOffset
        for (const { header, resolve } of round) {
          resolve({ baseOffset: header.baseOffset, lastOffset: lastOffsetOf(header), logAppendTimeMs: -1n, logStartOffset })
        }
      }
    } finally {
      this.#writeLoopDone = null
    }
  }

  async #writeRound(round: PendingAppend[]): Promise<void> {
    let buffers: Buffer[] = []
    let writeAt = this.#active.size
    for (const { batch, header } of round) {
      if (this.#shouldRoll(batch.length, lastOffsetOf(header))) {
        await this.#writeTo(buffers, writeAt)
        buffers = []
        await this.#roll(header.baseOffset)
        writeAt = 0
      }
      const segment = this.#active
      segment.track(header, segment.size, this.#config.indexIntervalBytes)
      segment.size += batch.length
      buffers.push(batch)
    }
    await this.#writeTo(buffers, writeAt)
    if (this.#config.flush.mode === 'always') await this.#active.file.datasync()
    else this.#unsynced = true
  }

  /** A write to the active segment; a failure is marked as a write's (see `reopenable`). */
  async #writeTo(buffers: Buffer[], position: number): Promise<void> {
    try {
      await this.#active.file.write(buffers, position)
    } catch (err) {
      throw new TidewayError('TIDEWAY_ERR_STORAGE_IO', `writing ${this.#name()}`, { cause: err, context: { phase: 'write' } })
    }
  }

  get #active(): Segment {
    return this.#segments[this.#segments.length - 1]!
  }

  #shouldRoll(incomingBytes: number, lastOffset: bigint): boolean {
    const active = this.#active
    if (active.size === 0) return false
    return (
      active.size + incomingBytes > this.#config.segmentBytes ||
      this.#clock.wallMs() - active.rollClockStartMs >= this.#config.segmentMs ||
      !active.fitsRelativeOffset(lastOffset)
    )
  }

  /** Seals the active segment (synced, indexes written durably), then starts one at `baseOffset`. */
  async #roll(baseOffset: bigint): Promise<void> {
    const sealed = this.#active
    await sealed.file.datasync()
    sealed.durableSize = sealed.size
    await this.#writeIndexes(sealed)
    await this.#snapshotProducers(baseOffset)
    this.#segments.push(await this.#createSegment(baseOffset))
  }

  async #createSegment(baseOffset: bigint): Promise<Segment> {
    const file = await this.#io.open(this.#path(segmentFileName(baseOffset, SegmentFile.log)), 'write')
    await this.#io.syncDir(this.dir) // the new file's directory entry must survive a power loss
    return new Segment(baseOffset, file, this.#clock.wallMs())
  }

  async #writeIndexes(segment: Segment): Promise<void> {
    await writeFileDurably(this.#io, this.dir, segmentFileName(segment.baseOffset, SegmentFile.index), segment.encodeIndex())
    await writeFileDurably(
      this.#io,
      this.dir,
      segmentFileName(segment.baseOffset, SegmentFile.timeIndex),
      segment.encodeTimeIndex(),
    )
  }

  #advanceHighWatermark(): void {
    const active = this.#active
    active.durableSize = active.size
    if (active.nextOffset <= this.#highWatermark) return
    this.#highWatermark = active.nextOffset
    if (this.#durableWaiters.length > 0) {
      const waiting = this.#durableWaiters
      this.#durableWaiters = []
      for (const waiter of waiting) {
        if (waiter.offset < this.#highWatermark) waiter.resolve()
        else this.#durableWaiters.push(waiter)
      }
    }
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#highWatermark)
      } catch (err) {
        this.#logger.error('a high-watermark listener threw', { err })
      }
    }
  }

  /**
   * Interval policy only. The sync is I/O at the edge, so it runs on a real timer; acknowledgement
   * never waits for it. A failure fences like any other.
   */
  #startFlushTimer(intervalMs: number): void {
    this.#flushTimer = setInterval(() => {
      if (!this.#unsynced || this.#periodicSync || this.#fenced || this.#closed) return
      this.#unsynced = false
      this.#periodicSync = this.#active.file
        .datasync()
        .catch((err: unknown) => this.#fence(err))
        .finally(() => (this.#periodicSync = null))
    }, intervalMs)
    this.#flushTimer.unref()
  }

  #fence(cause: unknown): void {
    if (this.#fenced) return
    this.#fenced = new TidewayError('TIDEWAY_ERR_STORAGE_FENCED', this.#name(), { cause })
    this.#reopenable = isNoSpaceOnWrite(cause)
    for (const waiter of this.#durableWaiters.splice(0)) waiter.reject(this.#fencedError())
    this.#logger.error(
      this.#reopenable
        ? 'disk full: partition fenced; appends are refused until there is space again, then it reopens'
        : 'storage failure: partition fenced until restart; no further appends are accepted',
      { err: cause, highWatermark: this.#highWatermark },
    )
  }

  /**
   * Whether the partition was fenced because a write was refused for lack of space (ENOSPC,
   * EDQUOT), so that closing it and opening it again (recovery: the tail is re-read, cut where
   * torn, and synced) is safe once there is space: nothing of the refused round was
   * acknowledged, and no fsync failed. A failed fsync is different: the kernel may have dropped
   * pages its cache still shows as written (PostgreSQL's fsyncgate), so that stays fenced until
   * the broker restarts.
   */
  get reopenable(): boolean {
    return this.#fenced !== null && this.#reopenable
  }

  #fencedError(): TidewayError {
    return new TidewayError('TIDEWAY_ERR_STORAGE_FENCED', this.#name(), { cause: this.#fenced?.cause })
  }

  #closedError(): TidewayError {
    return new TidewayError('TIDEWAY_ERR_CLOSED', `partition log ${this.#name()}`)
  }

  #name(): string {
    return `${this.topic}-${this.partition}`
  }

  #path(name: string): string {
    return `${this.dir}/${name}`
  }

  // ---------------------------------------------------------------------------------------------
  // Read

  /**
   * Whole batches starting with the one that contains `fetchOffset` (clients skip the records
   * before their offset), never past the high watermark, stopping before `maxBytes` would be
   * exceeded but returning at least one batch however large (KIP-74). One call reads from one
   * segment; the caller asks again from the next offset.
   */
  async read(fetchOffset: bigint, maxBytes: number): Promise<ReadResult> {
    if (this.#closed) throw this.#closedError()
    const highWatermark = this.#highWatermark
    const logStartOffset = this.logStartOffset
    if (fetchOffset < logStartOffset || fetchOffset > highWatermark) {
      throw new TidewayError(
        'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE',
        `offset ${fetchOffset} is outside [${logStartOffset}, ${highWatermark}] of ${this.#name()}`,
        { context: { topic: this.topic, partition: this.partition, offset: fetchOffset } },
      )
    }
    const result = { records: Buffer.alloc(0), highWatermark, logStartOffset }
    if (fetchOffset === highWatermark) return result
    // Segments from the one that should hold the offset; the next one serves offsets that fall
    // in a gap left by recovering a corrupt sealed segment.
    const first = this.#segmentIndexFor(fetchOffset)
    const candidates = this.#segments.slice(first)
    for (const segment of candidates) {
      if (segment.baseOffset >= highWatermark) break
      // Compaction swapped it out (or retention deleted it) since the lookup: look again.
      if (segment.deleted) return this.read(fetchOffset, maxBytes)
      const records = await this.#withReader(segment, () => this.#readFrom(segment, fetchOffset, maxBytes, highWatermark))
      if (records.length > 0) return { ...result, records }
    }
    return result
  }

  /** Index of the last segment whose base offset is <= offset (0 if none). */
  #segmentIndexFor(offset: bigint): number {
    let lo = 0
    let hi = this.#segments.length - 1
    let found = 0
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.#segments[mid]!.baseOffset <= offset) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return found
  }

  async #readFrom(segment: Segment, fetchOffset: bigint, maxBytes: number, highWatermark: bigint): Promise<Buffer> {
    const limit = segment.durableSize
    let start = -1
    let firstLength = 0
    await segment.walkHeaders(segment.positionAtOrBefore(fetchOffset), limit, (header, position) => {
      if (lastOffsetOf(header) < fetchOffset) return true
      if (header.baseOffset < highWatermark) {
        start = position
        firstLength = LOG_OVERHEAD + header.batchLength
      }
      return false
    })
    if (start < 0) return Buffer.alloc(0)
    const chunk = Buffer.allocUnsafe(Math.max(firstLength, Math.min(maxBytes, limit - start)))
    await readFullyParallel(segment.file, chunk, start)
    // Keep whole batches below the high watermark that fit in maxBytes (the first always fits).
    let end = firstLength
    while (end + BATCH_HEADER_SIZE <= chunk.length) {
      const length = LOG_OVERHEAD + chunk.readInt32BE(end + 8)
      if (end + length > chunk.length || chunk.readBigInt64BE(end) >= highWatermark) break
      end += length
    }
    return chunk.subarray(0, end)
  }

  /**
   * Keeps a segment's file open while a read uses it, even if retention deletes it meanwhile. A
   * segment already deleted holds only offsets below logStartOffset now.
   */
  async #withReader<T>(segment: Segment, work: () => Promise<T>): Promise<T> {
    if (segment.deleted) {
      throw new TidewayError(
        'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE',
        `segment ${segment.baseOffset} of ${this.#name()} was deleted by retention`,
      )
    }
    segment.readers++
    this.#readsInFlight++
    try {
      return await work()
    } finally {
      segment.readers--
      if (segment.deleted && segment.readers === 0) await this.#closeQuietly(segment)
      if (--this.#readsInFlight === 0) this.#readsDrained?.()
    }
  }

  /**
   * The first record whose timestamp >= timestampMs, as Kafka answers ListOffsets: the batch is
   * found by its header's maxTimestamp, then opened to find the record. Where its timestamps
   * are the broker's (LogAppendTime: every record has the batch's) or its records do not parse,
   * the answer is the batch's base offset and maxTimestamp. Null when no durable record is that
   * new.
   */
  async offsetForTimestamp(timestampMs: bigint): Promise<{ offset: bigint; timestampMs: bigint } | null> {
    if (this.#closed) throw this.#closedError()
    const highWatermark = this.#highWatermark
    const segment = this.#segments.find((s) => s.maxTimestamp >= timestampMs)
    if (!segment) return null
    const batch = await this.#withReader(segment, async () => {
      let found: BatchHeader | null = null
      await segment.walkHeaders(segment.scanStartForTimestamp(timestampMs), segment.durableSize, (header) => {
        if (header.baseOffset >= highWatermark) return false
        if (header.maxTimestamp < timestampMs) return true
        found = header
        return false
      })
      return found as BatchHeader | null
    })
    if (!batch) return null
    const wholeBatch = { offset: batch.baseOffset, timestampMs: batch.maxTimestamp }
    if (timestampTypeOf(batch.attributes) === TimestampType.logAppendTime) return wholeBatch
    const { records } = await this.read(batch.baseOffset, LOG_OVERHEAD + batch.batchLength)
    // Records that do not parse or inflate (the CRC held, so a client wrote them so): the batch
    // still answers.
    const times = await recordTimes(records.subarray(0, LOG_OVERHEAD + batch.batchLength), batch).catch(() => undefined)
    const first = times?.find((r) => r.timestamp >= timestampMs)
    return first ? { offset: batch.baseOffset + BigInt(first.offsetDelta), timestampMs: first.timestamp } : wholeBatch
  }

  /**
   * Every durable batch from the one containing `fromOffset` (or the log start), in order, up to
   * the high watermark as it moves. For rebuilding state from the log tail; each `batch` is a
   * view of a read buffer. If retention deletes the segment being scanned, the iteration fails
   * with TIDEWAY_ERR_OFFSET_OUT_OF_RANGE.
   */
  async *scanBatchHeaders(fromOffset: bigint): AsyncIterable<{ offset: bigint; header: BatchHeader; batch: Buffer }> {
    let offset = fromOffset < this.logStartOffset ? this.logStartOffset : fromOffset
    while (offset < this.#highWatermark) {
      const { records } = await this.read(offset, SCAN_READ_BYTES)
      if (records.length === 0) return
      for (let at = 0; at < records.length; ) {
        const header = readBatchHeader(records, at)
        const batch = records.subarray(at, at + LOG_OVERHEAD + header.batchLength)
        yield { offset: header.baseOffset, header, batch }
        offset = lastOffsetOf(header) + 1n
        at += batch.length
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Retention

  /**
   * Deletes the oldest sealed segments that are past retention.ms (judged by their newest
   * batch timestamp; a segment without timestamps never expires by time) or whose removal still
   * leaves at least retention.bytes. The active segment is never deleted, so the log end offset
   * survives; logStartOffset moves to the new first segment's base offset. Runs one at a time.
   */
  /**
   * Deletes sealed segments past retention.ms or retention.bytes, and, given `consumedBelow`,
   * every sealed segment whose records all lie below it (pubsub topics: what every subscriber
   * has committed past).
   */
  applyRetention(consumedBelow?: bigint): Promise<{ deletedSegments: number }> {
    if (this.#closed) return Promise.reject(this.#closedError())
    const run = this.#retention.then(() => this.#applyRetention(consumedBelow))
    this.#retention = run.catch(() => {})
    return run
  }

  async #applyRetention(consumedBelow: bigint | undefined): Promise<{ deletedSegments: number }> {
    if (this.#closed || this.#fenced) return { deletedSegments: 0 }
    const { retentionMs, retentionBytes } = this.#config
    const expiredBefore = BigInt(this.#clock.wallMs()) - BigInt(retentionMs)
    let remaining = this.size()
    let deleted = 0
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0]!
      const tooOld = oldest.size === 0 || (oldest.maxTimestamp >= 0n && oldest.maxTimestamp < expiredBefore)
      const expired = retentionMs >= 0 && tooOld
      const oversized = retentionBytes >= 0 && remaining - oldest.size >= retentionBytes
      const consumed = consumedBelow !== undefined && this.#segments[1]!.baseOffset <= consumedBelow
      if (!expired && !oversized && !consumed) break
      this.#segments.shift() // from here on, readers and logStartOffset no longer see it
      oldest.deleted = true
      remaining -= oldest.size
      deleted++
      await this.#deleteSegment(oldest)
    }
    if (deleted > 0) {
      this.#logger.info('retention deleted segments', { deletedSegments: deleted, logStartOffset: this.logStartOffset })
    }
    return { deletedSegments: deleted }
  }

  /**
   * Rename every file to `.deleted`, make that durable, then unlink: a crash in between leaves
   * only `.deleted` files (or index files without a log), which open() removes. The `.log` goes
   * first, so the segment is gone as soon as its first rename is.
   */
  async #deleteSegment(segment: Segment): Promise<void> {
    const present = new Set(await this.#io.readdir(this.dir))
    const names = [SegmentFile.log, SegmentFile.index, SegmentFile.timeIndex]
      .map((suffix) => segmentFileName(segment.baseOffset, suffix))
      .filter((name) => present.has(name))
    for (const name of names) await this.#io.rename(this.#path(name), this.#path(`${name}.deleted`))
    await this.#io.syncDir(this.dir)
    if (segment.readers === 0) await this.#closeQuietly(segment)
    for (const name of names) await this.#io.unlink(this.#path(`${name}.deleted`))
  }

  async #closeQuietly(segment: Segment): Promise<void> {
    await segment.closeFile().catch((err: unknown) => this.#logger.warn('closing a segment file failed', { err }))
  }

  // ---------------------------------------------------------------------------------------------
  // Compaction

  /**
   * One compaction pass (compaction.ts) over the sealed segments below the cleaning point: the
   * first segment with a timestamp newer than now - min.compaction.lag.ms, or the active one
   * (on a dedup topic also the first inside the dedup window, so a key the window may still be
   * asked about is never compacted away). It runs only when there is work: segments sealed since
   * the last pass's checkpoint, or a tombstone that pass kept now past delete.retention.ms.
   * Passes run one at a time; close() stops one at its next batch. Null: nothing was done.
   */
  clean(throttle: IoThrottle): Promise<CompactionResult | null> {
    if (this.#closed) return Promise.reject(this.#closedError())
    this.#cleaning ??= this.#clean(throttle).finally(() => (this.#cleaning = null))
    return this.#cleaning
  }

  async #clean(throttle: IoThrottle): Promise<CompactionResult | null> {
    const config = this.#config.compaction
    if (!config || this.#fenced) return null
    const now = this.#clock.wallMs()
    const segments = this.#cleanableSegments(config, now)
    const cleaningPoint = segments.at(-1)?.nextOffset
    if (cleaningPoint === undefined || (cleaningPoint <= this.#cleanedBelow && now < this.#tombstonesDueMs)) return null
    const protectedLastOffsets = new Set<bigint>()
    for (const { producerId } of this.#producers.list()) {
      for (const batch of this.#producers.stateOf(producerId)?.batches ?? []) protectedLastOffsets.add(batch.lastOffset)
    }
    let result: CompactionResult
    try {
      result = await compact({
        dir: this.dir,
        io: this.#io,
        clock: this.#clock,
        logger: this.#logger,
        segments,
        cleanedBelow: this.#cleanedBelow,
        config,
        segmentBytes: this.#config.segmentBytes,
        indexIntervalBytes: this.#config.indexIntervalBytes,
        protectedLastOffsets,
        throttle,
        signal: this.#cleanerStop.signal,
        withReader: (segment, work) => this.#withReader(segment, work),
        commit: (group, cleaned) => this.#commitCleaned(group, cleaned),
      })
    } catch (err) {
      // Closing, or retention deleted a segment under the pass: the next pass starts over.
      if (this.#cleanerStop.signal.aborted || isTidewayError(err, 'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE')) return null
      throw err
    }
    this.#tombstonesDueMs = result.tombstoneExpiryMs
    if (cleaningPoint > this.#cleanedBelow) {
      await writeFileDurably(this.#io, this.dir, CLEANER_CHECKPOINT, Buffer.from(`${cleaningPoint}\n`))
      this.#cleanedBelow = cleaningPoint
    }
    if (result.groupsSwapped > 0) this.#logger.info('compaction pass', { ...result, tombstoneExpiryMs: undefined, cleaningPoint })
    return result
  }

  #cleanableSegments(config: CompactionConfig, nowMs: number): Segment[] {
    const dedup = this.#config.dedup
    const newestAllowed = BigInt(nowMs - Math.max(config.minLagMs, dedup?.windowMs ?? 0))
    const windowStart = dedup ? this.#logEndOffset - BigInt(dedup.windowRecords) : null
    const sealed = this.#segments.slice(0, -1)
    const end = sealed.findIndex((s) => s.maxTimestamp > newestAllowed || (windowStart !== null && s.nextOffset > windowStart))
    return end < 0 ? sealed : sealed.slice(0, end)
  }

  /**
   * Swaps a cleaned segment in for `group` (compaction.ts, swapIn), taking turns with retention
   * and DeleteRecords. False, with nothing done, when the log no longer holds the group as it
   * was or is closing. A failed step fences the partition: recovery finishes the swap.
   */
  #commitCleaned(group: readonly Segment[], cleaned: Segment): Promise<boolean> {
    const run = this.#retention.then(async () => {
      const at = this.#segments.indexOf(group[0]!)
      const intact = at >= 0 && at + group.length < this.#segments.length && group.every((s, i) => this.#segments[at + i] === s)
      if (this.#closed || this.#fenced || !intact) return false
      let doomed: string[]
      try {
        doomed = await swapIn(this.#io, this.dir, group, cleaned)
      } catch (err) {
        this.#fence(err)
        throw err
      }
      this.#segments.splice(at, group.length, cleaned)
      for (const old of group) {
        old.deleted = true // readers in flight finish on its open file
        if (old.readers === 0) await this.#closeQuietly(old)
      }
      for (const path of doomed) await this.#io.unlink(path)
      return true
    })
    this.#retention = run.catch(() => {})
    return run
  }

  // ---------------------------------------------------------------------------------------------
  // Open, recovery and close

  /**
   * DeleteRecords: makes `offset` the log start offset (-1: the high watermark), durably, before
   * answering; then deletes the sealed segments wholly below it. Records below it inside the
   * first remaining segment stay on disk but are never served. Resolves to the new start.
   */
  deleteRecordsBefore(offset: bigint): Promise<bigint> {
    if (this.#closed) return Promise.reject(this.#closedError())
    const run = this.#retention.then(async () => {
      if (this.#fenced) throw this.#fencedError()
      const target = offset === -1n ? this.#highWatermark : offset
      if (target < 0n || target > this.#highWatermark) {
        throw new TidewayError(
          'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE',
          `cannot delete records before ${offset}: outside [${this.logStartOffset}, ${this.#highWatermark}] of ${this.#name()}`,
        )
      }
      if (target <= this.logStartOffset) return this.logStartOffset
      await writeFileDurably(this.#io, this.dir, LOG_START_OFFSET, Buffer.from(`${target}\n`))
      this.#deletedBelow = target
      await this.#applyRetention(target)
      this.#logger.info('records deleted', { logStartOffset: this.logStartOffset })
      return this.logStartOffset
    })
    this.#retention = run.catch(() => {})
    return run
  }

  /** An offset kept as decimal text (log-start-offset, cleaner-checkpoint), at most the log end; undefined when absent or unreadable. */
  async #loadOffsetFile(present: Set<string>, name: string): Promise<bigint | undefined> {
    if (!present.has(name)) return undefined
    const text = (await this.#io.readFile(this.#path(name))).toString('utf8').trim()
    if (!/^\d+$/.test(text)) {
      // Written whole and renamed into place, so this is damage, not a torn write: act as if absent.
      this.#logger.warn(`ignoring an unreadable ${name} file`, { text: text.slice(0, 40) })
      return undefined
    }
    const offset = BigInt(text)
    return offset > this.#logEndOffset ? this.#logEndOffset : offset
  }

  async #recover(): Promise<void> {
    const io = this.#io
    await mkdirDurably(io, this.dir)
    await finishInterruptedSwaps(io, this.dir, this.#logger)

    const names = await io.readdir(this.dir)
    const logs = new Set(names.filter((n) => parseSegmentFileName(n)?.suffix === SegmentFile.log))
    let removed = false
    for (const name of names) {
      const parsed = parseSegmentFileName(name)
      const orphanIndex =
        parsed !== null && parsed.suffix !== SegmentFile.log && !logs.has(segmentFileName(parsed.baseOffset, SegmentFile.log))
      if (name.endsWith('.deleted') || name.endsWith('.tmp') || orphanIndex) {
        await io.unlink(this.#path(name))
        removed = true
      }
    }
    if (removed) await io.syncDir(this.dir)

    const present = new Set(await io.readdir(this.dir))
    const cleanShutdown = present.has(CLEAN_SHUTDOWN)
    if (cleanShutdown) {
      // From here until the next clean close, the last segment may gain unsynced bytes.
      await io.unlink(this.#path(CLEAN_SHUTDOWN))
      await io.syncDir(this.dir)
    }
    const bases = [...logs].map((n) => parseSegmentFileName(n)!.baseOffset).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    for (let i = 0; i < bases.length; i++) {
      const isLast = i === bases.length - 1
      const nextBase = isLast ? null : bases[i + 1]!
      this.#segments.push(await this.#loadSegment(bases[i]!, nextBase, present, !isLast || cleanShutdown))
    }
    if (this.#segments.length === 0) this.#segments.push(await this.#createSegment(0n))
    // After a crash the last segment's tail may be written but never synced (it was never
    // acknowledged): sync it before it becomes readable, so a consumer never sees a record a
    // power cut could still take back.
    if (!cleanShutdown) await this.#active.file.datasync()
    this.#logEndOffset = this.#active.nextOffset
    this.#highWatermark = this.#active.nextOffset
    this.#deletedBelow = (await this.#loadOffsetFile(present, LOG_START_OFFSET)) ?? 0n
    this.#cleanedBelow = (await this.#loadOffsetFile(present, CLEANER_CHECKPOINT)) ?? 0n
  }

  async #loadSegment(
    baseOffset: bigint,
    nextBase: bigint | null,
    present: Set<string>,
    mayTrustIndexes: boolean,
  ): Promise<Segment> {
    const file = await this.#io.open(this.#path(segmentFileName(baseOffset, SegmentFile.log)), 'write')
    const segment = new Segment(baseOffset, file, this.#clock.wallMs())
    try {
      segment.size = await file.size()
      const trusted = mayTrustIndexes && (await this.#loadVerifiedIndexes(segment, nextBase, present))
      if (!trusted) {
        segment.resetIndexes()
        await this.#scanSegment(segment, nextBase)
      }
      segment.durableSize = segment.size
      if (nextBase === null) segment.rollClockStartMs = await this.#rollClockStart(segment)
      return segment
    } catch (err) {
      await segment.closeFile().catch(() => {})
      throw err
    }
  }

  /**
   * Loads a segment's index files and checks them against the log: plausible entries, the batch
   * at the last offset-index entry really has that offset, and the headers after it lead exactly
   * to the end of the file with offsets following on. False means "scan instead".
   */
  async #loadVerifiedIndexes(segment: Segment, nextBase: bigint | null, present: Set<string>): Promise<boolean> {
    const indexName = segmentFileName(segment.baseOffset, SegmentFile.index)
    const timeName = segmentFileName(segment.baseOffset, SegmentFile.timeIndex)
    if (!present.has(indexName) || !present.has(timeName)) return false
    const index = await this.#io.readFile(this.#path(indexName))
    const last = segment.loadIndexes(index, await this.#io.readFile(this.#path(timeName)))
    if (!last) return false
    // The indexed batch has exactly the indexed offset; later ones follow on, possibly after a
    // gap (compaction removes whole batches).
    let expected = last.offset
    let atIndexed = true
    try {
      const end = await segment.walkHeaders(last.position, segment.size, (header) => {
        if (atIndexed ? header.baseOffset !== expected : header.baseOffset < expected) return false
        atIndexed = false
        segment.trackTail(header, LOG_OVERHEAD + header.batchLength)
        expected = lastOffsetOf(header) + 1n
        return true
      })
      if (end !== segment.size) return false
    } catch {
      return false
    }
    if (segment.lastTimeIndexOffset >= segment.nextOffset && segment.size > 0) return false
    return nextBase === null || segment.nextOffset <= nextBase
  }

  /**
   * Re-reads a segment batch by batch, rebuilding its indexes, and cuts it at the first torn or
   * invalid batch. In the last segment that is a crash's unsynced tail (never acknowledged under
   * `always`); in a sealed one it is corruption, reported loudly, and the later segments are kept.
   */
  async #scanSegment(segment: Segment, nextBase: bigint | null): Promise<void> {
    const isLast = nextBase === null
    let position = 0
    let problem: string | null = null
    const reader = new ChunkedReader(segment.file, segment.size)
    while (position < segment.size) {
      if (position + BATCH_HEADER_SIZE > segment.size) {
        problem = `${segment.size - position} trailing bytes are too few for a batch`
        break
      }
      const length = LOG_OVERHEAD + (await reader.view(position, BATCH_HEADER_SIZE)).readInt32BE(8)
      if (length < BATCH_HEADER_SIZE || position + length > segment.size) {
        problem = `batch at ${position} declares ${length} bytes, ${segment.size - position} remain`
        break
      }
      const batch = await reader.view(position, length)
      let parsed: BatchHeader
      try {
        parsed = validateBatch(batch, 'log')
      } catch (err) {
        problem = `batch at ${position}: ${(err as Error).message}`
        break
      }
      // Offsets ascend; a gap is what compaction leaves where it removed a batch.
      if (parsed.baseOffset < segment.nextOffset) {
        problem = `batch at ${position} has base offset ${parsed.baseOffset}, expected at least ${segment.nextOffset}`
        break
      }
      if (!segment.fitsRelativeOffset(lastOffsetOf(parsed)) || (nextBase !== null && lastOffsetOf(parsed) >= nextBase)) {
        problem = `batch at ${position} ends at offset ${lastOffsetOf(parsed)}, beyond this segment`
        break
      }
      segment.track(parsed, position, this.#config.indexIntervalBytes)
      position += length
    }
    if (problem) {
      const details = {
        segment: segmentFileName(segment.baseOffset, SegmentFile.log),
        truncatedBytes: segment.size - position,
        keptUpToOffset: segment.nextOffset,
        problem,
      }
      if (isLast) this.#logger.warn('recovery: cutting the torn tail of the last segment', details)
      else {
        this.#logger.error(
          'recovery: corruption inside a sealed segment; cutting that segment there and keeping the later ' +
            'segments (the offsets between the cut and the next segment are lost)',
          { ...details, nextSegmentBaseOffset: nextBase },
        )
      }
      await segment.file.truncate(position)
      await segment.file.datasync()
      segment.size = position
    }
    if (!isLast) await this.#writeIndexes(segment)
  }

  /**
   * When the recovered active segment started counting towards segment.ms: its first batch's
   * timestamp, kept within [now - segmentMs, now] so neither a restart nor a producer's skewed
   * clock holds a roll back forever or forces one per append.
   */
  async #rollClockStart(segment: Segment): Promise<number> {
    const now = this.#clock.wallMs()
    if (segment.size === 0) return now
    let first = -1
    await segment.walkHeaders(0, segment.size, (header) => {
      first = Number(header.maxTimestamp)
      return false
    })
    if (first < 0) return now
    return Math.min(now, Math.max(first, now - this.#config.segmentMs))
  }

  /**
   * Waits for queued appends, syncs, writes the active segment's indexes and the clean-shutdown
   * marker (unless fenced), and closes every file. Every later call fails with
   * TIDEWAY_ERR_CLOSED. Rejects with TIDEWAY_ERR_STORAGE_IO if the final sync fails.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#cleanerStop.abort()
    if (this.#flushTimer) clearInterval(this.#flushTimer)
    await this.#admissions // a turn under way finds the log closed, or has queued its batch
    while (this.#writeLoopDone) await this.#writeLoopDone
    await this.#periodicSync
    await this.#cleaning?.catch(() => {})
    await this.#retention
    if (this.#readsInFlight > 0) await new Promise<void>((resolve) => (this.#readsDrained = resolve))
    this.#listeners.clear()
    let failure: unknown = null
    if (!this.#fenced) {
      try {
        await this.#active.file.datasync()
        await this.#writeIndexes(this.#active)
        await this.#snapshotProducers(this.#highWatermark)
        await writeFileDurably(this.#io, this.dir, CLEAN_SHUTDOWN, Buffer.alloc(0))
      } catch (err) {
        this.#fence(err)
        failure = err
      }
    }
    for (const segment of this.#segments) await this.#closeQuietly(segment)
    if (failure) throw new TidewayError('TIDEWAY_ERR_STORAGE_IO', `closing ${this.#name()}`, { cause: failure })
  }

}

function dedupStateFor(config: DedupConfig | undefined): { window: DedupWindow; header: Buffer } | null {
  return config ? { window: new DedupWindow(config), header: Buffer.from(config.header, 'utf8') } : null
}

/** A write (not an fsync) that the filesystem refused for lack of space. */
function isNoSpaceOnWrite(err: unknown): boolean {
  if (!(err instanceof TidewayError) || err.context.phase !== 'write') return false
  const code = (err.cause as { code?: unknown } | undefined)?.code
  return code === 'ENOSPC' || code === 'EDQUOT'
}
