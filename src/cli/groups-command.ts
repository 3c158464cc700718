// `tideway groups list|describe|delete|reset-offsets`: consumer group administration through the
// Kafka Admin APIs (ListGroups, DescribeGroups, OffsetFetch, ListOffsets, OffsetCommit,
// DeleteGroups), so it works against any Kafka-protocol cluster. As with kafka-consumer-groups.sh,
// a group's offsets can only be reset, and a group only deleted, while it has no active members.
import { Admin, type Group } from '@platformatic/kafka'
import { parseInteger, type CommandSpec, type OptionSpecs } from './args.ts'
import { clientCall, defineCommand, type ClientCommand, type CommandIO, type CommandOptions } from './command.ts'
import { resolveConnection, type Connection } from './connection.ts'
import { CommandError, hasKafkaError, UsageError, type FailureContext } from './errors.ts'
import {
  formatGroupList,
  formatGroupView,
  formatResetTable,
  parseResetTarget,
  partitionLags,
  planReset,
  totalLag,
  type GroupSummary,
  type GroupView,
  type MemberView,
  type OffsetsByPartition,
} from './groups-plan.ts'
import { toJson } from './output.ts'
import { lookupTopic, requirePartition } from './topic-lookup.ts'

const EARLIEST = -2n
const LATEST = -1n

/** The Kafka errors that mean "the group has members" when a change needs it to be empty. */
const ACTIVE_GROUP_ERRORS = ['NON_EMPTY_GROUP', 'UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS']

/** Runs one client operation; a failure becomes a one-line CommandError (see `clientCall`). */
type Call = <R>(operation: () => Promise<R>) => Promise<R>

/** An Admin client for the length of `use`, and failures explained in the terms of `context`. */
async function adminSession<T>(connection: Connection, use: (admin: Admin, call: Call) => Promise<T>, context: FailureContext): Promise<T> {
  const admin = new Admin(connection.clientOptions)
  const call: Call = (operation) => clientCall(context, operation)
  try {
    return await use(admin, call)
  } finally {
    await admin.close().catch(() => {})
  }
}

/** A `tideway groups <sub> <group>` command: the action gets the group, checked, and the connection. */
function defineGroupCommand<const O extends OptionSpecs>(
  spec: Omit<CommandSpec<O>, 'positionals' | 'synopsis'> & { readonly synopsis?: string },
  action: (io: CommandIO, group: string, options: CommandOptions<O>, connection: Connection) => Promise<number>,
): ClientCommand {
  return defineCommand({ synopsis: '<group> [options]', ...spec, positionals: ['group'] }, (io, [group], options) => {
    if (!group) throw new UsageError('<group> must not be empty')
    // The common options are there whatever O is; TypeScript cannot see it through the generic.
    const { bootstrap } = options as CommandOptions<Record<never, never>>
    return action(io, group, options, resolveConnection(bootstrap, io.env))
  })
}

const doesNotExist = (group: string) => new CommandError(`group "${group}" does not exist`)

/** Whether a failure (as the client threw it, or explained by `clientCall`) carries one of these Kafka errors. */
function hasAnyKafkaError(err: unknown, apiIds: readonly string[]): boolean {
  const original = err instanceof CommandError ? err.cause : err
  return apiIds.some((apiId) => hasKafkaError(original, apiId))
}

function hasActiveMembers(group: Group | undefined): boolean {
  return group !== undefined && (group.members.size > 0 || (group.state !== 'Empty' && group.state !== 'Dead'))
}

function activeMembersError(action: string, described?: Group): CommandError {
  const count = described?.members.size ?? 0
  const members = described === undefined ? 'active members' : `${count} active member${count === 1 ? '' : 's'} (state ${described.state})`
  return new CommandError(`cannot ${action}: it has ${members}; stop its consumers first (the group must be empty)`)
}

/** The group as DescribeGroups has it, or undefined when the coordinator does not know it. */
async function describeOne(admin: Admin, call: Call, group: string): Promise<Group | undefined> {
  try {
    const described = (await call(() => admin.describeGroups({ groups: [group] }))).get(group)
    // Up to DescribeGroups v5 an unknown group is "Dead" with no error; from v6 it is GROUP_ID_NOT_FOUND.
    return described === undefined || described.state === 'Dead' ? undefined : described
  } catch (err) {
    if (hasAnyKafkaError(err, ['GROUP_ID_NOT_FOUND'])) return undefined
    throw err
  }
}

async function requireGroup(admin: Admin, call: Call, group: string): Promise<Group> {
  const described = await describeOne(admin, call, group)
  if (!described) throw doesNotExist(group)
  return described
}

/**
 * Committed offsets by topic and partition; partitions without a commit are left out. It asks
 * for all of the group's offsets (OffsetFetch with null topics): naming a partition of a
 * Tideway pubsub topic would subscribe the group there, and looking must change nothing.
 */
