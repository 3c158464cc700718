// The broker's metrics, named once here so /metrics, the README and the code agree. Request
// counts, latencies and error codes are recorded by the dispatcher for every API; bytes and
// records by the produce and fetch handlers; fsync latency by a FileIO wrapper around the disk;
// connections by the listener. What the logs and groups already know (bytes on disk, offsets,
// lag, members) is read when /metrics is scraped.

import type { FileHandle, FileIO } from '../../storage/file-io.ts'
import type { CompactionResult } from '../../storage/compaction.ts'
import type { TopicStore } from '../../storage/topic-store.ts'
import type { GroupCoordinator } from '../groups/coordinator.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { MetricsRegistry } from './registry.ts'

const errorNames = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code as number, name]))
export const errorCodeName = (code: number): string => errorNames.get(code) ?? `CODE_${code}`

export class BrokerMetrics {
  readonly registry = new MetricsRegistry()

  readonly requests = this.registry.counter('tideway_requests_total', 'Requests handled, by API.', ['api'])
  readonly requestSeconds = this.registry.histogram(
    'tideway_request_duration_seconds',
    'Time from a request being decoded to its response being ready, by API (Produce includes the fsync before the ack; Fetch includes its long poll).',
    ['api'],
  )
  readonly errors = this.registry.counter(
    'tideway_errors_total',
    'Error codes returned, by API and Kafka error name (each partition, group or topic answered with an error counts once).',
    ['api', 'error'],
  )
  readonly handlerFailures = this.registry.counter(
    'tideway_handler_failures_total',
    'Requests whose handler threw (a broker bug: the connection was logged at error level and closed), by API.',
    ['api'],
  )
  readonly producedRecords = this.registry.counter('tideway_produced_records_total', 'Records appended, by topic.', ['topic'])
  readonly producedBytes = this.registry.counter('tideway_produced_bytes_total', 'Record batch bytes appended, by topic.', ['topic'])
  readonly fetchedBytes = this.registry.counter('tideway_fetched_bytes_total', 'Record batch bytes returned by Fetch, by topic.', ['topic'])
  readonly dedupHits = this.registry.counter(
    'tideway_dedup_hits_total',
    'Records not stored again because they were already stored: "producer-sequence" (an idempotent producer\'s retry) or "idempotency-key" (the topic\'s dedup window).',
    ['topic', 'kind'],
  )
  readonly fsyncSeconds = this.registry.histogram('tideway_fsync_duration_seconds', 'fdatasync latency of log, index and state files, and fsync of their directories.')
  readonly fsyncFailures = this.registry.counter('tideway_fsync_failures_total', 'fdatasync calls that failed (the partition is fenced; nothing unsynced is acknowledged).')
  readonly cleanerPasses = this.registry.counter('tideway_cleaner_passes_total', 'Compaction passes that rewrote segments, by topic.', ['topic'])
  readonly cleanerRecordsRemoved = this.registry.counter('tideway_cleaner_records_removed_total', 'Records compaction removed (superseded, expired tombstones, keyless), by topic.', ['topic'])
  readonly cleanerBytesReclaimed = this.registry.counter('tideway_cleaner_bytes_reclaimed_total', 'Bytes of log compaction freed, by topic.', ['topic'])
  readonly connections = this.registry.gauge('tideway_connections', 'Open client connections.')
  readonly connectionsAccepted = this.registry.counter('tideway_connections_accepted_total', 'Client connections accepted.')
  readonly protocolViolations = this.registry.counter('tideway_protocol_violations_total', 'Connections closed for a frame the broker could not parse or does not serve.')

  readonly logBytes = this.registry.gauge('tideway_log_bytes', 'Bytes on disk of a partition\'s log segments.', ['topic', 'partition'])
  readonly logStartOffset = this.registry.gauge('tideway_log_start_offset', 'First offset still stored in a partition.', ['topic', 'partition'])
  readonly highWatermark = this.registry.gauge('tideway_high_watermark', 'Offset after the last durable record of a partition.', ['topic', 'partition'])
  readonly fencedPartitions = this.registry.gauge(
    'tideway_partitions_fenced',
    'Partitions refusing writes after a storage failure (a failed fsync or a full disk) until the broker restarts or space returns.',
  )
  readonly groupLag = this.registry.gauge('tideway_group_lag', 'Records between a group\'s committed offset and the high watermark.', ['group', 'topic', 'partition'])
  readonly groupMembers = this.registry.gauge('tideway_group_members', 'Members of a consumer group.', ['group'])
  readonly residentBytes = this.registry.gauge('process_resident_memory_bytes', 'Resident memory of the broker process.')
  readonly startTime = this.registry.gauge('process_start_time_seconds', 'When the broker process started, in seconds since the epoch.')

