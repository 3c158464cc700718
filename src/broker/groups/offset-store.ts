// Committed consumer-group offsets and group membership, kept durably. The contract every store
// keeps:
// - `load()` is called once, before any other call, and returns every group's latest offsets
//   and latest membership snapshot;
// - `commit`, `saveGroup`, `deleteGroup` and `deleteOffsets` resolve only once the change is
//   durable (on a
//   real disk: written and fsynced), so the coordinator acknowledges nothing a power cut can
//   take back (style.md principle 5); a rejection means the change may or may not survive;
// - changes become durable in call order.
//
// FileOffsetStore keeps them in one append-only log per broker,
// `<dataDir>/__consumer_offsets/commits.log`:
//
//   header   "TWOC" (4 bytes) + format version (uint32 BE, 2; a version 1 log, which has no
//            group records, is read and its header rewritten to 2 so an older broker refuses
//            it instead of taking the new records for a torn tail)
//   record   body length (uint32 BE) + CRC-32C of the body (uint32 BE) + body (JSON, UTF-8)
//
// A body is one of
//   {"t":"commit","g":group,"o":[[topic, partition, "offset", leaderEpoch, metadata, commitMs], ...]}
//   {"t":"group","g":group,"s":{"gen":G,"type":T,"proto":P,"leader":L,"at":wallMs,
//        "m":[[memberId, instanceId, clientId, clientHost, sessionMs, rebalanceMs,
//              metadata (base64), assignment (base64)], ...]}}
//   {"t":"delete-group","g":group}      (offsets and membership)
//   {"t":"delete-offsets","g":group,"p":[[topic, partition], ...]}
// JSON because a record is tiny next to the fsync it waits for, and a human can read the log
// with `strings`; offsets are decimal strings because they are int64.
//
// Start-up replays the log and keeps the last value per (group, topic, partition). Replay stops
// at the first record that is short, too long or fails its CRC: that is a write torn by a
// crash (nothing after it was acknowledged, since records are acknowledged in order), and the
// file is truncated there so appends continue from a clean end.
//
// Concurrent changes share one write and one fsync (group commit). When the log has grown to
// `compactMinBytes` and to twice the size it had after the last compaction, it is rewritten
// with only the live offsets: to `commits.log.compact`, fsync, rename over the log, fsync the
// directory. A crash before the rename leaves the old log (the temp file is deleted at the next
// start); after it, the new one. A failed write or fsync fences the store: every later change
// is refused, and a restart recovers from what is on disk.

import { join } from 'node:path'
import { TidewayError } from '../../errors.ts'
import { silentLogger, type Logger } from '../../logger.ts'
import { crc32c } from '../../protocol/crc32c.ts'
import { mkdirDurably, nodeFileIO, type FileHandle, type FileIO } from '../../storage/file-io.ts'

export interface OffsetKey {
  readonly topic: string
  readonly partition: number
}

export interface CommittedOffset {
  /** The next offset the group will consume, by convention. */
  readonly offset: bigint
  /** -1 when the client did not say. */
  readonly leaderEpoch: number
  readonly metadata: string | null
  /** Wall-clock time of the commit. */
  readonly commitTimestampMs: number
}

export interface OffsetCommitEntry extends OffsetKey, CommittedOffset {}

/** topic → partition → offset. */
export type GroupOffsets = Map<string, Map<number, CommittedOffset>>

/** A member as its group last stood (Kafka keeps the same in __consumer_offsets). */
export interface MemberSnapshot {
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly clientId: string
  readonly clientHost: string
  readonly sessionTimeoutMs: number
  readonly rebalanceTimeoutMs: number
  /** The member's metadata for the group's chosen protocol. */
  readonly metadata: Buffer
  readonly assignment: Buffer
}

/**
 * A group's membership as of its last completed rebalance, or of becoming empty (no members),
 * so a restarted broker knows its members and generation and they carry on without rejoining.
 */
export interface GroupSnapshot {
  readonly generationId: number
  readonly protocolType: string | null
  readonly protocolName: string | null
  readonly leaderId: string | null
  /** Wall-clock time of the snapshot (for an empty group: when it became empty). */
  readonly wallMs: number
  readonly members: readonly MemberSnapshot[]
}