async function committedOffsets(admin: Admin, call: Call, group: string): Promise<Map<string, Map<number, bigint>>> {
  const [fetched] = await call(() => admin.listConsumerGroupOffsets({ groups: [group] }))
  const out = new Map<string, Map<number, bigint>>()
  for (const topic of fetched?.topics ?? []) {
    const partitions = new Map<number, bigint>()
    for (const p of topic.partitions) if (p.committedOffset >= 0n) partitions.set(p.partitionIndex, p.committedOffset)
    if (partitions.size > 0) out.set(topic.name, partitions)
  }
  return out
}

/** ListOffsets for the given partitions at `timestamp` (EARLIEST, LATEST or epoch ms). */
async function offsetsAt(
  admin: Admin,
  call: Call,
  wanted: ReadonlyMap<string, readonly number[]>,
  timestamp: bigint,
): Promise<Map<string, Map<number, bigint>>> {
  const topics = [...wanted].filter(([, partitions]) => partitions.length > 0)
  const out = new Map<string, Map<number, bigint>>()
  if (topics.length === 0) return out
  const listed = await call(() =>
    admin.listOffsets({ topics: topics.map(([name, partitions]) => ({ name, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) })) }),
  )
  for (const t of listed) out.set(t.name, new Map(t.partitions.map((p) => [p.partitionIndex, p.offset])))
  return out
}

function memberViews(group: Group): MemberView[] {
  return [...group.members.values()]
    .map((m) => ({
      memberId: m.id,
      groupInstanceId: m.groupInstanceId ?? null,
      clientId: m.clientId,
      clientHost: m.clientHost,
      assignment: [...(m.assignments?.values() ?? [])]
        .map((a) => ({ topic: a.topic, partitions: [...a.partitions].sort((x, y) => x - y) }))
        .sort((a, b) => a.topic.localeCompare(b.topic)),
    }))
    .sort((a, b) => a.memberId.localeCompare(b.memberId))
}

const listGroups = defineCommand(
  {
    name: 'tideway groups list',
    synopsis: '[options]',
    summary: 'List the consumer groups with their state, protocol type and number of members.',
    positionals: [],
    options: {},
  },
  async (io, _positionals, options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const groups = await adminSession(
      connection,
      async (admin, call): Promise<GroupSummary[]> => {
        const listed = await call(() => admin.listGroups())
        const ids = [...listed.keys()].sort()
        if (ids.length === 0) return []
        // ListGroups carries no member counts; DescribeGroups does (and a fresher state).
        const described = await call(() => admin.describeGroups({ groups: ids }))
        return ids.map((id) => {
          const summary = listed.get(id)!
          const detail = described.get(id)
          return {
            group: id,
            state: detail?.state ?? summary.state,
            protocolType: detail?.protocolType || summary.protocolType,
            members: detail?.members.size ?? 0,
          }
        })
      },
      { action: 'list groups', bootstrap: connection.bootstrap },
    )
    await io.stdout.write(options.json ? toJson(groups) + '\n' : formatGroupList(groups))
    return 0
  },
)

const describeGroup = defineGroupCommand(
  {
    name: 'tideway groups describe',
    summary: 'Show a group\'s members and assignments, and per partition its committed offset, log end offset and lag.',
    options: {},
    notes: [
      'Partitions listed: those the group has committed offsets for and those assigned to a member.',
      'LAG is LOG END - COMMITTED; "-" where the group has committed nothing for the partition.',
    ].join('\n'),
  },
  async (io, group, options, connection) => {
    const view = await adminSession(
      connection,
      async (admin, call): Promise<GroupView> => {
        const described = await requireGroup(admin, call, group)
        const members = memberViews(described)
        const committed = await committedOffsets(admin, call, group)
        // Log end offsets of every partition shown that still exists (committed offsets outlive
        // a deleted topic).
        const shown = new Map<string, Set<number>>()
        for (const [topic, partitions] of committed) shown.set(topic, new Set(partitions.keys()))
        for (const m of members) for (const a of m.assignment) for (const p of a.partitions) shown.set(a.topic, (shown.get(a.topic) ?? new Set()).add(p))
        const existing = new Set(await call(() => admin.listTopics({ includeInternals: true })))
        const topics = [...shown.keys()].filter((t) => existing.has(t))
        const metadata = topics.length === 0 ? undefined : await call(() => admin.metadata({ topics }))
        const wanted = new Map(topics.map((t) => [t, [...shown.get(t)!].filter((p) => p < (metadata?.topics.get(t)?.partitionsCount ?? 0))]))
        const logEnds: OffsetsByPartition = await offsetsAt(admin, call, wanted, LATEST)
        const partitions = partitionLags(members, committed, logEnds)
        return {
          group,
          state: described.state,
          protocolType: described.protocolType,
          protocol: described.protocol || null,
          members,
          partitions,
          totalLag: totalLag(partitions),
        }
      },
      { action: `describe group "${group}"`, bootstrap: connection.bootstrap },
    )
    await io.stdout.write(options.json ? toJson(view) + '\n' : formatGroupView(view))
    return 0
  },
)