  /** Reads the logs and groups at scrape time. */
  watch(topics: TopicStore, groups: GroupCoordinator): void {
    this.startTime.set(Math.round(Date.now() / 1000 - process.uptime()))
    this.registry.collect(() => {
      this.residentBytes.set(process.memoryUsage.rss())
      this.logBytes.clear()
      this.logStartOffset.clear()
      this.highWatermark.clear()
      let fenced = 0
      for (const topic of topics.listTopics()) {
        for (let p = 0; p < topic.partitions; p++) {
          const log = topics.partition(topic.name, p)
          if (!log) continue
          const labels = { topic: topic.name, partition: p }
          this.logBytes.set(log.size(), labels)
          this.logStartOffset.set(Number(log.logStartOffset), labels)
          this.highWatermark.set(Number(log.highWatermark), labels)
          if (log.fenced) fenced++
        }
      }
      this.fencedPartitions.set(fenced)
      this.groupLag.clear()
      this.groupMembers.clear()
      for (const { groupId } of groups.listGroups().groups) {
        this.groupMembers.set(groups.stateOf(groupId)?.memberIds.length ?? 0, { group: groupId })
        for (const t of groups.fetchOffsets(groupId, null).topics) {
          for (const p of t.partitions) {
            const hw = topics.partition(t.name, p.partitionIndex)?.highWatermark
            if (hw === undefined || p.committedOffset < 0n) continue
            const lag = hw - p.committedOffset
            this.groupLag.set(Number(lag > 0n ? lag : 0n), { group: groupId, topic: t.name, partition: p.partitionIndex })
          }
        }
      }
    })
  }

  countCompaction(topic: string, result: CompactionResult): void {
    if (result.groupsSwapped === 0) return
    this.cleanerPasses.inc({ topic })
    this.cleanerRecordsRemoved.inc({ topic }, result.recordsRemoved)
    this.cleanerBytesReclaimed.inc({ topic }, Math.max(0, result.bytesBefore - result.bytesAfter))
  }

  /** The disk with every fdatasync timed. */
  timedFileIO(io: FileIO): FileIO {
    const metrics = this
    const timed = (handle: FileHandle): FileHandle => ({
      read: (buffer, position) => handle.read(buffer, position),
      write: (buffers, position) => handle.write(buffers, position),
      datasync: () => metrics.#timeSync(() => handle.datasync()),
      truncate: (length) => handle.truncate(length),
      size: () => handle.size(),
      close: () => handle.close(),
    })
    return {
      open: async (path, mode) => timed(await io.open(path, mode)),
      mkdirp: (path) => io.mkdirp(path),
      readdir: (path) => io.readdir(path),
      rename: (from, to) => io.rename(from, to),
      unlink: (path) => io.unlink(path),
      removeTree: (path) => io.removeTree(path),
      exists: (path) => io.exists(path),
      readFile: (path) => io.readFile(path),
      syncDir: (path) => metrics.#timeSync(() => io.syncDir(path)),
    }
  }

  async #timeSync(sync: () => Promise<void>): Promise<void> {
    const started = performance.now()
    try {
      await sync()
    } catch (err) {
      this.fsyncFailures.inc()
      throw err
    } finally {
      this.fsyncSeconds.observe((performance.now() - started) / 1000)
    }
  }

  /** Counts every non-zero `errorCode` in a response, however deep (partitions, topics, groups). */
  countErrors(api: string, response: unknown): void {
    const visit = (value: unknown, depth: number): void => {
      if (depth > 6 || value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return
      if (Array.isArray(value)) {
        for (const item of value) visit(item, depth + 1)
        return
      }
      for (const [key, field] of Object.entries(value)) {
        if (key === 'errorCode') {
          if (typeof field === 'number' && field !== 0) this.errors.inc({ api, error: errorCodeName(field) })
        } else if (typeof field === 'object' && field !== null) visit(field, depth + 1)
      }
    }
    visit(response, 0)
  }
}
