// The pure parts of `tideway groups`: where `reset-offsets` moves each partition (the target
// flags, clamping, the timestamp fallback), the lag of each partition, and how a group is printed.
// No I/O here.
import { startOffset, type PartitionOffsets, type StartSpec } from './consume-plan.ts'
import { parseDuration } from './args.ts'
import { UsageError } from './errors.ts'
import { formatFields, formatTable } from './output.ts'

// ---------------------------------------------------------------------------------------------
// reset-offsets

/** The target flags of `reset-offsets`, as parsed. */
export interface ResetTargetFlags {
  readonly 'to-earliest'?: boolean | undefined
  readonly 'to-latest'?: boolean | undefined
  readonly 'to-offset'?: string | undefined
  readonly 'to-datetime'?: string | undefined
  readonly 'by-duration'?: string | undefined
}

const TARGET_FLAGS = ['to-earliest', 'to-latest', 'to-offset', 'to-datetime', 'by-duration'] as const

/** Exactly one target flag, as a start spec; `nowMs` anchors --by-duration. */
export function parseResetTarget(flags: ResetTargetFlags, nowMs: number): StartSpec {
  const given = TARGET_FLAGS.filter((flag) => flags[flag] !== undefined && flags[flag] !== false)
  if (given.length === 0) {
    throw new UsageError('say where to reset to: --to-earliest, --to-latest, --to-offset N, --to-datetime ISO8601 or --by-duration D')
  }
  if (given.length > 1) throw new UsageError(`${given.map((f) => `--${f}`).join(' and ')} cannot be combined; choose one`)
  switch (given[0]!) {
    case 'to-earliest':
      return { kind: 'beginning' }
    case 'to-latest':
      return { kind: 'end' }
    case 'to-offset': {
      const text = flags['to-offset']!
      if (!/^\d+$/.test(text)) throw new UsageError(`--to-offset must be a whole number of 0 or more, got "${text}"`)
      return { kind: 'offset', offset: BigInt(text) }
    }
    case 'to-datetime':
      return { kind: 'timestamp', timestampMs: BigInt(parseDateTime(flags['to-datetime']!)) }
    case 'by-duration':
      return { kind: 'timestamp', timestampMs: BigInt(nowMs - parseDuration('--by-duration', flags['by-duration']!)) }
  }
}

/**
 * An ISO 8601 date or date-time. Without a zone it is local time, as kafka-consumer-groups.sh
 * reads it (JavaScript alone would read a bare date as UTC but a bare date-time as local).
 */
