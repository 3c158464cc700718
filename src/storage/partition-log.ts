// One partition's log: segment files named by base offset, each holding RecordBatch v2 bytes
// exactly as the client sent them (only baseOffset and partitionLeaderEpoch rewritten).
//
// Guarantees
// - Offsets are dense, assigned in call order, never reused or shifted by retention or restart.
// - Durability (flush policy): `always` resolves an append only after an fdatasync that covers
//   it; appends that arrive while a sync is in flight share the next one (group commit).
//   `interval` resolves after the write and syncs every intervalMs (an OS crash or power loss
//   loses up to intervalMs of acknowledged data; a process crash loses nothing). `never` leaves
//   syncing to the OS.
// - The high watermark is the end of what is durable under the policy; reads never go past it,
//   so a consumer never sees a batch a crash could take back.
// - A failed write or fsync fences the partition: the appends it covered and every later one
//   reject with a retriable storage error, the failure is logged once, and the fsync is never
//   retried to then acknowledge (after a failed fsync the kernel may have dropped the dirty
//   pages, so a second fsync can "succeed" without the data). Reads keep serving durable data;
//   a restart recovers.
// - Recovery on open: the last segment is re-read batch by batch (length, magic, CRC-32C) and cut
//   at the first torn or invalid batch; older segments are trusted (they were fsynced when
//   rolled) unless their index files are missing or implausible, in which case they are scanned
//   too. Indexes carry no checksum: they are derived data, rebuilt whenever in doubt.
//
// Index files (written durably when a segment is rolled):
//   .index      sparse: (offset - baseOffset) u32, file position u32, every ~indexIntervalBytes
//   .timeindex  (max timestamp so far) i64, (offset - baseOffset) u32, whenever the max grows;
//               so the first entry >= t names exactly the first batch whose max timestamp >= t.

