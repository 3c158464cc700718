// One segment of a partition log: a `.log` file of RecordBatch v2 bytes, starting at
// `baseOffset`, with two sparse indexes kept in memory and written beside it when the segment
// is sealed (rolled) or the log is closed cleanly.
//
//   <base>.log        whole batches, back to back, exactly as appended
//   <base>.index      (offset - base) u32, file position u32; one entry per ~indexIntervalBytes of
//                     log. Offsets are stored relative to the base so 4 bytes suffice; the log
//                     rolls before a relative offset could overflow.
//   <base>.timeindex  (largest timestamp so far) i64, (offset - base) u32 of the batch that set it;
//                     appended when that maximum grows and ~indexIntervalBytes have passed, plus a
//                     final entry holding the segment's largest timestamp when it is sealed.
//
// All numbers big-endian. Index files carry no checksum: they are derived from the log, checked
// for plausibility on open and rebuilt by re-reading the log whenever in doubt (the model is
// Kafka's OffsetIndex/TimeIndex; an index is never the only record of anything).
//
// `<base>` is the base offset zero-padded to 20 digits, so `ls` sorts segments numerically.

import { TidewayError } from '../errors.ts'
import { BATCH_HEADER_SIZE, LOG_OVERHEAD, lastOffsetOf, readBatchHeader, type BatchHeader } from '../protocol/record-batch.ts'
import type { FileHandle } from './file-io.ts'

export const SegmentFile = { log: '.log', index: '.index', timeIndex: '.timeindex' } as const
export type SegmentFileSuffix = (typeof SegmentFile)[keyof typeof SegmentFile]

const OFFSET_NAME_DIGITS = 20
const OFFSET_ENTRY_SIZE = 8
const TIME_ENTRY_SIZE = 12
/**
 * Header walks read this much at a time, so small batches cost one read per chunk, not per
 * batch. A read's walk spans about one index interval, so a few KiB is plenty.
 */
const WALK_CHUNK = 16 * 1024
/** A relative offset must fit the index's u32; we keep Kafka's tighter int32 bound. */
export const MAX_RELATIVE_OFFSET = 2 ** 31 - 1

export const segmentFileName = (baseOffset: bigint, suffix: SegmentFileSuffix): string =>
  baseOffset.toString().padStart(OFFSET_NAME_DIGITS, '0') + suffix

/** The base offset named by a segment's `.log`, `.index` or `.timeindex` file, or null. */
export function parseSegmentFileName(name: string): { baseOffset: bigint; suffix: SegmentFileSuffix } | null {
  const match = /^(\d{20})(\.log|\.index|\.timeindex)$/.exec(name)
  if (!match) return null
  return { baseOffset: BigInt(match[1]!), suffix: match[2] as SegmentFileSuffix }
}