export function parseDateTime(text: string): number {
  // Date.parse also accepts loose formats ("March 7"); insist on something ISO-shaped.
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00` : text
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(iso) ? Date.parse(iso) : Number.NaN
  if (Number.isNaN(ms)) throw new UsageError(`--to-datetime takes an ISO 8601 date-time such as 2026-03-07T09:30:00Z, got "${text}"`)
  return ms
}

/** What is known of one partition before a reset. */
export interface PartitionBeforeReset extends PartitionOffsets {
  readonly partition: number
  /** The group's committed offset, or null when it has none for this partition. */
  readonly committed: bigint | null
}

export interface PlannedOffset {
  readonly partition: number
  readonly currentOffset: bigint | null
  readonly newOffset: bigint
  /** Why the new offset is not exactly what was asked for (clamped, no record that new). */
  readonly note: string | null
}

/**
 * The new offset of each partition, by the rule consumers use to start reading (see
 * `startOffset`): an offset outside [earliest, latest] is clamped into it, and a time later than
 * every record means the log end.
 */
export function planReset(target: StartSpec, partitions: readonly PartitionBeforeReset[]): PlannedOffset[] {
  return partitions.map((p) => {
    const newOffset = startOffset(target, p)
    let note: string | null = null
    if (target.kind === 'offset' && newOffset !== target.offset) {
      note =
        target.offset < p.earliest
          ? `clamped: ${target.offset} is before the earliest offset ${p.earliest}`
          : `clamped: ${target.offset} is past the log end offset ${p.latest}`
    } else if (target.kind === 'timestamp' && (p.atTimestamp ?? -1n) < 0n) {
      note = 'no record at or after that time: log end'
    }
    return { partition: p.partition, currentOffset: p.committed, newOffset, note }
  })
}

export function formatResetTable(topic: string, planned: readonly PlannedOffset[]): string {
  const withNotes = planned.some((p) => p.note !== null)
  const headers = ['TOPIC', 'PARTITION', 'CURRENT', 'NEW', ...(withNotes ? ['NOTE'] : [])]
  const rows = planned.map((p) => [
    topic,
    String(p.partition),
    offsetText(p.currentOffset),
    String(p.newOffset),
    ...(withNotes ? [p.note ?? ''] : []),
  ])
  return formatTable(headers, rows, [1, 2, 3])
}

// ---------------------------------------------------------------------------------------------
// describe

export interface TopicPartitions {
  readonly topic: string
  readonly partitions: readonly number[]
}

export interface MemberView {
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly clientId: string
  readonly clientHost: string
  readonly assignment: readonly TopicPartitions[]
}

export interface PartitionLag {
  readonly topic: string
  readonly partition: number
  /** null: the group has committed nothing for this partition. */
  readonly committedOffset: bigint | null
  /** null: unknown (the topic or partition no longer exists). */
  readonly logEndOffset: bigint | null
  /** Log end minus committed; null where either is unknown. */
  readonly lag: bigint | null
  /** The member the partition is assigned to, or null. */
  readonly memberId: string | null
}

export interface GroupView {
  readonly group: string
  readonly state: string
  readonly protocolType: string
  /** The assignor (`range`, `cooperative-sticky`); null while the group is not Stable. */
  readonly protocol: string | null
  readonly members: readonly MemberView[]
  readonly partitions: readonly PartitionLag[]
  /** Summed over the partitions that have a lag. */
  readonly totalLag: bigint
}

/** Offsets by topic, then partition. */
export type OffsetsByPartition = ReadonlyMap<string, ReadonlyMap<number, bigint>>

export function lagOf(committed: bigint | null, logEnd: bigint | null): bigint | null {
  return committed === null || logEnd === null ? null : logEnd - committed
}

/**
 * One row per partition the group has a committed offset for or a member is assigned, sorted by
 * topic and partition, with its log end offset, lag and owner.
 */
export function partitionLags(members: readonly MemberView[], committed: OffsetsByPartition, logEnds: OffsetsByPartition): PartitionLag[] {
  const owners = new Map<string, Map<number, string | null>>()
  const add = (topic: string, partition: number, owner: string | null) => {
    let partitions = owners.get(topic)
    if (!partitions) owners.set(topic, (partitions = new Map()))
    if (owner !== null || !partitions.has(partition)) partitions.set(partition, owner)
  }
  for (const [topic, partitions] of committed) for (const partition of partitions.keys()) add(topic, partition, null)
  for (const member of members) for (const a of member.assignment) for (const partition of a.partitions) add(a.topic, partition, member.memberId)
  const rows: PartitionLag[] = []
  for (const topic of [...owners.keys()].sort()) {
    for (const [partition, memberId] of [...owners.get(topic)!].sort((a, b) => a[0] - b[0])) {
      const committedOffset = committed.get(topic)?.get(partition) ?? null
      const logEndOffset = logEnds.get(topic)?.get(partition) ?? null
      rows.push({ topic, partition, committedOffset, logEndOffset, lag: lagOf(committedOffset, logEndOffset), memberId })
    }
  }
  return rows
}

export function totalLag(partitions: readonly PartitionLag[]): bigint {
  return partitions.reduce((sum, p) => sum + (p.lag ?? 0n), 0n)
}

/** `orders:0,1 payments:2`, or `-` for none. */
export function formatAssignment(assignment: readonly TopicPartitions[]): string {
  const parts = assignment.filter((a) => a.partitions.length > 0).map((a) => `${a.topic}:${[...a.partitions].sort((x, y) => x - y).join(',')}`)
  return parts.length === 0 ? '-' : parts.join(' ')
}

export function formatGroupView(view: GroupView): string {
  const count = view.members.length
  const sections = [
    formatFields([
      ['group', view.group],
      ['state', view.state],
      ['protocol', `${view.protocolType || '-'}${view.protocol ? ` (${view.protocol})` : ''}`],
      ['members', String(count)],
      ['lag', `${view.totalLag} (log end - committed, summed over partitions)`],
    ]),
    count === 0
      ? 'no active members\n'
      : formatTable(
          ['MEMBER', 'INSTANCE', 'CLIENT ID', 'HOST', 'ASSIGNMENT'],
          view.members.map((m) => [m.memberId, m.groupInstanceId ?? '-', m.clientId, m.clientHost || '-', formatAssignment(m.assignment)]),
        ),
    view.partitions.length === 0
      ? 'no committed offsets and no assigned partitions\n'
      : formatTable(
          ['TOPIC', 'PARTITION', 'COMMITTED', 'LOG END', 'LAG', 'MEMBER'],
          view.partitions.map((p) => [
            p.topic,
            String(p.partition),
            offsetText(p.committedOffset),
            offsetText(p.logEndOffset),
            offsetText(p.lag),
            p.memberId ?? '-',
          ]),
          [1, 2, 3, 4],
        ),
  ]
  return sections.join('\n')
}

// ---------------------------------------------------------------------------------------------
// list

export interface GroupSummary {
  readonly group: string
  readonly state: string
  readonly protocolType: string
  readonly members: number
}

export function formatGroupList(groups: readonly GroupSummary[]): string {
  if (groups.length === 0) return 'no groups\n'
  return formatTable(
    ['GROUP', 'STATE', 'PROTOCOL TYPE', 'MEMBERS'],
    groups.map((g) => [g.group, g.state, g.protocolType || '-', String(g.members)]),
    [3],
  )
}

function offsetText(offset: bigint | null): string {
  return offset === null ? '-' : String(offset)
}
