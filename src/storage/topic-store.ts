// The durable catalogue of topics and their partition logs under one data directory.
//
//   <dataDir>/__topics/<topicId>.json name, topic id, partition count, explicitly set configs
//                                     (named by id: a 249-character topic name plus a suffix would
//                                     not fit a 255-byte file name)
//   <dataDir>/<topic>-<partition>/    that partition's segments (see partition-log.ts)
//
// The catalogue is the source of truth, and each change commits at one durable step:
// - Catalogue files are replaced atomically (temp, fsync, rename, fsync dir).
// - createTopic writes the catalogue entry first; the partition directories are created (or
//   recovered) from it.
// - deleteTopic removes the entry first (the commit point), then renames the partition
//   directories to `*.deleting` and removes them.
// - addPartitions creates the new partition directories, then writes the larger count.
// A crash between steps leaves partition directories that no catalogue entry covers; open()
// removes them (logging each), and creating a name again clears any that remain, so a deleted
// topic's data never reappears under a new topic with the same name.
//
// Mutations are serialised; lookups are synchronous and in memory.

import { randomUUID } from 'node:crypto'
import type { Clock } from '../clock.ts'
import { isTidewayError, TidewayError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { mkdirDurably, writeFileDurably, type FileIO } from './file-io.ts'
import { PartitionLog, type FlushPolicy } from './partition-log.ts'
import type { CompactionResult, IoThrottle } from './compaction.ts'
import { cleanupPolicies, parseTopicConfig, toLogConfig, type TopicConfig } from './topic-config.ts'

export interface TopicInfo {
  readonly name: string
  /** A random UUID, new for every creation of the name. */
  readonly topicId: string
  readonly partitions: number
  /** Effective configuration: the store's defaults, then the topic's explicit settings. */
  readonly configs: TopicConfig
  /** Only the settings given explicitly for this topic, as strings (DescribeConfigs reports them as set). */
  readonly explicitConfigs: Readonly<Record<string, string>>
}

export interface TopicStoreOptions {
  dataDir: string
  io: FileIO
  clock: Clock
  logger: Logger
  flush: FlushPolicy
  /** See PartitionLogOptions.producerIdExpirationMs. */
  producerIdExpirationMs?: number
  /** Broker-wide topic config defaults (Kafka key names) applied beneath each topic's own settings. */
  defaults?: Readonly<Record<string, string>>
}

interface CatalogueEntry {
  name: string
  topicId: string
  partitions: number
  configs: Record<string, string>
}

interface Topic {
  info: TopicInfo
  logs: PartitionLog[]
}

const CATALOGUE_DIR = '__topics'
const DELETING_SUFFIX = '.deleting'
/** A bound on one request's worth of directories and open files; Kafka has none, real topics stay far below. */
export const MAX_PARTITIONS_PER_TOPIC = 10_000
/** How often a partition fenced by a full disk tries to reopen (see reopenIfSpace). */
const REOPEN_INTERVAL_MS = 1_000
/** Kafka's rule: 1 to 249 of [a-zA-Z0-9._-], and not "." or "..". */
const LEGAL_NAME = /^[a-zA-Z0-9._-]{1,249}$/
/** `<topic>-<partition>`: the partition number is the digits after the last '-'. */
const PARTITION_DIR = /^(.+)-(\d+)$/

export function validateTopicName(name: string): void {
  if (!LEGAL_NAME.test(name) || name === '.' || name === '..') {
    throw new TidewayError(
      'TIDEWAY_ERR_CONFIG',
      `invalid topic name "${name}": use 1 to 249 of a-z A-Z 0-9 . _ - (and not "." or "..")`,
    )
  }
}

function validatePartitionCount(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS_PER_TOPIC) {
    throw new TidewayError('TIDEWAY_ERR_CONFIG', `partition count must be between 1 and ${MAX_PARTITIONS_PER_TOPIC}, got ${count}`)
  }
}

export class TopicStore {
  readonly #options: TopicStoreOptions
  readonly #defaults: Readonly<Record<string, string>>
  readonly #logger: Logger
  readonly #topics = new Map<string, Topic>()
  readonly #lastReopen = new Map<string, number>()
  #mutations: Promise<unknown> = Promise.resolve()
  #closed = false

  private constructor(options: TopicStoreOptions) {
    this.#options = options
    this.#defaults = options.defaults ?? {}
    this.#logger = options.logger
  }

