// Shared setup for the storage tests: temp directories cleaned after each test, a log opener
// with small defaults, a capturing logger, and a "crash" that copies a live log's directory as
// a killed process would leave it (every written byte, no clean-shutdown marker, stale indexes).
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'node:test'
import { ManualClock, type Clock } from '../../../src/clock.ts'
import type { Logger } from '../../../src/logger.ts'
import { lastOffsetOf, readBatchHeader } from '../../../src/protocol/record-batch.ts'
import { nodeFileIO, type FileIO } from '../../../src/storage/file-io.ts'
import { PartitionLog, type AppendResult, type LogConfig } from '../../../src/storage/partition-log.ts'
import { buildBatch, decodeRecords, type BatchOptions } from '../../helpers/batches.ts'

const made: string[] = []
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A fresh temp directory, removed after the current test. */
export function tempDir(prefix = 'tideway-storage-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}

/** A partition directory inside a fresh temp directory. */
export function partitionDir(): string {
  return join(tempDir(), 'topic-0')
}

/** Copies a live partition directory: what a process crash (kill -9) would leave on disk. */
export function crashCopy(dir: string): string {
  const copy = partitionDir()
  cpSync(dir, copy, { recursive: true })
  return copy
}

export const testConfig: LogConfig = {
  segmentBytes: 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  retentionMs: -1,
  retentionBytes: -1,
  indexIntervalBytes: 256,
  flush: { mode: 'always' },
}

export interface CapturedLog {
  level: string
  msg: string
  fields: Record<string, unknown>
}

export function capturingLogger(): Logger & { entries: CapturedLog[] } {
  const entries: CapturedLog[] = []
  const make = (bindings: Record<string, unknown>): Logger => ({
    debug: (msg, fields) => void entries.push({ level: 'debug', msg, fields: { ...bindings, ...fields } }),
    info: (msg, fields) => void entries.push({ level: 'info', msg, fields: { ...bindings, ...fields } }),
    warn: (msg, fields) => void entries.push({ level: 'warn', msg, fields: { ...bindings, ...fields } }),
    error: (msg, fields) => void entries.push({ level: 'error', msg, fields: { ...bindings, ...fields } }),
    child: (more) => make({ ...bindings, ...more }),
  })
  return Object.assign(make({}), { entries })
}

export function openLog(
  dir: string,
  options: { config?: Partial<LogConfig>; io?: FileIO; clock?: Clock; logger?: Logger } = {},
): Promise<PartitionLog> {
  return PartitionLog.open({
    dir,
    topic: 'topic',
    partition: 0,
    io: options.io ?? nodeFileIO,
    clock: options.clock ?? new ManualClock(),
    logger: options.logger ?? capturingLogger(),
    config: { ...testConfig, ...options.config },
  })
}

export function appendValues(log: PartitionLog, values: string[], options: BatchOptions = {}): Promise<AppendResult> {
  const { batch, header } = buildBatch(
    values.map((value) => ({ value })),
    options,
  )
  return log.append(batch, header)
}

/** Every record from `from` (default: the log start) to the high watermark, read in small fetches. */
export async function readAll(log: PartitionLog, from = log.logStartOffset, maxBytes = 512) {
  const records = []
  let offset = from
  while (offset < log.highWatermark) {
    const read = await log.read(offset, maxBytes)
    if (read.records.length === 0) break
    records.push(...decodeRecords(read.records).filter((r) => !r.control && r.offset >= offset))
    for (let at = 0; at < read.records.length; ) {
      const header = readBatchHeader(read.records, at)
      offset = lastOffsetOf(header) + 1n
      at += 12 + header.batchLength
    }
  }
  return records
}

export async function readAllValues(log: PartitionLog, from?: bigint): Promise<string[]> {
  return (await readAll(log, from)).map((r) => r.value?.toString() ?? '')
}

/** The segment files of a partition directory, by suffix, in offset order. */
export function segmentFiles(names: string[], suffix: '.log' | '.index' | '.timeindex'): string[] {
  return names.filter((n) => /^\d{20}\./.test(n) && n.endsWith(suffix)).sort()
}
