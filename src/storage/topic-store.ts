// The durable catalogue of topics and their partition logs under one data directory.
//
//   <dataDir>/__topics/<topic>.json   name, topic id, partition count, explicitly set configs
//   <dataDir>/<topic>-<partition>/    that partition's segments
//
// Catalogue files are replaced atomically and durably (temp, fsync, rename, fsync dir). The
// catalogue is the source of truth: creation writes it first (partition directories are created
// or found on open), deletion removes it first and then the data, and creating a name again
// first clears any partition directory a crash left behind, so old data never reappears under a
// new topic. Mutations are serialised; lookups are synchronous and in memory.

import { randomUUID } from 'node:crypto'
import type { Clock } from '../clock.ts'
import { TidewayError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { writeFileDurably, type FileIO } from './file-io.ts'
import { PartitionLog, type FlushPolicy, type LogConfig } from './partition-log.ts'
import { parseTopicConfig, type TopicConfig } from './topic-config.ts'

export interface TopicInfo {
  readonly name: string
  readonly topicId: string
  readonly partitions: number
  /** Effective configuration (defaults plus explicit settings). */
  readonly configs: TopicConfig
  /** Only the settings given explicitly, as strings (what DescribeConfigs reports as set). */
  readonly explicitConfigs: Readonly<Record<string, string>>
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
const INDEX_INTERVAL_BYTES = 4096
const LEGAL_NAME = /^[a-zA-Z0-9._-]{1,249}$/

export function validateTopicName(name: string): void {
  if (!LEGAL_NAME.test(name) || name === '.' || name === '..') {
    throw new TidewayError(
      'TIDEWAY_ERR_CONFIG',
      `invalid topic name "${name}": use 1 to 249 of a-z A-Z 0-9 . _ - (and not "." or "..")`,
    )
  }
}

export interface TopicStoreOptions {
  dataDir: string
  io: FileIO
  clock: Clock
  logger: Logger
  flush: FlushPolicy
}

export class TopicStore {
  readonly #options: TopicStoreOptions
  readonly #topics = new Map<string, Topic>()
  #mutations: Promise<unknown> = Promise.resolve()
  #closed = false

  private constructor(options: TopicStoreOptions) {
    this.#options = options
  }

  static async open(options: TopicStoreOptions): Promise<TopicStore> {
    const store = new TopicStore(options)
    const { io, dataDir } = options
    const catalogue = `${dataDir}/${CATALOGUE_DIR}`
    await io.mkdirp(catalogue)
    for (const name of await io.readdir(catalogue)) {
      if (name.endsWith('.tmp')) {
        await io.unlink(`${catalogue}/${name}`)
        continue
      }
      if (!name.endsWith('.json')) continue
      const entry = JSON.parse((await io.readFile(`${catalogue}/${name}`)).toString('utf8')) as CatalogueEntry
      const logs = await store.#openLogs(entry, 0, entry.partitions)
      store.#topics.set(entry.name, { info: store.#infoOf(entry), logs })
    }
    for (const name of await io.readdir(dataDir)) {
      if (name.endsWith('.deleting')) await io.removeTree(`${dataDir}/${name}`)
    }
    return store
  }

  listTopics(): TopicInfo[] {
    return [...this.#topics.values()].map((t) => t.info).sort((a, b) => a.name.localeCompare(b.name))
  }

  getTopic(name: string): TopicInfo | undefined {
    return this.#topics.get(name)?.info
  }

  partition(name: string, index: number): PartitionLog | undefined {
    return this.#topics.get(name)?.logs[index]
  }

  createTopic(name: string, options: { partitions: number; configs: Record<string, string> }): Promise<TopicInfo> {
    return this.#serialise(async () => {
      validateTopicName(name)
      if (this.#topics.has(name)) throw new TidewayError('TIDEWAY_ERR_CONFIG', `topic "${name}" already exists`)
      if (!Number.isInteger(options.partitions) || options.partitions < 1) {
        throw new TidewayError('TIDEWAY_ERR_CONFIG', `partition count must be at least 1, got ${options.partitions}`)
      }
      parseTopicConfig(options.configs)
      await this.#clearLeftovers(name)
      const entry: CatalogueEntry = { name, topicId: randomUUID(), partitions: options.partitions, configs: { ...options.configs } }
      await this.#writeCatalogue(entry)
      const logs = await this.#openLogs(entry, 0, entry.partitions)
      const topic = { info: this.#infoOf(entry), logs }
      this.#topics.set(name, topic)
      return topic.info
    })
  }

  deleteTopic(name: string): Promise<void> {
    return this.#serialise(async () => {
      const topic = this.#topics.get(name)
      if (!topic) throw new TidewayError('TIDEWAY_ERR_CONFIG', `topic "${name}" does not exist`)
      const { io, dataDir } = this.#options
      this.#topics.delete(name)
      await io.unlink(`${dataDir}/${CATALOGUE_DIR}/${name}.json`)
      await io.syncDir(`${dataDir}/${CATALOGUE_DIR}`)
      for (const log of topic.logs) {
        await log.close()
        const doomed = `${log.dir}.${randomUUID()}.deleting`
        await io.rename(log.dir, doomed)
        await io.removeTree(doomed)
      }
      await io.syncDir(dataDir)
    })
  }

  addPartitions(name: string, total: number): Promise<TopicInfo> {
    return this.#serialise(async () => {
      const topic = this.#topics.get(name)
      if (!topic) throw new TidewayError('TIDEWAY_ERR_CONFIG', `topic "${name}" does not exist`)
      const current = topic.info.partitions
      if (!Number.isInteger(total) || total <= current) {
        throw new TidewayError('TIDEWAY_ERR_CONFIG', `topic "${name}" has ${current} partitions; the new count must be larger`)
      }
      const entry: CatalogueEntry = { ...this.#entryOf(topic.info), partitions: total }
      for (let p = current; p < total; p++) await this.#options.io.removeTree(this.#partitionDir(name, p))
      const logs = await this.#openLogs(entry, current, total)
      await this.#writeCatalogue(entry)
      topic.logs.push(...logs)
      topic.info = this.#infoOf(entry)
      return topic.info
    })
  }

  setTopicConfig(name: string, configs: Record<string, string>): Promise<TopicInfo> {
    return this.#serialise(async () => {
      const topic = this.#topics.get(name)
      if (!topic) throw new TidewayError('TIDEWAY_ERR_CONFIG', `topic "${name}" does not exist`)
      parseTopicConfig(configs)
      const entry: CatalogueEntry = { ...this.#entryOf(topic.info), configs: { ...configs } }
      await this.#writeCatalogue(entry)
      topic.info = this.#infoOf(entry)
      for (const log of topic.logs) log.reconfigure(this.#logConfig(topic.info.configs))
      return topic.info
    })
  }

  async applyRetention(): Promise<number> {
    let deleted = 0
    for (const topic of [...this.#topics.values()]) {
      for (const log of topic.logs) deleted += (await log.applyRetention()).deletedSegments
    }
    return deleted
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#mutations.catch(() => {})
    for (const topic of this.#topics.values()) for (const log of topic.logs) await log.close()
  }

  #serialise<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new TidewayError('TIDEWAY_ERR_CLOSED', 'topic store'))
    const next = this.#mutations.then(work, work)
    this.#mutations = next.catch(() => {})
    return next
  }

  #partitionDir(name: string, partition: number): string {
    return `${this.#options.dataDir}/${name}-${partition}`
  }

  /** Removes partition directories of an earlier topic with this name that a crash left behind. */
  async #clearLeftovers(name: string): Promise<void> {
    const { io, dataDir } = this.#options
    const pattern = new RegExp(`^${name.replace(/[.]/g, '\\.')}-\\d+$`)
    for (const entry of await io.readdir(dataDir)) {
      if (pattern.test(entry)) await io.removeTree(`${dataDir}/${entry}`)
    }
  }

  async #writeCatalogue(entry: CatalogueEntry): Promise<void> {
    const dir = `${this.#options.dataDir}/${CATALOGUE_DIR}`
    await writeFileDurably(this.#options.io, dir, `${entry.name}.json`, Buffer.from(JSON.stringify(entry) + '\n'))
  }

  async #openLogs(entry: CatalogueEntry, from: number, to: number): Promise<PartitionLog[]> {
    const { io, clock, logger, dataDir } = this.#options
    const config = this.#logConfig(parseTopicConfig(entry.configs))
    const logs: PartitionLog[] = []
    for (let partition = from; partition < to; partition++) {
      logs.push(await PartitionLog.open({ dir: this.#partitionDir(entry.name, partition), topic: entry.name, partition, io, clock, logger, config }))
    }
    if (to > from) await io.syncDir(dataDir)
    return logs
  }

  #logConfig(configs: TopicConfig): LogConfig {
    return {
      segmentBytes: configs['segment.bytes'],
      segmentMs: configs['segment.ms'],
      retentionMs: configs['retention.ms'],
      retentionBytes: configs['retention.bytes'],
      indexIntervalBytes: INDEX_INTERVAL_BYTES,
      flush: this.#options.flush,
    }
  }

  #infoOf(entry: CatalogueEntry): TopicInfo {
    return {
      name: entry.name,
      topicId: entry.topicId,
      partitions: entry.partitions,
      configs: parseTopicConfig(entry.configs),
      explicitConfigs: { ...entry.configs },
    }
  }

  #entryOf(info: TopicInfo): CatalogueEntry {
    return { name: info.name, topicId: info.topicId, partitions: info.partitions, configs: { ...info.explicitConfigs } }
  }
}