  /** Loads the catalogue, recovers every partition log and removes what a crash left half-deleted. */
  static async open(options: TopicStoreOptions): Promise<TopicStore> {
    const store = new TopicStore(options)
    parseTopicConfig(store.#defaults) // refuse bad defaults before touching any data
    const { io, dataDir } = options
    const catalogue = `${dataDir}/${CATALOGUE_DIR}`
    const existed = await io.exists(catalogue)
    await mkdirDurably(io, catalogue)
    try {
      for (const file of (await io.readdir(catalogue)).sort()) {
        if (file.endsWith('.tmp')) {
          await io.unlink(`${catalogue}/${file}`)
          continue
        }
        if (!file.endsWith('.json')) continue
        const entry = parseCatalogueEntry(file, await io.readFile(`${catalogue}/${file}`))
        if (store.#topics.has(entry.name)) {
          throw new TidewayError('TIDEWAY_ERR_CONFIG', `catalogue holds two entries for topic "${entry.name}"`)
        }
        const logs = await store.#openLogs(entry, 0, entry.partitions)
        store.#topics.set(entry.name, { info: store.#infoOf(entry), logs })
      }
      // Without the catalogue directory there has never been a commit to judge the data by: an
      // operator's mistake, not a crash, so nothing is removed.
      if (existed) await store.#removeUncatalogued()
    } catch (err) {
      await store.close().catch(() => {})
      throw err
    }
    return store
  }

  listTopics(): TopicInfo[] {
    return [...this.#topics.values()].map((t) => t.info).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  getTopic(name: string): TopicInfo | undefined {
    return this.#topics.get(name)?.info
  }

  partition(name: string, index: number): PartitionLog | undefined {
    return this.#topics.get(name)?.logs[index]
  }

  /**
   * A partition fenced because the disk was full (PartitionLog.reopenable) is closed and opened
   * again, which recovers it from its files; if the disk is still full, the open fails and the
   * old, fenced log stays. At most one attempt per partition per REOPEN_INTERVAL_MS, so a
   * producer retrying against a full disk does not turn into a recovery storm. Resolves true when
   * the partition takes appends again.
   */
  reopenIfSpace(name: string, index: number): Promise<boolean> {
    const log = this.partition(name, index)
    if (!log?.reopenable) return Promise.resolve(false)
    const key = `${name}\u0000${index}`
    const now = this.#options.clock.monotonicMs()
    if (now - (this.#lastReopen.get(key) ?? -Infinity) < REOPEN_INTERVAL_MS) return Promise.resolve(false)
    this.#lastReopen.set(key, now)
    return this.#serialise(async () => {
      const topic = this.#topics.get(name)
      if (!topic || topic.logs[index] !== log) return false
      // The fenced log keeps serving reads of what was durable while the files are recovered
      // under it: recovery only cuts bytes past that.
      let reopened: PartitionLog
      try {
        ;[reopened] = (await this.#openLogs(this.#entryOf(topic.info), index, index + 1)) as [PartitionLog]
      } catch (err) {
        this.#logger.warn('reopening a partition after a full disk failed (no space yet?); will try again', { topic: name, partition: index, err })
        return false
      }
      topic.logs[index] = reopened
      await log.close().catch(() => {})
      this.#logger.info('partition reopened after the disk had space again', { topic: name, partition: index, logEndOffset: reopened.logEndOffset })
      return true
    })
  }

  createTopic(name: string, options: { partitions: number; configs: Record<string, string> }): Promise<TopicInfo> {
    return this.#serialise(async () => {
      validateTopicName(name)
      if (this.#topics.has(name)) throw new TidewayError('TIDEWAY_ERR_CONFIG', `topic "${name}" already exists`)
      validatePartitionCount(options.partitions)
      parseTopicConfig(options.configs)
      await this.#clearLeftovers(name)
      const entry: CatalogueEntry = { name, topicId: randomUUID(), partitions: options.partitions, configs: { ...options.configs } }
      await this.#writeCatalogue(entry)
      let logs: PartitionLog[]
      try {
        logs = await this.#openLogs(entry, 0, entry.partitions)
      } catch (err) {
        // Take the entry back so the half-made topic does not appear at the next start; its
        // directories become orphans that open() removes.
        await this.#removeCatalogue(entry).catch(() => {})
        throw err
      }
      const topic = { info: this.#infoOf(entry), logs }
      this.#topics.set(name, topic)
      this.#logger.info('topic created', { topic: name, topicId: entry.topicId, partitions: entry.partitions })
      return topic.info
    })
  }

  /** Deletes a topic and its data. Its partition logs are closed; later calls on them fail with TIDEWAY_ERR_CLOSED. */
  deleteTopic(name: string): Promise<void> {
    return this.#serialise(async () => {
      const topic = this.#requireTopic(name)
      await this.#removeCatalogue(topic.info)
      // Committed. What follows only reclaims space, and open() finishes it after a crash.
      this.#topics.delete(name)
      for (const log of topic.logs) {
        await log.close().catch(() => {}) // its data is going anyway
        await this.#removePartitionDir(log.dir)
      }
      this.#logger.info('topic deleted', { topic: name, topicId: topic.info.topicId })
    })
  }

  /** Grows a topic to `total` partitions; existing partitions keep their data. */
  addPartitions(name: string, total: number): Promise<TopicInfo> {
    return this.#serialise(async () => {
      const topic = this.#requireTopic(name)
      const current = topic.info.partitions
      validatePartitionCount(total)
      if (total <= current) {
        throw new TidewayError('TIDEWAY_ERR_CONFIG', `topic "${name}" has ${current} partitions; the new count must be larger`)
      }
      const entry: CatalogueEntry = { ...this.#entryOf(topic.info), partitions: total }
      for (let p = current; p < total; p++) await this.#options.io.removeTree(this.#partitionDir(name, p))
      const logs = await this.#openLogs(entry, current, total)
      try {
        await this.#writeCatalogue(entry)
      } catch (err) {
        await Promise.allSettled(logs.map((log) => log.close()))
        throw err
      }
      topic.logs.push(...logs)
      topic.info = this.#infoOf(entry)
      return topic.info
    })
  }

