// What the console's JSON API answers about the broker's own state: topics and partitions,
// consumer groups with their lag, a partition's records, dead-letter topics. Plain functions over
// the topic store and the group coordinator, read in-process (no client, no request to the
// broker), each answer bounded: at most MAX_RECORDS records a page, each field cut to a byte
// budget (values.ts). Offsets are bigints; the HTTP layer writes them as decimal strings.

import type { ConsumedRecord } from '../cli/consume-plan.ts'
import { deadLetterOf, DLT_SUFFIX, REDRIVE_CURSOR_GROUP } from '../cli/dlq-plan.ts'
import { partitionLags, totalLag, type MemberView, type TopicPartitions } from '../cli/groups-plan.ts'
import type { GroupCoordinator } from '../broker/groups/coordinator.ts'
import { Reader } from '../protocol/primitives.ts'
import type { TopicStore } from '../storage/topic-store.ts'
import { readRecordPage, type UnreadableBatch } from './records.ts'
import { showBytes, type ShownBytes, type View } from './values.ts'

export const Limits = {
  /** Records on one page of a partition. */
  maxRecords: 100,
  defaultRecords: 25,
  valueBytes: 4096,
  keyBytes: 1024,
  headerBytes: 512,
  headersPerRecord: 50,
  /** Record bytes one page reads before it stops early (its `next` says where to go on). */
  pageBytes: 2 * 1024 * 1024,
} as const


/** A request the console cannot answer: the status says whose fault it is. */
export class ConsoleError extends Error {
  readonly status: 400 | 403 | 404 | 500 | 502 | 503

  constructor(status: ConsoleError['status'], message: string) {
    super(message)
    this.status = status
  }
}

// -------------------------------------------------------------------------------------------
// Topics

export function listTopics(topics: TopicStore) {
  return topics.listTopics().map((info) => {
    const logs = partitionsOf(topics, info.name, info.partitions)
    return {
      name: info.name,
      kind: info.configs['tideway.topic.kind'],
      partitions: info.partitions,
      records: logs.reduce((sum, p) => sum + (p.highWatermark - p.logStartOffset), 0n),
      sizeBytes: logs.reduce((sum, p) => sum + p.sizeBytes, 0),
      deadLetters: info.name.endsWith(DLT_SUFFIX),
    }
  })
}

export function describeTopic(topics: TopicStore, name: string) {
  const info = topics.getTopic(name)
  if (!info) throw new ConsoleError(404, `no topic "${name}"`)
  return { name, topicId: info.topicId, configs: info.explicitConfigs, kind: info.configs['tideway.topic.kind'], partitions: partitionsOf(topics, name, info.partitions) }
}

function partitionsOf(topics: TopicStore, name: string, count: number) {
  return Array.from({ length: count }, (_, partition) => {
    const log = topics.partition(name, partition)
    return {
      partition,
      logStartOffset: log?.logStartOffset ?? 0n,
      highWatermark: log?.highWatermark ?? 0n,
      sizeBytes: log?.size() ?? 0,
      segments: log?.segmentCount ?? 0,
      fenced: log?.fenced?.message ?? null,
    }
  })
}

// -------------------------------------------------------------------------------------------
// Records

export interface PageQuery {
  readonly offset: bigint | null
  readonly limit: number
  readonly view: View
}

export interface ShownRecord {
  readonly offset: bigint
  readonly timestamp: bigint
  readonly key: ShownBytes
  readonly value: ShownBytes
  readonly headers: readonly { readonly name: string; readonly value: ShownBytes }[]
  /** Headers left out past Limits.headersPerRecord. */
  readonly moreHeaders: number
}

export function showRecord(record: ConsumedRecord, view: View): ShownRecord {
  const headers = record.headers.slice(0, Limits.headersPerRecord).map(([name, value]) => ({
    name: name === null ? '' : name.toString('utf8', 0, Limits.headerBytes),
    value: showBytes(value, view, Limits.headerBytes),
  }))
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    key: showBytes(record.key, view, Limits.keyBytes),
    value: showBytes(record.value, view, Limits.valueBytes),
    headers,
    moreHeaders: Math.max(0, record.headers.length - Limits.headersPerRecord),
  }
}

const isUnreadable = (r: ConsumedRecord | UnreadableBatch): r is UnreadableBatch => 'error' in r

/** One page of a partition's records from `query.offset` (default: the log start). */
export async function browseRecords(topics: TopicStore, name: string, partition: number, query: PageQuery) {
  const log = topics.partition(name, partition)
  if (!log) throw new ConsoleError(404, topics.getTopic(name) ? `topic "${name}" has no partition ${partition}` : `no topic "${name}"`)
  const page = await readRecordPage(log, query.offset ?? log.logStartOffset, query.limit, Limits.pageBytes)
  return {
    topic: name,
    partition,
    logStartOffset: log.logStartOffset,
    highWatermark: log.highWatermark,
    next: page.next,
    records: page.records.map((r) => (isUnreadable(r) ? r : showRecord(r, query.view))),
  }
}

// -------------------------------------------------------------------------------------------
// Consumer groups

export function listGroups(groups: GroupCoordinator, topics: TopicStore) {
  return groups
    .listGroups()
    .groups.sort((a, b) => a.groupId.localeCompare(b.groupId))
    .map((g) => {
      const view = describeGroup(groups, topics, g.groupId)
      return { group: g.groupId, state: g.groupState, protocolType: g.protocolType, members: view.members.length, lag: view.totalLag, partitions: view.partitions.length }
    })
}