export interface LoadedGroups {
  readonly offsets: Map<string, GroupOffsets>
  readonly snapshots: Map<string, GroupSnapshot>
}

export interface OffsetStore {
  /** Every group's latest committed offsets and membership, read once at start. */
  load(): Promise<LoadedGroups>
  /** Resolves once the offsets are durable. */
  commit(group: string, entries: readonly OffsetCommitEntry[]): Promise<void>
  /** Resolves once the snapshot is durable; it replaces the group's previous one. */
  saveGroup(group: string, snapshot: GroupSnapshot): Promise<void>
  /** Resolves once the group's offsets and snapshot are durably gone. */
  deleteGroup(group: string): Promise<void>
  /** Resolves once these offsets are durably gone. */
  deleteOffsets(group: string, partitions: readonly OffsetKey[]): Promise<void>
  /** Waits for changes in flight, then releases the file. */
  close(): Promise<void>
}

/** Keeps offsets in memory only: for tests of the state machine, where durability is not the subject. */
export class MemoryOffsetStore implements OffsetStore {
  readonly state = new Map<string, GroupOffsets>()
  readonly snapshots = new Map<string, GroupSnapshot>()
  async load(): Promise<LoadedGroups> {
    return { offsets: cloneAll(this.state), snapshots: new Map(this.snapshots) }
  }
  async commit(group: string, entries: readonly OffsetCommitEntry[]): Promise<void> {
    applyCommit(this.state, group, entries)
  }
  async saveGroup(group: string, snapshot: GroupSnapshot): Promise<void> {
    this.snapshots.set(group, snapshot)
  }
  async deleteGroup(group: string): Promise<void> {
    this.state.delete(group)
    this.snapshots.delete(group)
  }
  async deleteOffsets(group: string, partitions: readonly OffsetKey[]): Promise<void> {
    applyDeleteOffsets(this.state, group, partitions)
  }
  async close(): Promise<void> {}
}

export interface FileOffsetStoreOptions {
  /** The directory holding commits.log (the broker uses `<dataDir>/__consumer_offsets`). */
  readonly dir: string
  /** The file layer (tests pass a faulty or simulated disk). */
  readonly io?: FileIO
  readonly logger?: Logger
  /**
   * Compact once the log is at least this big (and twice its size after the last compaction,
   * so a large live set is not rewritten on every commit). Default 8 MiB: about 100,000
   * single-partition commits, which replay in well under a second.
   */
  readonly compactMinBytes?: number
}

const MAGIC = Buffer.from('TWOC', 'latin1')
const FORMAT_VERSION = 2
const HEADER_BYTES = 8
const RECORD_HEADER_BYTES = 8
/** Replay treats a larger declared length as corruption rather than allocating it. */
const MAX_RECORD_BYTES = 64 * 1024 * 1024
/** Commits are split into records of about this size, so no record nears the cap. */
const TARGET_RECORD_BYTES = 1024 * 1024
const DEFAULT_COMPACT_MIN_BYTES = 8 * 1024 * 1024

interface Pending {
  readonly bytes: Buffer
  resolve(): void
  reject(err: unknown): void
}

export class FileOffsetStore implements OffsetStore {
  readonly #dir: string
  readonly #io: FileIO
  readonly #path: string
  readonly #tempPath: string
  readonly #logger: Logger
  readonly #compactMinBytes: number
  /** The latest value of everything written or queued, in call order: what compaction keeps. */
  readonly #state = new Map<string, GroupOffsets>()
  readonly #snapshots = new Map<string, GroupSnapshot>()
  #file: FileHandle | undefined
  #size = 0
  #sizeAfterCompaction = 0
  #queue: Pending[] = []
  #flushing: Promise<void> | undefined
  #fenced: TidewayError | undefined
  #closed = false
  #loaded = false
  #syncs = 0

  constructor(options: FileOffsetStoreOptions) {
    this.#dir = options.dir
    this.#io = options.io ?? nodeFileIO
    this.#path = join(options.dir, 'commits.log')
    this.#tempPath = join(options.dir, 'commits.log.compact')
    this.#logger = options.logger ?? silentLogger
    this.#compactMinBytes = options.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES
  }