  /** Replaces the topic's explicit settings as a whole (AlterConfigs semantics); logs apply them from now on. */
  setTopicConfig(name: string, configs: Record<string, string>): Promise<TopicInfo> {
    return this.#serialise(async () => {
      const topic = this.#requireTopic(name)
      parseTopicConfig(configs)
      const entry: CatalogueEntry = { ...this.#entryOf(topic.info), configs: { ...configs } }
      await this.#writeCatalogue(entry)
      topic.info = this.#infoOf(entry)
      for (const log of topic.logs) log.reconfigure(toLogConfig(topic.info.configs, this.#options.flush))
      return topic.info
    })
  }

  /** Applies retention to every partition; returns how many segments were deleted. */
  /**
   * Applies each topic's retention. For pubsub topics `consumedBelow(topic, partition)` says up
   * to which offset every subscriber has consumed (see PartitionLog.applyRetention).
   */
  async applyRetention(consumedBelow?: (topic: string, partition: number) => bigint): Promise<number> {
    let deleted = 0
    for (const topic of [...this.#topics.values()]) {
      const pubsub = topic.info.configs['tideway.topic.kind'] === 'pubsub'
      for (const log of topic.logs) {
        try {
          const floor = pubsub && consumedBelow ? consumedBelow(log.topic, log.partition) : undefined
          deleted += (await log.applyRetention(floor)).deletedSegments
        } catch (err) {
          // A log closed by a concurrent delete is not a failure; anything else is worth a line.
          if (!isTidewayError(err, 'TIDEWAY_ERR_CLOSED')) {
            this.#logger.error('retention failed', { topic: log.topic, partition: log.partition, err })
          }
        }
      }
    }
    return deleted
  }

  /**
   * One compaction pass over each partition of every compacted topic, one partition at a time,
   * all sharing `throttle` (see PartitionLog.clean). `onPass` hears of each pass that did work.
   * Resolves to the partitions cleaned.
   */
  async clean(throttle: IoThrottle, onPass?: (topic: string, partition: number, result: CompactionResult) => void): Promise<number> {
    let cleaned = 0
    for (const topic of [...this.#topics.values()]) {
      if (!cleanupPolicies(topic.info.configs).compact) continue
      for (const log of topic.logs) {
        if (this.#closed) return cleaned
        try {
          const result = await log.clean(throttle)
          if (result) {
            cleaned++
            onPass?.(log.topic, log.partition, result)
          }
        } catch (err) {
          if (!isTidewayError(err, 'TIDEWAY_ERR_CLOSED')) this.#logger.error('compaction failed', { topic: log.topic, partition: log.partition, err })
        }
      }
    }
    return cleaned
  }

  /** Closes every partition log (each syncs and marks a clean shutdown). Rejects with the first failure, after closing all. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#mutations
    const logs = [...this.#topics.values()].flatMap((t) => t.logs)
    const results = await Promise.allSettled(logs.map((log) => log.close()))
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason
  }

  #serialise<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new TidewayError('TIDEWAY_ERR_CLOSED', 'topic store'))
    const next = this.#mutations.then(work)
    this.#mutations = next.catch(() => {})
    return next
  }

  #requireTopic(name: string): Topic {
    const topic = this.#topics.get(name)
    if (!topic) throw new TidewayError('TIDEWAY_ERR_CONFIG', `topic "${name}" does not exist`)
    return topic
  }

  #partitionDir(name: string, partition: number): string {
    return `${this.#options.dataDir}/${name}-${partition}`
  }

  /** Rename, make the rename durable, then remove: a crash mid-removal leaves a `.deleting` dir open() removes. */
  async #removePartitionDir(dir: string): Promise<void> {
    const { io, dataDir } = this.#options
    if (!(await io.exists(dir))) return
    const doomed = `${dataDir}/${randomUUID()}${DELETING_SUFFIX}` // short: the partition dir name may use all 255 bytes
    await io.rename(dir, doomed)
    await io.syncDir(dataDir)
    await io.removeTree(doomed)
  }

  /** Finishes interrupted deletions: `.deleting` dirs, and partition dirs no catalogue entry covers. */
  async #removeUncatalogued(): Promise<void> {
    const { io, dataDir } = this.#options
    for (const name of await io.readdir(dataDir)) {
      if (name.endsWith(DELETING_SUFFIX)) {
        await io.removeTree(`${dataDir}/${name}`)
        continue
      }
      const match = PARTITION_DIR.exec(name)
      if (!match) continue
      const topic = this.#topics.get(match[1]!)
      if (topic && Number(match[2]) < topic.info.partitions) continue
      this.#logger.warn('removing a partition directory that no topic owns (an interrupted delete or create)', { dir: name })
      await this.#removePartitionDir(`${dataDir}/${name}`)
    }
  }

  /** Removes partition directories of an earlier topic with this name that are still on disk. */
  async #clearLeftovers(name: string): Promise<void> {
    const { io, dataDir } = this.#options
    for (const entry of await io.readdir(dataDir)) {
      if (PARTITION_DIR.exec(entry)?.[1] === name) await this.#removePartitionDir(`${dataDir}/${entry}`)
    }
  }

  async #writeCatalogue(entry: CatalogueEntry): Promise<void> {
    const dir = `${this.#options.dataDir}/${CATALOGUE_DIR}`
    await writeFileDurably(this.#options.io, dir, `${entry.topicId}.json`, Buffer.from(JSON.stringify(entry) + '\n'))
  }

  async #removeCatalogue(entry: { topicId: string }): Promise<void> {
    const dir = `${this.#options.dataDir}/${CATALOGUE_DIR}`
    await this.#options.io.unlink(`${dir}/${entry.topicId}.json`)
    await this.#options.io.syncDir(dir)
  }