export function describeGroup(groups: GroupCoordinator, topics: TopicStore, groupId: string) {
  const described = groups.describeGroup(groupId)
  if (described.groupState === 'Dead') throw new ConsoleError(404, `no group "${groupId}"`)
  const members: MemberView[] = described.members.map((m) => ({
    memberId: m.memberId,
    groupInstanceId: m.groupInstanceId,
    clientId: m.clientId,
    clientHost: m.clientHost,
    assignment: described.protocolType === 'consumer' ? (assignedPartitions(m.memberAssignment) ?? []) : [],
  }))
  const committed = new Map<string, Map<number, bigint>>()
  for (const t of groups.fetchOffsets(groupId, null).topics) {
    committed.set(t.name, new Map(t.partitions.filter((p) => p.committedOffset >= 0n).map((p) => [p.partitionIndex, p.committedOffset])))
  }
  const logEnds = new Map<string, Map<number, bigint>>()
  const topicsSeen = new Set([...committed.keys(), ...members.flatMap((m) => m.assignment.map((a) => a.topic))])
  for (const topic of topicsSeen) {
    const count = topics.getTopic(topic)?.partitions ?? 0
    logEnds.set(topic, new Map(Array.from({ length: count }, (_, p) => [p, topics.partition(topic, p)?.highWatermark ?? 0n])))
  }
  const partitions = partitionLags(members, committed, logEnds)
  return {
    group: groupId,
    state: described.groupState,
    protocolType: described.protocolType,
    protocol: described.protocolData || null,
    members,
    partitions,
    totalLag: totalLag(partitions),
  }
}

/**
 * The partitions in a ConsumerProtocolAssignment (every version starts with version int16, then
 * [topic string, [partition int32]]; what follows is not needed), or undefined when it does not
 * parse: a member's assignment is whatever its group's leader sent.
 */
export function assignedPartitions(assignment: Buffer): TopicPartitions[] | undefined {
  if (assignment.length === 0) return []
  try {
    const r = new Reader(assignment)
    r.int16()
    const topics: TopicPartitions[] = []
    for (let t = r.checkedCount(r.int32(), 6, 'topics'); t > 0; t--) {
      const topic = r.utf8(r.checkedCount(r.int16(), 1, 'topic name'))
      const partitions: number[] = []
      for (let p = r.checkedCount(r.int32(), 4, 'partitions'); p > 0; p--) partitions.push(r.int32())
      topics.push({ topic, partitions })
    }
    return topics
  } catch {
    return undefined
  }
}

// -------------------------------------------------------------------------------------------
// Dead letters

/** Where `tideway dlq redrive` (and the console's "redrive all") will start on each partition. */
export function redriveCursor(groups: GroupCoordinator, topic: string, partitions: number): bigint[] {
  const [fetched] = groups.fetchOffsets(REDRIVE_CURSOR_GROUP, [{ name: topic, partitionIndexes: Array.from({ length: partitions }, (_, p) => p) }]).topics
  return Array.from({ length: partitions }, (_, p) => {
    const offset = fetched?.partitions[p]?.committedOffset ?? -1n
    return offset < 0n ? 0n : offset
  })
}

export function listDeadLetterTopics(topics: TopicStore, groups: GroupCoordinator) {
  return listTopics(topics)
    .filter((t) => t.deadLetters)
    .map((t) => {
      const cursor = redriveCursor(groups, t.name, t.partitions)
      const pending = partitionsOf(topics, t.name, t.partitions).reduce((sum, p, i) => {
        const from = cursor[i]! > p.logStartOffset ? cursor[i]! : p.logStartOffset
        return sum + (p.highWatermark > from ? p.highWatermark - from : 0n)
      }, 0n)
      return { topic: t.name, source: t.name.slice(0, -DLT_SUFFIX.length), partitions: t.partitions, records: t.records, pending }
    })
}

/** A page of one partition of a dead-letter topic, each record with where and why it failed. */
export async function browseDeadLetters(topics: TopicStore, groups: GroupCoordinator, topic: string, partition: number, query: PageQuery) {
  if (!topic.endsWith(DLT_SUFFIX)) throw new ConsoleError(404, `"${topic}" is not a dead-letter topic (named <topic>${DLT_SUFFIX})`)
  const info = topics.getTopic(topic)
  const log = topics.partition(topic, partition)
  if (!info || !log) throw new ConsoleError(404, info ? `topic "${topic}" has no partition ${partition}` : `no topic "${topic}"`)
  const cursor = redriveCursor(groups, topic, info.partitions)[partition]!
  const page = await readRecordPage(log, query.offset ?? log.logStartOffset, query.limit, Limits.pageBytes)
  return {
    topic,
    partition,
    partitions: info.partitions,
    logStartOffset: log.logStartOffset,
    highWatermark: log.highWatermark,
    cursor,
    next: page.next,
    letters: page.records.map((r) => {
      if (isUnreadable(r)) return r
      const letter = deadLetterOf(r)
      return {
        ...showRecord(r, query.view),
        source: letter.source,
        group: letter.group,
        errorClass: letter.errorClass,
        error: letter.error?.slice(0, Limits.valueBytes) ?? null,
        attempts: letter.attempts,
        lastFailure: letter.lastFailure,
        /** Below the cursor: a "redrive all" (or `tideway dlq redrive`) has sent it back already. */
        redriven: r.offset < cursor,
      }
    }),
  }
}