/** A growable column of u32 values. */
class U32Column {
  #data = new Uint32Array(16)
  length = 0
  push(value: number): void {
    if (this.length === this.#data.length) {
      const bigger = new Uint32Array(this.#data.length * 2)
      bigger.set(this.#data)
      this.#data = bigger
    }
    this.#data[this.length++] = value
  }
  at(i: number): number {
    return this.#data[i]!
  }
}

/** A growable column of timestamps (ms since the epoch fit a double exactly). */
class TimestampColumn {
  #data = new Float64Array(16)
  length = 0
  push(value: number): void {
    if (this.length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2)
      bigger.set(this.#data)
      this.#data = bigger
    }
    this.#data[this.length++] = value
  }
  at(i: number): number {
    return this.#data[i]!
  }
}

/** The largest i in [0, length) with key(i) <= target (keys ascending), or -1. */
function floorIndex(length: number, key: (i: number) => number, target: number): number {
  let lo = 0
  let hi = length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if (key(mid) <= target) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}

export class Segment {
  readonly baseOffset: bigint
  readonly file: FileHandle
  /** Bytes written, durable or not. */
  size = 0
  /** Bytes readers may see: the high watermark's position when this is the active segment. */
  durableSize = 0
  /** The offset after the last batch written. */
  nextOffset: bigint
  /** The largest batch maxTimestamp in the segment (-1 when none), and the batch holding it. */
  maxTimestamp = -1n
  #relativeOffsetOfMax = 0
  /** Wall-clock ms the segment counts its age from, for segment.ms. */
  rollClockStartMs: number
  /** In-flight reads; a segment that left the log closes its file when the last one ends. */
  readers = 0
  /**
   * Set the moment the segment leaves the log (retention deleted it, or compaction swapped its
   * cleaned copy in); no new reader may start.
   */
  deleted = false
  #closing: Promise<void> | null = null

  readonly #indexOffsets = new U32Column()
  readonly #indexPositions = new U32Column()
  #bytesSinceIndexEntry = 0
  readonly #timeStamps = new TimestampColumn()
  readonly #timeOffsets = new U32Column()
  #bytesSinceTimeEntry = 0

  constructor(baseOffset: bigint, file: FileHandle, rollClockStartMs: number) {
    this.baseOffset = baseOffset
    this.file = file
    this.nextOffset = baseOffset
    this.rollClockStartMs = rollClockStartMs
  }

  /** Closes the file once, however many callers ask. */
  closeFile(): Promise<void> {
    this.#closing ??= this.file.close()
    return this.#closing
  }

  /** Records a batch written (or recovered) at `position` in the in-memory indexes. */
  track(header: BatchHeader, position: number, indexIntervalBytes: number): void {
    const relative = Number(header.baseOffset - this.baseOffset)
    const length = LOG_OVERHEAD + header.batchLength
    if (this.#indexOffsets.length === 0 || this.#bytesSinceIndexEntry >= indexIntervalBytes) {
      this.#indexOffsets.push(relative)
      this.#indexPositions.push(position)
      this.#bytesSinceIndexEntry = 0
    }
    this.#bytesSinceIndexEntry += length
    if (header.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = header.maxTimestamp
      this.#relativeOffsetOfMax = relative
      if (this.#timeStamps.length === 0 || this.#bytesSinceTimeEntry >= indexIntervalBytes) {
        this.#timeStamps.push(Number(header.maxTimestamp))
        this.#timeOffsets.push(relative)
        this.#bytesSinceTimeEntry = 0
      }
    }
    this.#bytesSinceTimeEntry += length
    this.nextOffset = lastOffsetOf(header) + 1n
  }

  /** Whether a batch ending at `lastOffset` can still be indexed relative to this segment's base. */
  fitsRelativeOffset(lastOffset: bigint): boolean {
    return lastOffset - this.baseOffset <= BigInt(MAX_RELATIVE_OFFSET)
  }

  /** File position of the last indexed batch whose base offset is <= `offset` (0 if none). */
  positionAtOrBefore(offset: bigint): number {
    const relative = Number(offset - this.baseOffset)
    const i = floorIndex(this.#indexOffsets.length, (j) => this.#indexOffsets.at(j), relative)
    return i < 0 ? 0 : this.#indexPositions.at(i)
  }

  /**
   * Where to start scanning for the first batch whose maxTimestamp >= `timestampMs`: every batch
   * up to the last time-index entry below the target has a smaller timestamp, so scanning from
   * that entry's batch finds the answer without reading the segment from the start.
   */
  scanStartForTimestamp(timestampMs: bigint): number {
    const i = floorIndex(this.#timeStamps.length, (j) => this.#timeStamps.at(j), Number(timestampMs) - 1)
    return i < 0 ? 0 : this.positionAtOrBefore(this.baseOffset + BigInt(this.#timeOffsets.at(i)))
  }

  encodeIndex(): Buffer {
    const out = Buffer.alloc(this.#indexOffsets.length * OFFSET_ENTRY_SIZE)
    for (let i = 0; i < this.#indexOffsets.length; i++) {
      out.writeUInt32BE(this.#indexOffsets.at(i), i * OFFSET_ENTRY_SIZE)
      out.writeUInt32BE(this.#indexPositions.at(i), i * OFFSET_ENTRY_SIZE + 4)
    }
    return out
  }

  /** The time index plus a final entry for the segment's largest timestamp, if not yet there. */
  encodeTimeIndex(): Buffer {
    const count = this.#timeStamps.length
    const last = count > 0 ? this.#timeStamps.at(count - 1) : -1
    const withFinal = this.maxTimestamp >= 0n && Number(this.maxTimestamp) > last
    const out = Buffer.alloc((count + (withFinal ? 1 : 0)) * TIME_ENTRY_SIZE)
    for (let i = 0; i < count; i++) {
      out.writeBigInt64BE(BigInt(this.#timeStamps.at(i)), i * TIME_ENTRY_SIZE)
      out.writeUInt32BE(this.#timeOffsets.at(i), i * TIME_ENTRY_SIZE + 8)
    }
    if (withFinal) {
      out.writeBigInt64BE(this.maxTimestamp, count * TIME_ENTRY_SIZE)
      out.writeUInt32BE(this.#relativeOffsetOfMax, count * TIME_ENTRY_SIZE + 8)
    }
    return out
  }

  /**
   * Loads index files written when this segment was sealed or cleanly closed, after checking
   * they are plausible for a file of `size` bytes: entries ascending, positions inside the file,
   * offset entry 0 at position 0. Returns the position and offset of the last offset-index
   * entry, from which the caller verifies the tail against the log itself; null when the files
   * cannot be trusted (the caller then rebuilds them by scanning the log).
   */
  loadIndexes(index: Buffer, timeIndex: Buffer): { position: number; offset: bigint } | null {
    if (index.length % OFFSET_ENTRY_SIZE !== 0 || timeIndex.length % TIME_ENTRY_SIZE !== 0) return null
    if (this.size === 0) {
      return index.length === 0 && timeIndex.length === 0 ? { position: 0, offset: this.baseOffset } : null
    }
    if (index.length === 0 || timeIndex.length === 0) return null
    let previousOffset = -1
    let previousPosition = -1
    for (let at = 0; at < index.length; at += OFFSET_ENTRY_SIZE) {
      const relative = index.readUInt32BE(at)
      const position = index.readUInt32BE(at + 4)
      if (relative <= previousOffset || position <= previousPosition || position >= this.size) return null
      if (at === 0 && position !== 0) return null // relative 0 unless compaction removed the first batch
      this.#indexOffsets.push(relative)
      this.#indexPositions.push(position)
      previousOffset = relative
      previousPosition = position
    }
    let previousTimestamp = -1n
    for (let at = 0; at < timeIndex.length; at += TIME_ENTRY_SIZE) {
      const timestamp = timeIndex.readBigInt64BE(at)
      const relative = timeIndex.readUInt32BE(at + 8)
      if (timestamp <= previousTimestamp || relative > MAX_RELATIVE_OFFSET) return null
      this.#timeStamps.push(Number(timestamp))
      this.#timeOffsets.push(relative)
      previousTimestamp = timestamp
      this.maxTimestamp = timestamp
      this.#relativeOffsetOfMax = relative
    }
    // A sealed segment gains no more time entries, so these counters only matter if it is the
    // active one after a clean restart: start them full so the next growth is recorded.
    this.#bytesSinceIndexEntry = 0
    this.#bytesSinceTimeEntry = Number.MAX_SAFE_INTEGER
    return { position: previousPosition, offset: this.baseOffset + BigInt(previousOffset) }
  }

  /** After a verified load: account for batches past the last index entry (the verified tail). */
  trackTail(header: BatchHeader, length: number): void {
    this.#bytesSinceIndexEntry += length
    if (header.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = header.maxTimestamp
      this.#relativeOffsetOfMax = Number(header.baseOffset - this.baseOffset)
    }
    this.nextOffset = lastOffsetOf(header) + 1n
  }

  /** The largest relative offset any time-index entry names (to check it against the log). */
  get lastTimeIndexOffset(): bigint {
    const n = this.#timeOffsets.length
    return n === 0 ? this.baseOffset : this.baseOffset + BigInt(this.#timeOffsets.at(n - 1))
  }

  /** Forgets the indexes (before a rebuilding scan). */
  resetIndexes(): void {
    this.#indexOffsets.length = 0
    this.#indexPositions.length = 0
    this.#timeStamps.length = 0
    this.#timeOffsets.length = 0
    this.#bytesSinceIndexEntry = 0
    this.#bytesSinceTimeEntry = 0
    this.maxTimestamp = -1n
    this.#relativeOffsetOfMax = 0
    this.nextOffset = this.baseOffset
  }

  /**
   * Visits the headers of consecutive batches from `position` until `limit` or until `visit`
   * returns false, reading in chunks. Returns the position reached (the stopping batch's start
   * when visit said stop). Only structure is checked (each header fits, each batch ends inside
   * `limit`); a violation throws TIDEWAY_ERR_CORRUPT_BATCH.
   */
  async walkHeaders(
    position: number,
    limit: number,
    visit: (header: BatchHeader, position: number) => boolean | void,
  ): Promise<number> {
    const chunk = Buffer.allocUnsafe(Math.min(WALK_CHUNK, Math.max(limit - position, BATCH_HEADER_SIZE)))
    let view = chunk.subarray(0, 0)
    let viewStart = position
    let lastLength = 0
    while (position < limit) {
      if (position + BATCH_HEADER_SIZE > limit) {
        throw corruptAt(this, position, `${limit - position} bytes are too few for a batch header`)
      }
      if (position + BATCH_HEADER_SIZE > viewStart + view.length) {
        // Large batches: read just the next header rather than a chunk that is mostly records.
        const want = Math.min(limit - position, lastLength > chunk.length ? BATCH_HEADER_SIZE : chunk.length)
        view = chunk.subarray(0, want)
        viewStart = position
        await readFully(this.file, view, position)
      }
      const header = readBatchHeader(view, position - viewStart)
      const length = LOG_OVERHEAD + header.batchLength
      if (length < BATCH_HEADER_SIZE || position + length > limit) {
        const remain = limit - position - LOG_OVERHEAD
        throw corruptAt(this, position, `batch declares ${header.batchLength} bytes, ${remain} remain`)
      }
      if (visit(header, position) === false) return position
      position += length
      lastLength = length
    }
    return position
  }
}

function corruptAt(segment: Segment, position: number, detail: string): TidewayError {
  const file = segmentFileName(segment.baseOffset, SegmentFile.log)
  return new TidewayError('TIDEWAY_ERR_CORRUPT_BATCH', `${file} at ${position}: ${detail}`)
}

/**
 * Views of consecutive byte ranges of a file, read a chunk at a time: recovery validates a
 * segment batch by batch without a system call per batch. A view is valid until the next call.
 */
export class ChunkedReader {
  readonly #file: FileHandle
  readonly #end: number
  readonly #chunk: Buffer
  #view: Buffer = Buffer.alloc(0)
  #viewStart = 0

  constructor(file: FileHandle, end: number, chunkBytes = 1024 * 1024) {
    this.#file = file
    this.#end = end
    this.#chunk = Buffer.allocUnsafe(Math.max(0, Math.min(chunkBytes, end)))
  }

  async view(position: number, length: number): Promise<Buffer> {
    const offset = position - this.#viewStart
    if (offset >= 0 && offset + length <= this.#view.length) return this.#view.subarray(offset, offset + length)
    if (length > this.#chunk.length) {
      const whole = Buffer.allocUnsafe(length)
      await readFully(this.#file, whole, position)
      return whole
    }
    this.#view = this.#chunk.subarray(0, Math.min(this.#chunk.length, this.#end - position))
    this.#viewStart = position
    await readFully(this.#file, this.#view, position)
    return this.#view.subarray(0, length)
  }
}

/** Fills `buffer` from `position`; the file ending first is a storage fault (the data was promised). */
/** Reads at least this much per slice when a large read is split (below it, one read). */
const PARALLEL_READ_SLICE = 4 * 1024 * 1024
const PARALLEL_READ_SLICES = 4

/**
 * readFully for a large read (a fetch answer of tens of MiB): split into up to 4 slices read at
 * once, so the libuv thread pool copies them from the page cache in parallel. One 50 MiB pread
 * took 42 ms on the development machine, four at once 18-23 ms.
 */
export async function readFullyParallel(file: FileHandle, buffer: Buffer, position: number): Promise<void> {
  const slices = Math.min(PARALLEL_READ_SLICES, Math.floor(buffer.length / PARALLEL_READ_SLICE))
  if (slices <= 1) return readFully(file, buffer, position)
  const size = Math.ceil(buffer.length / slices)
  const reads: Promise<void>[] = []
  for (let at = 0; at < buffer.length; at += size) {
    reads.push(readFully(file, buffer.subarray(at, Math.min(buffer.length, at + size)), position + at))
  }
  await Promise.all(reads)
}

export async function readFully(file: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let filled = 0
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled), position + filled)
    if (n === 0) {
      throw new TidewayError('TIDEWAY_ERR_STORAGE_IO', `file ended at ${position + filled}, ${buffer.length - filled} bytes short`)
    }
    filled += n
  }
}