  async #openLogs(entry: CatalogueEntry, from: number, to: number): Promise<PartitionLog[]> {
    const { io, clock, logger, flush, producerIdExpirationMs } = this.#options
    const config = toLogConfig(this.#effectiveConfig(entry.configs), flush)
    const logs: PartitionLog[] = []
    try {
      for (let partition = from; partition < to; partition++) {
        const dir = this.#partitionDir(entry.name, partition)
        logs.push(await PartitionLog.open({ dir, topic: entry.name, partition, io, clock, logger, config, ...(producerIdExpirationMs === undefined ? {} : { producerIdExpirationMs }) }))
      }
    } catch (err) {
      await Promise.allSettled(logs.map((log) => log.close()))
      throw err
    }
    return logs
  }

  #effectiveConfig(explicit: Readonly<Record<string, string>>): TopicConfig {
    return parseTopicConfig({ ...this.#defaults, ...explicit })
  }

  #infoOf(entry: CatalogueEntry): TopicInfo {
    return {
      name: entry.name,
      topicId: entry.topicId,
      partitions: entry.partitions,
      configs: this.#effectiveConfig(entry.configs),
      explicitConfigs: { ...entry.configs },
    }
  }

  #entryOf(info: TopicInfo): CatalogueEntry {
    return { name: info.name, topicId: info.topicId, partitions: info.partitions, configs: { ...info.explicitConfigs } }
  }
}

/** A catalogue file, checked field by field: a damaged one stops the store from opening rather than guessing. */
function parseCatalogueEntry(file: string, content: Buffer): CatalogueEntry {
  const bad = (detail: string, cause?: unknown) =>
    new TidewayError('TIDEWAY_ERR_CONFIG', `catalogue file ${CATALOGUE_DIR}/${file} is unreadable: ${detail}`, { cause })
  let value: unknown
  try {
    value = JSON.parse(content.toString('utf8'))
  } catch (err) {
    throw bad('not JSON', err)
  }
  const entry = value as Partial<CatalogueEntry> | null
  if (typeof entry !== 'object' || entry === null) throw bad('not an object')
  if (typeof entry.name !== 'string') throw bad('missing name')
  if (typeof entry.topicId !== 'string' || `${entry.topicId}.json` !== file) throw bad('its topicId does not match the file name')
  if (typeof entry.partitions !== 'number' || !Number.isInteger(entry.partitions) || entry.partitions < 1) {
    throw bad('bad partition count')
  }
  const configs = entry.configs ?? {}
  if (typeof configs !== 'object' || Object.values(configs).some((v) => typeof v !== 'string')) throw bad('bad configs')
  return { name: entry.name, topicId: entry.topicId, partitions: entry.partitions, configs }
}