import type { Clock } from '../clock.ts'
import { TidewayError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import {
  BATCH_HEADER_SIZE,
  LOG_OVERHEAD,
  lastOffsetOf,
  readBatchHeader,
  validateBatch,
  writeBaseOffset,
  writePartitionLeaderEpoch,
  type BatchHeader,
} from '../protocol/record-batch.ts'
import { writeFileDurably, type FileHandle, type FileIO } from './file-io.ts'

export type FlushPolicy = { mode: 'always' } | { mode: 'interval'; intervalMs: number } | { mode: 'never' }

export interface LogConfig {
  segmentBytes: number
  segmentMs: number
  retentionMs: number
  retentionBytes: number
  indexIntervalBytes: number
  flush: FlushPolicy
}

export interface AppendResult {
  baseOffset: bigint
  lastOffset: bigint
  /** -1 for CreateTime topics (the only kind so far). */
  logAppendTimeMs: bigint
  logStartOffset: bigint
}

export interface ReadResult {
  /** Whole batches, possibly empty. */
  records: Buffer
  highWatermark: bigint
  logStartOffset: bigint
}

const SEGMENT_NAME_DIGITS = 20
const READ_CHUNK = 64 * 1024

/** So `ls` sorts segments numerically. */
export const segmentName = (baseOffset: bigint, suffix: string) =>
  baseOffset.toString().padStart(SEGMENT_NAME_DIGITS, '0') + suffix

class Segment {
  readonly baseOffset: bigint
  readonly file: FileHandle
  /** Bytes written (durable or not). */
  size = 0
  /** Bytes covered by the high watermark: readers stop here. */
  durableSize = 0
  /** Offset after the last batch written. */
  nextOffset: bigint
  maxTimestamp = -1n
  createdMs: number
  /** Sparse offset index (relative offset, position), ascending. */
  indexOffsets: number[] = []
  indexPositions: number[] = []
  bytesSinceIndex = 0
  /** Time index (max timestamp so far, relative offset). */
  timeStamps: number[] = []
  timeOffsets: number[] = []

  constructor(baseOffset: bigint, file: FileHandle, createdMs: number) {
    this.baseOffset = baseOffset
    this.file = file
    this.nextOffset = baseOffset
    this.createdMs = createdMs
  }

  /** Updates the in-memory indexes for a batch written at `position`. */
  track(header: BatchHeader, position: number, length: number, indexIntervalBytes: number): void {
    const relative = Number(header.baseOffset - this.baseOffset)
    if (this.indexOffsets.length === 0 || this.bytesSinceIndex >= indexIntervalBytes) {
      this.indexOffsets.push(relative)
      this.indexPositions.push(position)
      this.bytesSinceIndex = 0
    }
    this.bytesSinceIndex += length
    if (header.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = header.maxTimestamp
      this.timeStamps.push(Number(header.maxTimestamp))
      this.timeOffsets.push(relative)
    }
    this.nextOffset = lastOffsetOf(header) + 1n
  }

  /** File position of the last indexed batch at or before `offset`. */
  lookup(offset: bigint): number {
    const relative = Number(offset - this.baseOffset)
    let lo = 0
    let hi = this.indexOffsets.length - 1
    let found = 0
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (this.indexOffsets[mid]! <= relative) {
        found = this.indexPositions[mid]!
        lo = mid + 1
      } else hi = mid - 1
    }
    return found
  }

  encodeIndex(): Buffer {
    const out = Buffer.alloc(this.indexOffsets.length * 8)
    this.indexOffsets.forEach((rel, i) => {
      out.writeUInt32BE(rel, i * 8)
      out.writeUInt32BE(this.indexPositions[i]!, i * 8 + 4)
    })
    return out
  }

  encodeTimeIndex(): Buffer {
    const out = Buffer.alloc(this.timeStamps.length * 12)
    this.timeStamps.forEach((ts, i) => {
      out.writeBigInt64BE(BigInt(ts), i * 12)
      out.writeUInt32BE(this.timeOffsets[i]!, i * 12 + 8)
    })
    return out
  }
}

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
  readonly #segments: Segment[] = []
  #logEndOffset = 0n
  #highWatermark = 0n
  #queue: PendingAppend[] = []
  #writing: Promise<void> | null = null
  #fenced: TidewayError | null = null
  #closed = false
  #dirty = false
  #flushTimer: NodeJS.Timeout | null = null
  readonly #listeners = new Set<(hw: bigint) => void>()

  private constructor(options: PartitionLogOptions) {
    this.topic = options.topic
    this.partition = options.partition
    this.dir = options.dir
    this.#io = options.io
    this.#clock = options.clock
    this.#logger = options.logger.child({ topic: options.topic, partition: options.partition })
    this.#config = options.config
  }

  static async open(options: PartitionLogOptions): Promise<PartitionLog> {
    const log = new PartitionLog(options)
    await log.#recover()
    if (log.#config.flush.mode === 'interval') log.#startFlushTimer(log.#config.flush.intervalMs)
    return log
  }

  get logStartOffset(): bigint {
    return this.#segments[0]!.baseOffset
  }
  get logEndOffset(): bigint {
    return this.#logEndOffset
  }
  get highWatermark(): bigint {
    return this.#highWatermark
  }
  get fenced(): TidewayError | null {
    return this.#fenced
  }
  get segmentCount(): number {
    return this.#segments.length
  }
  size(): number {
    return this.#segments.reduce((sum, s) => sum + s.size, 0)
  }

  /** Applies new topic settings (segment size, retention) from now on. */
  reconfigure(config: LogConfig): void {
    this.#config = { ...config, flush: this.#config.flush }
  }

  onHighWatermark(listener: (hw: bigint) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  // ---------------------------------------------------------------------------------------------
  // Append

  /**
   * Appends one validated batch. Its offsets are assigned now, in call order; the promise
   * resolves when the batch is durable under the flush policy.
   */
  append(batch: Buffer, header: BatchHeader): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new TidewayError('TIDEWAY_ERR_CLOSED', `${this.topic}-${this.partition}`))
    if (this.#fenced) return Promise.reject(this.#fencedError())
    const baseOffset = this.#logEndOffset
    writeBaseOffset(batch, baseOffset)
    writePartitionLeaderEpoch(batch, 0)
    const assigned = { ...header, baseOffset }
    this.#logEndOffset = lastOffsetOf(assigned) + 1n
    return new Promise((resolve, reject) => {
      this.#queue.push({ batch, header: assigned, resolve, reject })
      this.#writing ??= this.#writeLoop()
    })
  }

  /**
   * Drains the queue: each round writes every queued batch, then (policy `always`) one
   * fdatasync covers them all. Appends arriving meanwhile wait for the next round.
   */
  async #writeLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const group = this.#queue
        this.#queue = []
        try {
          await this.#writeGroup(group)
        } catch (err) {
          this.#fence(err)
          const failure = this.#fencedError()
          for (const pending of [...group, ...this.#queue]) pending.reject(failure)
          this.#queue = []
          return
        }
        this.#advanceHighWatermark(this.#active.durableSize)
        const logStartOffset = this.logStartOffset
        for (const { header, resolve } of group) {
          resolve({ baseOffset: header.baseOffset, lastOffset: lastOffsetOf(header), logAppendTimeMs: -1n, logStartOffset })
        }
      }
    } finally {
      this.#writing = null
    }
  }

  async #writeGroup(group: PendingAppend[]): Promise<void> {
    let buffers: Buffer[] = []
    let start = this.#active.size
    const flushBuffers = async () => {
      if (buffers.length === 0) return
      await this.#active.file.write(buffers, start)
      buffers = []
    }
    for (const { batch, header } of group) {
      if (this.#shouldRoll(batch.length)) {
        await flushBuffers()
        await this.#roll(header.baseOffset)
        start = this.#active.size
      }
      const segment = this.#active
      segment.track(header, segment.size, batch.length, this.#config.indexIntervalBytes)
      segment.size += batch.length
      buffers.push(batch)
    }
    await flushBuffers()
    if (this.#config.flush.mode === 'always') await this.#active.file.datasync()
    else this.#dirty = true
    this.#active.durableSize = this.#active.size
  }

  get #active(): Segment {
    return this.#segments[this.#segments.length - 1]!
  }

  #shouldRoll(incoming: number): boolean {
    const active = this.#active
    if (active.size === 0) return false
    if (active.size + incoming > this.#config.segmentBytes) return true
    return this.#clock.wallMs() - active.createdMs >= this.#config.segmentMs
  }

  /** Seals the active segment (synced, indexes written) and starts a new one at `baseOffset`. */
  async #roll(baseOffset: bigint): Promise<void> {
    const sealed = this.#active
    await sealed.file.datasync()
    sealed.durableSize = sealed.size
    await this.#writeIndexes(sealed)
    const segment = await this.#createSegment(baseOffset)
    this.#segments.push(segment)
  }

  async #createSegment(baseOffset: bigint): Promise<Segment> {
    const file = await this.#io.open(`${this.dir}/${segmentName(baseOffset, '.log')}`, 'write')
    await this.#io.syncDir(this.dir) // the new file's directory entry must survive a power loss
    return new Segment(baseOffset, file, this.#clock.wallMs())
  }

  async #writeIndexes(segment: Segment): Promise<void> {
    await writeFileDurably(this.#io, this.dir, segmentName(segment.baseOffset, '.index'), segment.encodeIndex())
    await writeFileDurably(this.#io, this.dir, segmentName(segment.baseOffset, '.timeindex'), segment.encodeTimeIndex())
  }

  #advanceHighWatermark(durableSizeOfActive: number): void {
    this.#active.durableSize = durableSizeOfActive
    const hw = this.#active.nextOffset
    if (hw <= this.#highWatermark) return
    this.#highWatermark = hw
    for (const listener of [...this.#listeners]) listener(hw)
  }

  #startFlushTimer(intervalMs: number): void {
    this.#flushTimer = setInterval(() => {
      if (!this.#dirty || this.#fenced || this.#closed) return
      this.#dirty = false
      this.#active.file.datasync().catch((err: unknown) => this.#fence(err))
    }, intervalMs)
    this.#flushTimer.unref()
  }

  #fence(cause: unknown): void {
    if (this.#fenced) return
    this.#fenced = new TidewayError('TIDEWAY_ERR_STORAGE_FENCED', `${this.topic}-${this.partition}`, { cause })
    this.#logger.error('storage failure: partition fenced until restart', { err: cause })
  }

  #fencedError(): TidewayError {
    return new TidewayError('TIDEWAY_ERR_STORAGE_FENCED', `${this.topic}-${this.partition}`, { cause: this.#fenced?.cause })
  }

  // ---------------------------------------------------------------------------------------------
  // Read

  /**
   * Whole batches from the one containing `fetchOffset`, up to `maxBytes` (at least one batch,
   * KIP-74), never past the high watermark. Data comes from a single segment per call.
   */
  async read(fetchOffset: bigint, maxBytes: number): Promise<ReadResult> {
    if (this.#closed) throw new TidewayError('TIDEWAY_ERR_CLOSED', `${this.topic}-${this.partition}`)
    const highWatermark = this.#highWatermark
    const logStartOffset = this.logStartOffset
    if (fetchOffset < logStartOffset || fetchOffset > highWatermark) {
      throw new TidewayError(
        'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE',
        `offset ${fetchOffset} is outside [${logStartOffset}, ${highWatermark}] of ${this.topic}-${this.partition}`,
      )
    }
    const empty = { records: Buffer.alloc(0), highWatermark, logStartOffset }
    if (fetchOffset === highWatermark) return empty

    for (let i = this.#segmentIndexFor(fetchOffset); i < this.#segments.length; i++) {
      const segment = this.#segments[i]!
      const limit = segment.durableSize
      const start = await this.#findBatch(segment, fetchOffset, limit)
      if (start === null) continue // offset is past this segment's data (e.g. after a recovered gap)
      const records = await this.#readWholeBatches(segment, start, limit, maxBytes, highWatermark)
      return { records, highWatermark, logStartOffset }
    }
    return empty
  }

  #segmentIndexFor(offset: bigint): number {
    let lo = 0
    let hi = this.#segments.length - 1
    let found = 0
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (this.#segments[mid]!.baseOffset <= offset) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return found
  }

  /** Position of the first batch in `segment` whose last offset is >= offset, or null. */
  async #findBatch(segment: Segment, offset: bigint, limit: number): Promise<number | null> {
    let position = segment.lookup(offset)
    const header = Buffer.allocUnsafe(BATCH_HEADER_SIZE)
    while (position + BATCH_HEADER_SIZE <= limit) {
      await this.#readExactly(segment.file, header, position)
      const h = readBatchHeader(header)
      if (lastOffsetOf(h) >= offset) return position
      position += LOG_OVERHEAD + h.batchLength
    }
    return null
  }

  async #readWholeBatches(segment: Segment, start: number, limit: number, maxBytes: number, hw: bigint): Promise<Buffer> {
    const want = Math.min(limit - start, Math.max(maxBytes, BATCH_HEADER_SIZE))
    let chunk = Buffer.allocUnsafe(Math.min(want, Math.max(READ_CHUNK, maxBytes)))
    await this.#readExactly(segment.file, chunk, start)
    const firstLength = LOG_OVERHEAD + chunk.readInt32BE(8)
    if (firstLength > chunk.length) {
      // The first batch is larger than maxBytes: return it whole anyway (KIP-74).
      chunk = Buffer.allocUnsafe(firstLength)
      await this.#readExactly(segment.file, chunk, start)
      return chunk
    }
    let end = 0
    while (end + LOG_OVERHEAD <= chunk.length) {
      const length = LOG_OVERHEAD + chunk.readInt32BE(end + 8)
      if (end + length > chunk.length || chunk.readBigInt64BE(end) >= hw) break
      end += length
    }
    return chunk.subarray(0, end)
  }

  async #readExactly(file: FileHandle, buffer: Buffer, position: number): Promise<void> {
    let filled = 0
    while (filled < buffer.length) {
      const n = await file.read(buffer.subarray(filled), position + filled)
      if (n === 0) throw new TidewayError('TIDEWAY_ERR_STORAGE_IO', `short read at ${position + filled} in ${this.dir}`)
      filled += n
    }
  }

  /** The first batch whose max timestamp is >= timestampMs (batch granularity), or null. */
  async offsetForTimestamp(timestampMs: bigint): Promise<{ offset: bigint; timestampMs: bigint } | null> {
    const target = Number(timestampMs)
    for (const segment of this.#segments) {
      if (segment.maxTimestamp < timestampMs) continue
      const i = segment.timeStamps.findIndex((ts) => ts >= target)
      if (i < 0) continue
      const offset = segment.baseOffset + BigInt(segment.timeOffsets[i]!)
      if (offset >= this.#highWatermark) return null
      return { offset, timestampMs: BigInt(segment.timeStamps[i]!) }
    }
    return null
  }

  /** Durable batches from the one containing `fromOffset`, in order. */
  async *scanBatchHeaders(fromOffset: bigint): AsyncIterable<{ offset: bigint; header: BatchHeader; batch: Buffer }> {
    let offset = fromOffset < this.logStartOffset ? this.logStartOffset : fromOffset
    while (offset < this.#highWatermark) {
      const { records } = await this.read(offset, 1024 * 1024)
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
   * Deletes the oldest non-active segments that are past retention.ms (by their newest record)
   * or that keep the partition above retention.bytes. The log start offset moves to the new first
   * segment; offsets themselves never change.
   */
  async applyRetention(): Promise<{ deletedSegments: number }> {
    if (this.#closed || this.#fenced) return { deletedSegments: 0 }
    const { retentionMs, retentionBytes } = this.#config
    const now = BigInt(this.#clock.wallMs())
    let total = this.size()
    let deleted = 0
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0]!
      const expired = retentionMs >= 0 && oldest.maxTimestamp >= 0n && oldest.maxTimestamp < now - BigInt(retentionMs)
      const oversized = retentionBytes >= 0 && total - oldest.size >= retentionBytes
      if (!expired && !oversized) break
      this.#segments.shift()
      total -= oldest.size
      deleted++
      await this.#deleteSegmentFiles(oldest)
    }
    if (deleted > 0) {
      this.#logger.info('retention deleted segments', { deletedSegments: deleted, logStartOffset: this.logStartOffset })
    }
    return { deletedSegments: deleted }
  }

  /** Rename-then-unlink, so a crash in between leaves only `.deleted` files that open() removes. */
  async #deleteSegmentFiles(segment: Segment): Promise<void> {
    const names = ['.log', '.index', '.timeindex'].map((suffix) => segmentName(segment.baseOffset, suffix))
    const present = new Set(await this.#io.readdir(this.dir))
    for (const name of names) if (present.has(name)) await this.#io.rename(`${this.dir}/${name}`, `${this.dir}/${name}.deleted`)
    await this.#io.syncDir(this.dir)
    // Readers may still hold the handle: close it a little later rather than under them.
    setTimeout(() => void segment.file.close().catch(() => {}), 30_000).unref()
    for (const name of names) if (present.has(name)) await this.#io.unlink(`${this.dir}/${name}.deleted`)
  }

  // ---------------------------------------------------------------------------------------------
  // Open, recovery and close

  async #recover(): Promise<void> {
    await this.#io.mkdirp(this.dir)
    const names = await this.#io.readdir(this.dir)
    for (const name of names) {
      if (name.endsWith('.deleted') || name.endsWith('.tmp')) await this.#io.unlink(`${this.dir}/${name}`)
    }
    const bases = names
      .filter((n) => /^\d{20}\.log$/.test(n))
      .map((n) => BigInt(n.slice(0, SEGMENT_NAME_DIGITS)))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const present = new Set(names)
    if (bases.length === 0) {
      this.#segments.push(await this.#createSegment(0n))
    }
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!
      const isLast = i === bases.length - 1
      const file = await this.#io.open(`${this.dir}/${segmentName(base, '.log')}`, 'write')
      const segment = new Segment(base, file, this.#clock.wallMs())
      segment.size = await file.size()
      const trusted = !isLast && (await this.#loadIndexes(segment, bases[i + 1]!, present))
      if (!trusted) await this.#scanSegment(segment, isLast)
      segment.durableSize = segment.size
      this.#segments.push(segment)
    }
    const active = this.#active
    this.#logEndOffset = active.nextOffset
    this.#highWatermark = active.nextOffset
  }

  /** Loads a sealed segment's index files; false when missing or implausible (then we scan). */
  async #loadIndexes(segment: Segment, nextBase: bigint, present: Set<string>): Promise<boolean> {
    const indexName = segmentName(segment.baseOffset, '.index')
    const timeName = segmentName(segment.baseOffset, '.timeindex')
    if (!present.has(indexName) || !present.has(timeName)) return false
    const index = await this.#io.readFile(`${this.dir}/${indexName}`)
    const time = await this.#io.readFile(`${this.dir}/${timeName}`)
    if (index.length % 8 !== 0 || time.length % 12 !== 0 || (segment.size > 0 && index.length === 0)) return false
    const span = Number(nextBase - segment.baseOffset)
    let lastPosition = -1
    let lastRelative = -1
    for (let at = 0; at < index.length; at += 8) {
      const relative = index.readUInt32BE(at)
      const position = index.readUInt32BE(at + 4)
      if (relative <= lastRelative || position <= lastPosition || position >= segment.size || relative >= span) return false
      segment.indexOffsets.push(relative)
      segment.indexPositions.push(position)
      lastRelative = relative
      lastPosition = position
    }
    for (let at = 0; at < time.length; at += 12) {
      const ts = time.readBigInt64BE(at)
      const relative = time.readUInt32BE(at + 8)
      if (ts < segment.maxTimestamp || relative >= span) return false
      segment.timeStamps.push(Number(ts))
      segment.timeOffsets.push(relative)
      segment.maxTimestamp = ts
    }
    segment.nextOffset = nextBase
    return true
  }

  /**
   * Re-reads a segment batch by batch, rebuilding its indexes, and cuts it at the first torn or
   * invalid batch. In the last segment that is a crash's unsynced tail (never acknowledged); in
   * an older one it is corruption, reported loudly, and the later segments are kept.
   */
  async #scanSegment(segment: Segment, isLast: boolean): Promise<void> {
    let position = 0
    let expectedOffset = segment.baseOffset
    let problem: string | null = null
    const header = Buffer.allocUnsafe(BATCH_HEADER_SIZE)
    while (position < segment.size) {
      if (position + BATCH_HEADER_SIZE > segment.size) {
        problem = `${segment.size - position} trailing bytes`
        break
      }
      await this.#readExactly(segment.file, header, position)
      const length = LOG_OVERHEAD + header.readInt32BE(8)
      if (length < BATCH_HEADER_SIZE || position + length > segment.size) {
        problem = `batch at ${position} declares ${length} bytes, ${segment.size - position} remain`
        break
      }
      const batch = Buffer.allocUnsafe(length)
      await this.#readExactly(segment.file, batch, position)
      let parsed: BatchHeader
      try {
        parsed = validateBatch(batch)
      } catch (err) {
        problem = `batch at ${position}: ${(err as Error).message}`
        break
      }
      if (parsed.baseOffset !== expectedOffset) {
        problem = `batch at ${position} has base offset ${parsed.baseOffset}, expected ${expectedOffset}`
        break
      }
      segment.track(parsed, position, length, this.#config.indexIntervalBytes)
      expectedOffset = segment.nextOffset
      position += length
    }
    if (problem) {
      const details = { segment: segmentName(segment.baseOffset, '.log'), truncatedBytes: segment.size - position, nextOffset: expectedOffset, problem }
      if (isLast) this.#logger.warn('recovery: truncating torn tail of the active segment', details)
      else this.#logger.error('recovery: corruption inside a sealed segment; truncating it there, later segments kept', details)
      await segment.file.truncate(position)
      await segment.file.datasync()
      segment.size = position
    }
    if (!isLast) await this.#writeIndexes(segment)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    while (this.#writing) await this.#writing
    this.#closed = true
    if (this.#flushTimer) clearInterval(this.#flushTimer)
    this.#listeners.clear()
    for (const segment of this.#segments) {
      if (!this.#fenced) await segment.file.datasync().catch((err: unknown) => this.#fence(err))
      await segment.file.close().catch(() => {})
    }
  }
}

export interface PartitionLogOptions {
  dir: string
  topic: string
  partition: number
  io: FileIO
  config: LogConfig
  clock: Clock
  logger: Logger
}