const deleteGroup = defineGroupCommand(
  {
    name: 'tideway groups delete',
    summary: 'Delete a consumer group and its committed offsets. The group must have no active members.',
    options: {},
  },
  async (io, group, options, connection) => {
    const action = `delete group "${group}"`
    await adminSession(
      connection,
      async (admin, call) => {
        const described = await requireGroup(admin, call, group)
        if (hasActiveMembers(described)) throw activeMembersError(action, described)
        try {
          await call(() => admin.deleteGroups({ groups: [group] }))
        } catch (err) {
          if (hasAnyKafkaError(err, ['GROUP_ID_NOT_FOUND'])) throw doesNotExist(group)
          // A consumer joined between the check and the delete.
          if (hasAnyKafkaError(err, ['NON_EMPTY_GROUP'])) throw activeMembersError(action)
          throw err
        }
      },
      { action, bootstrap: connection.bootstrap },
    )
    await io.stdout.write(options.json ? toJson({ group, deleted: true }) + '\n' : `deleted group "${group}"\n`)
    return 0
  },
)

const resetOffsets = defineGroupCommand(
  {
    name: 'tideway groups reset-offsets',
    synopsis: '<group> --topic T (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO8601 | --by-duration D) [options]',
    summary: 'Move a group\'s committed offsets on a topic. A dry run unless --execute is given.',
    options: {
      topic: { type: 'string', placeholder: 'T', help: 'the topic whose offsets to reset (required)' },
      partition: { type: 'string', multiple: true, placeholder: 'P', help: 'only partition P (repeatable; default: every partition)' },
      'to-earliest': { type: 'boolean', help: 'to the earliest offset still stored' },
      'to-latest': { type: 'boolean', help: 'to the log end offset (skip everything not yet read)' },
      'to-offset': { type: 'string', placeholder: 'N', help: 'to offset N, clamped to [earliest, log end]' },
      'to-datetime': { type: 'string', placeholder: 'ISO8601', help: 'to the first record at or after that time (e.g. 2026-03-07T09:30:00Z)' },
      'by-duration': { type: 'string', placeholder: 'D', help: 'to the first record at most D old (15m, 1h30m, 2d, PT15M)' },
      execute: { type: 'boolean', help: 'commit the new offsets (without it, only show them)' },
    },
    notes: [
      'The group must have no active members: stop its consumers first.',
      'A time later than every record in a partition resets it to the log end offset. A date-time',
      'without a zone is local time.',
    ].join('\n'),
  },
  async (io, group, options, connection) => {
    const topic = options.topic
    if (topic === undefined || topic === '') throw new UsageError('--topic is required')
    const target = parseResetTarget(options, Date.now())
    const only = options.partition?.map((p) => parseInteger('--partition', p, 0, 2 ** 31 - 1))
    const execute = options.execute === true

    const layout = await lookupTopic(connection, topic)
    for (const p of only ?? []) requirePartition(layout, p)
    const partitions = only ? [...new Set(only)].sort((a, b) => a - b) : layout.leaders.map((_, i) => i)
    const action = `reset offsets of group "${group}"`
    const planned = await adminSession(
      connection,
      async (admin, call) => {
        const described = await describeOne(admin, call, group)
        if (hasActiveMembers(described)) throw activeMembersError(action, described)
        const wanted = new Map([[topic, partitions]])
        const earliest = (await offsetsAt(admin, call, wanted, EARLIEST)).get(topic)
        const latest = (await offsetsAt(admin, call, wanted, LATEST)).get(topic)
        const atTimestamp = target.kind === 'timestamp' ? (await offsetsAt(admin, call, wanted, target.timestampMs)).get(topic) : undefined
        const committed = (await committedOffsets(admin, call, group)).get(topic)
        const plan = planReset(
          target,
          partitions.map((partition) => ({
            partition,
            earliest: earliest?.get(partition) ?? 0n,
            latest: latest?.get(partition) ?? 0n,
            ...(atTimestamp ? { atTimestamp: atTimestamp.get(partition) ?? -1n } : {}),
            committed: committed?.get(partition) ?? null,
          })),
        )
        if (execute) {
          try {
            await call(() =>
              admin.alterConsumerGroupOffsets({
                groupId: group,
                topics: [{ name: topic, partitionOffsets: plan.map((p) => ({ partition: p.partition, offset: p.newOffset })) }],
              }),
            )
          } catch (err) {
            // A consumer joined after the check: Kafka refuses a commit from outside the group.
            if (hasAnyKafkaError(err, ACTIVE_GROUP_ERRORS)) throw activeMembersError(action)
            throw err
          }
        }
        return plan
      },
      { action, bootstrap: connection.bootstrap, topic },
    )
    if (options.json) {
      await io.stdout.write(toJson({ group, topic, executed: execute, partitions: planned }) + '\n')
    } else {
      await io.stdout.write(formatResetTable(topic, planned))
    }
    const count = `${planned.length} partition${planned.length === 1 ? '' : 's'}`
    io.stderr.write(
      execute
        ? `committed new offsets of group "${group}" for ${count} of "${topic}"\n`
        : `dry run: nothing committed; add --execute to commit these offsets\n`,
    )
    return 0
  },
)

export const groupsCommands: Readonly<Record<string, ClientCommand>> = {
  list: listGroups,
  describe: describeGroup,
  delete: deleteGroup,
  'reset-offsets': resetOffsets,
}