  /** How many batches have been fsynced (for tests and metrics: shows commits sharing fsyncs). */
  get syncCount(): number {
    return this.#syncs
  }

  /** The log's current size in bytes (for tests and metrics). */
  get sizeBytes(): number {
    return this.#size
  }

  async load(): Promise<LoadedGroups> {
    if (this.#loaded) throw new TidewayError('TIDEWAY_ERR_CONFIG', 'offset store loaded twice')
    this.#loaded = true
    const io = this.#io
    let content: Buffer | undefined
    try {
      await mkdirDurably(io, this.#dir)
      // A compaction that crashed before its rename.
      if (await io.exists(this.#tempPath)) await io.unlink(this.#tempPath)
      if (await io.exists(this.#path)) content = await io.readFile(this.#path)
    } catch (err) {
      throw storageError('opening the offset log', err)
    }
    if (content === undefined || content.length < HEADER_BYTES) {
      // Missing, or torn while being created (nothing in it was ever acknowledged).
      await this.#createEmptyLog()
    } else {
      const version = content.subarray(0, 4).equals(MAGIC) ? content.readUInt32BE(4) : -1
      if (version !== 1 && version !== FORMAT_VERSION) {
        throw new TidewayError('TIDEWAY_ERR_STORAGE_IO', `${this.#path} is not a version 1 or ${FORMAT_VERSION} offset log`)
      }
      const validEnd = replay(content, this.#state, this.#snapshots)
      this.#file = await io.open(this.#path, 'write')
      if (version !== FORMAT_VERSION) {
        await this.#file.write([header()], 0)
        await this.#file.datasync()
      }
      if (validEnd < content.length) {
        this.#logger.warn('dropping a torn or corrupt tail of the offset log', {
          path: this.#path,
          validBytes: validEnd,
          droppedBytes: content.length - validEnd,
        })
        await this.#file.truncate(validEnd)
        await this.#file.datasync()
      }
      this.#size = validEnd
      this.#sizeAfterCompaction = validEnd
    }
    this.#logger.debug('offset log loaded', { path: this.#path, bytes: this.#size, groups: this.#state.size })
    return { offsets: cloneAll(this.#state), snapshots: new Map(this.#snapshots) }
  }

  saveGroup(group: string, snapshot: GroupSnapshot): Promise<void> {
    const refused = this.#refusal()
    if (refused) return Promise.reject(refused)
    this.#snapshots.set(group, snapshot)
    return this.#append([encodeSnapshot(group, snapshot)])
  }

  commit(group: string, entries: readonly OffsetCommitEntry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve()
    const refused = this.#refusal()
    if (refused) return Promise.reject(refused)
    applyCommit(this.#state, group, entries)
    return this.#append(encodeCommit(group, entries))
  }

  deleteGroup(group: string): Promise<void> {
    const refused = this.#refusal()
    if (refused) return Promise.reject(refused)
    this.#state.delete(group)
    this.#snapshots.delete(group)
    return this.#append([encodeRecord({ t: 'delete-group', g: group })])
  }

  deleteOffsets(group: string, partitions: readonly OffsetKey[]): Promise<void> {
    if (partitions.length === 0) return Promise.resolve()
    const refused = this.#refusal()
    if (refused) return Promise.reject(refused)
    applyDeleteOffsets(this.#state, group, partitions)
    return this.#append([encodeRecord({ t: 'delete-offsets', g: group, p: partitions.map((p) => [p.topic, p.partition]) })])
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#flushing
    await this.#file?.close().catch(() => {})
    this.#file = undefined
  }

  #refusal(): TidewayError | undefined {
    if (!this.#loaded || this.#closed || !this.#file) return new TidewayError('TIDEWAY_ERR_CLOSED', 'offset store is not open')
    return this.#fenced
  }

  #append(records: Buffer[]): Promise<void> {
    const done = records.map(
      (bytes) =>
        new Promise<void>((resolve, reject) => {
          this.#queue.push({ bytes, resolve, reject })
        }),
    )
    this.#flushing ??= this.#flushLoop()
    return done.length === 1 ? done[0]! : Promise.all(done).then(() => undefined)
  }

  /** Writes and fsyncs everything queued, batch after batch: one fsync per batch (group commit). */
  async #flushLoop(): Promise<void> {
    try {
      // Let the rest of this turn of the event loop queue its changes into the same batch.
      await Promise.resolve()
      await this.#drainQueue()
    } catch (err) {
      // #drainQueue handles storage errors itself; anything else is a bug, but must not leave
      // changes waiting forever.
      this.#fence(err)
      this.#flushing = undefined
    }
  }

  async #drainQueue(): Promise<void> {
    for (;;) {
      if (this.#queue.length === 0) {
        // Cleared in the same synchronous step that saw the queue empty, so a change queued
        // after it starts a new loop instead of waiting on this finished one.
        this.#flushing = undefined
        return
      }
      const batch = this.#queue
      this.#queue = []
      if (this.#fenced || !this.#file) {
        for (const p of batch) p.reject(this.#fenced ?? new TidewayError('TIDEWAY_ERR_CLOSED', 'offset store is closed'))
        continue
      }
      try {
        await this.#file.write(
          batch.map((p) => p.bytes),
          this.#size,
        )
        this.#size += batch.reduce((n, p) => n + p.bytes.length, 0)
        await this.#file.datasync()
        this.#syncs++
      } catch (err) {
        this.#fence(err)
        for (const p of batch) p.reject(this.#fenced)
        continue
      }
      for (const p of batch) p.resolve()
      if (this.#size >= this.#compactMinBytes && this.#size >= 2 * this.#sizeAfterCompaction) await this.#compact()
    }
  }

  /** Rewrites the log with only live offsets (see the header for the crash argument). */
  async #compact(): Promise<void> {
    const before = this.#size
    const records = [header()]
    for (const [group, offsets] of this.#state) {
      const entries: OffsetCommitEntry[] = []
      for (const [topic, partitions] of offsets) {
        for (const [partition, committed] of partitions) entries.push({ topic, partition, ...committed })
      }
      if (entries.length > 0) records.push(...encodeCommit(group, entries))
    }
    for (const [group, snapshot] of this.#snapshots) records.push(encodeSnapshot(group, snapshot))
    const size = records.reduce((n, r) => n + r.length, 0)
    const io = this.#io
    try {
      const temp = await io.open(this.#tempPath, 'write')
      try {
        await temp.truncate(0)
        await temp.write(records, 0)
        await temp.datasync()
      } finally {
        await temp.close()
      }
    } catch (err) {
      // The old log is untouched: keep appending to it and try again once it has doubled.
      this.#logger.error('offset log compaction failed; continuing with the uncompacted log', { err, path: this.#path })
      await io.unlink(this.#tempPath).catch(() => {})
      this.#sizeAfterCompaction = this.#size
      return
    }
    try {
      await io.rename(this.#tempPath, this.#path)
      // From here the open handle points at the replaced file: switch before anything else.
      const old = this.#file
      this.#file = await io.open(this.#path, 'write')
      await old?.close().catch(() => {})
      await io.syncDir(this.#dir)
    } catch (err) {
      this.#fence(err)
      return
    }
    this.#size = size
    this.#sizeAfterCompaction = size
    this.#logger.info('compacted the offset log', { path: this.#path, beforeBytes: before, afterBytes: size })
  }

  async #createEmptyLog(): Promise<void> {
    const file = await this.#io.open(this.#path, 'write')
    try {
      await file.truncate(0)
      await file.write([header()], 0)
      await file.datasync()
      await this.#io.syncDir(this.#dir)
    } catch (err) {
      await file.close()
      throw storageError('creating the offset log', err)
    }
    this.#file = file
    this.#size = HEADER_BYTES
    this.#sizeAfterCompaction = HEADER_BYTES
  }

  #fence(err: unknown): void {
    if (this.#fenced) return
    this.#fenced = new TidewayError('TIDEWAY_ERR_STORAGE_FENCED', 'offset log write or fsync failed', {
      cause: err,
      context: { path: this.#path },
    })
    this.#logger.error('offset log fenced after a storage failure; restart the broker to recover', { err, path: this.#path })
    for (const p of this.#queue.splice(0)) p.reject(this.#fenced)
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding and replay

function header(): Buffer {
  const b = Buffer.alloc(HEADER_BYTES)
  MAGIC.copy(b, 0)
  b.writeUInt32BE(FORMAT_VERSION, 4)
  return b
}

function encodeRecord(body: unknown): Buffer {
  return frame(Buffer.from(JSON.stringify(body), 'utf8'))
}

function frame(body: Buffer): Buffer {
  const out = Buffer.alloc(RECORD_HEADER_BYTES + body.length)
  out.writeUInt32BE(body.length, 0)
  out.writeUInt32BE(crc32c(body), 4)
  body.copy(out, RECORD_HEADER_BYTES)
  return out
}

/** One commit as one record, or several when it is large (each offset is independent). */
function encodeCommit(group: string, entries: readonly OffsetCommitEntry[]): Buffer[] {
  const prefix = `{"t":"commit","g":${JSON.stringify(group)},"o":[`
  const records: Buffer[] = []
  let parts: string[] = []
  let length = 0
  const flush = () => {
    records.push(frame(Buffer.from(prefix + parts.join(',') + ']}', 'utf8')))
    parts = []
    length = 0
  }
  for (const e of entries) {
    const part = JSON.stringify([e.topic, e.partition, e.offset.toString(), e.leaderEpoch, e.metadata, e.commitTimestampMs])
    if (parts.length > 0 && length + part.length > TARGET_RECORD_BYTES) flush()
    parts.push(part)
    length += part.length + 1
  }
  if (parts.length > 0) flush()
  return records
}

function encodeSnapshot(group: string, s: GroupSnapshot): Buffer {
  const members = s.members.map((m) => [
    m.memberId,
    m.groupInstanceId,
    m.clientId,
    m.clientHost,
    m.sessionTimeoutMs,
    m.rebalanceTimeoutMs,
    m.metadata.toString('base64'),
    m.assignment.toString('base64'),
  ])
  return encodeRecord({ t: 'group', g: group, s: { gen: s.generationId, type: s.protocolType, proto: s.protocolName, leader: s.leaderId, at: s.wallMs, m: members } })
}

function decodeSnapshot(raw: unknown): GroupSnapshot | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined
  const s = raw as { gen?: unknown; type?: unknown; proto?: unknown; leader?: unknown; at?: unknown; m?: unknown }
  const nullableString = (v: unknown) => v === null || typeof v === 'string'
  if (!Number.isInteger(s.gen) || !nullableString(s.type) || !nullableString(s.proto) || !nullableString(s.leader)) return undefined
  if (typeof s.at !== 'number' || !Array.isArray(s.m)) return undefined
  const members: MemberSnapshot[] = []
  for (const item of s.m as unknown[]) {
    if (!Array.isArray(item) || item.length !== 8) return undefined
    const [memberId, groupInstanceId, clientId, clientHost, sessionTimeoutMs, rebalanceTimeoutMs, metadata, assignment] = item as unknown[]
    if (typeof memberId !== 'string' || !nullableString(groupInstanceId) || typeof clientId !== 'string' || typeof clientHost !== 'string') return undefined
    if (!Number.isInteger(sessionTimeoutMs) || !Number.isInteger(rebalanceTimeoutMs) || typeof metadata !== 'string' || typeof assignment !== 'string') return undefined
    members.push({
      memberId,
      groupInstanceId: groupInstanceId as string | null,
      clientId,
      clientHost,
      sessionTimeoutMs: sessionTimeoutMs as number,
      rebalanceTimeoutMs: rebalanceTimeoutMs as number,
      metadata: Buffer.from(metadata, 'base64'),
      assignment: Buffer.from(assignment, 'base64'),
    })
  }
  return {
    generationId: s.gen as number,
    protocolType: s.type as string | null,
    protocolName: s.proto as string | null,
    leaderId: s.leader as string | null,
    wallMs: s.at,
    members,
  }
}

/** Applies every valid record to the maps; returns the byte position after the last one. */
function replay(content: Buffer, state: Map<string, GroupOffsets>, snapshots: Map<string, GroupSnapshot>): number {
  let pos = HEADER_BYTES
  while (pos + RECORD_HEADER_BYTES <= content.length) {
    const length = content.readUInt32BE(pos)
    const crc = content.readUInt32BE(pos + 4)
    const start = pos + RECORD_HEADER_BYTES
    if (length > MAX_RECORD_BYTES || start + length > content.length) break
    const body = content.subarray(start, start + length)
    if (crc32c(body) !== crc) break
    if (!applyRecord(state, snapshots, body)) break
    pos = start + length
  }
  return pos
}

function applyRecord(state: Map<string, GroupOffsets>, snapshots: Map<string, GroupSnapshot>, body: Buffer): boolean {
  let record: unknown
  try {
    record = JSON.parse(body.toString('utf8'))
  } catch {
    return false
  }
  if (typeof record !== 'object' || record === null) return false
  const r = record as { t?: unknown; g?: unknown; o?: unknown; p?: unknown; s?: unknown }
  if (typeof r.g !== 'string') return false
  switch (r.t) {
    case 'commit': {
      if (!Array.isArray(r.o)) return false
      const entries: OffsetCommitEntry[] = []
      for (const item of r.o as unknown[]) {
        if (!Array.isArray(item) || item.length !== 6) return false
        const [topic, partition, offset, leaderEpoch, metadata, commitTimestampMs] = item as unknown[]
        if (
          typeof topic !== 'string' ||
          !Number.isInteger(partition) ||
          typeof offset !== 'string' ||
          !/^-?\d+$/.test(offset) ||
          !Number.isInteger(leaderEpoch) ||
          (metadata !== null && typeof metadata !== 'string') ||
          typeof commitTimestampMs !== 'number'
        ) {
          return false
        }
        entries.push({
          topic,
          partition: partition as number,
          offset: BigInt(offset),
          leaderEpoch: leaderEpoch as number,
          metadata,
          commitTimestampMs,
        })
      }
      applyCommit(state, r.g, entries)
      return true
    }
    case 'group': {
      const snapshot = decodeSnapshot(r.s)
      if (!snapshot) return false
      snapshots.set(r.g, snapshot)
      return true
    }
    case 'delete-group':
      state.delete(r.g)
      snapshots.delete(r.g)
      return true
    case 'delete-offsets': {
      if (!Array.isArray(r.p)) return false
      const keys: OffsetKey[] = []
      for (const item of r.p as unknown[]) {
        if (!Array.isArray(item) || typeof item[0] !== 'string' || !Number.isInteger(item[1])) return false
        keys.push({ topic: item[0], partition: item[1] as number })
      }
      applyDeleteOffsets(state, r.g, keys)
      return true
    }
    default:
      return false
  }
}

export function applyCommit(state: Map<string, GroupOffsets>, group: string, entries: readonly OffsetCommitEntry[]): void {
  let offsets = state.get(group)
  if (!offsets) state.set(group, (offsets = new Map()))
  for (const e of entries) {
    let partitions = offsets.get(e.topic)
    if (!partitions) offsets.set(e.topic, (partitions = new Map()))
    partitions.set(e.partition, {
      offset: e.offset,
      leaderEpoch: e.leaderEpoch,
      metadata: e.metadata,
      commitTimestampMs: e.commitTimestampMs,
    })
  }
}

export function applyDeleteOffsets(state: Map<string, GroupOffsets>, group: string, keys: readonly OffsetKey[]): void {
  const offsets = state.get(group)
  if (!offsets) return
  for (const k of keys) {
    const partitions = offsets.get(k.topic)
    if (!partitions) continue
    partitions.delete(k.partition)
    if (partitions.size === 0) offsets.delete(k.topic)
  }
  if (offsets.size === 0) state.delete(group)
}

function cloneAll(state: Map<string, GroupOffsets>): Map<string, GroupOffsets> {
  const out = new Map<string, GroupOffsets>()
  for (const [group, offsets] of state) {
    out.set(group, new Map([...offsets].map(([topic, partitions]) => [topic, new Map(partitions)])))
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Errors

function storageError(what: string, cause: unknown): TidewayError {
  return new TidewayError('TIDEWAY_ERR_STORAGE_IO', what, { cause })
}
