// `tideway consume <topic>`: prints records. Two ways to read:
//
// - Without --group (the default), partitions are assigned directly, as kcat does: ListOffsets
//   gives each partition's start, and a fetch loop per leader reads from there. No group, no
//   commits, and it works on any broker that serves Fetch and ListOffsets.
// - With --group, the client joins the consumer group and reads from the group's committed
//   offsets (--from beginning|end says where to start when the group has none); what was printed
//   is committed, so the next run with the same group resumes after it.
//
// Without --follow the command stops at the end of the partitions as they were when it started
// (each partition's high watermark then), so it always terminates; with --follow it waits for
// new records until SIGINT or SIGTERM, then exits 0.
import { Consumer, IS_CONTROL, type Message, type RecordsBatch } from '@platformatic/kafka'
import { parseInteger } from './args.ts'
import { clientCall, defineCommand, type CommandIO } from './command.ts'
import { resolveConnection, type Connection } from './connection.ts'
import { CommandError, explainClientError, hasKafkaError, UsageError } from './errors.ts'
import { formatRecord, parseStartSpec, startOffset, type ConsumedRecord, type OutputFormat, type StartSpec } from './consume-plan.ts'
import { lookupTopic, requirePartition, type TopicLayout } from './topic-lookup.ts'

type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>

const EARLIEST = -2n
const LATEST = -1n

/** Bounds of the direct fetch loop and of the group consumer. */
const FETCH_LIMITS = {
  /** Long-poll wait when nothing is new; also how soon a stop signal is noticed. */
  maxWaitMs: 500,
  maxBytes: 8 * 1024 * 1024,
  partitionMaxBytes: 1024 * 1024,
  /** Consecutive OFFSET_OUT_OF_RANGE answers (retention overtaking the reader) before giving up. */
  maxPositionResets: 5,
} as const

const GROUP_LIMITS = {
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 1_000,
  /** With --follow, printed positions are committed this often (and once more at exit). */
  commitIntervalMs: 2_000,
} as const

export const consumeCommand = defineCommand(
  {
    name: 'tideway consume',
    synopsis: '<topic> [options]',
    summary: 'Print records: by default from every partition, from the beginning to the current end.',
    positionals: ['topic'],
    options: {
      from: {
        type: 'string',
        placeholder: 'WHERE',
        help: 'beginning (default), end, an offset, or @<epoch ms | ISO date> (first record at or after that time)',
      },
      partition: { type: 'string', placeholder: 'N', help: 'read only partition N' },
      follow: { type: 'boolean', short: 'f', help: 'keep waiting for new records until SIGINT/SIGTERM' },
      max: { type: 'string', placeholder: 'N', help: 'stop after N records' },
      group: { type: 'string', placeholder: 'GROUP', help: 'read as a member of consumer group GROUP, from its committed offsets, and commit' },
      format: { type: 'string', placeholder: 'text|json', help: 'text (default): partition:offset<TAB>key<TAB>value; json: same as --json' },
    },
    notes: [
      'Output: one line per record. text shows the key as - when it is null; json gives',
      '{topic, partition, offset, timestamp, key, value, headers} with UTF-8 decoded keys and values.',
      'An offset outside a partition\'s range is clamped to it. With --group, --from only says where',
      'to start in partitions the group has no committed offset for (beginning or end).',
    ].join('\n'),
  },
  async (io, [topic], options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const format = outputFormat(options.format, options.json === true)
    const spec = parseStartSpec(options.from ?? 'beginning')
    const onlyPartition = options.partition === undefined ? undefined : parseInteger('--partition', options.partition, 0, 2 ** 31 - 1)
    const max = options.max === undefined ? undefined : parseInteger('--max', options.max, 1)
    const follow = options.follow === true
    if (options.group !== undefined) {
      if (options.group === '') throw new UsageError('--group must not be empty')
      if (onlyPartition !== undefined) throw new UsageError('--partition assigns a partition directly; it cannot be combined with --group')
      if (spec.kind === 'offset' || spec.kind === 'timestamp') {
        throw new UsageError('--from <offset> and --from @<time> assign partitions directly; with --group use beginning or end')
      }
    }
    const layout = await lookupTopic(connection, topic!)
    if (onlyPartition !== undefined) requirePartition(layout, onlyPartition)
    const printer = new Printer(io, format, max)
    if (options.group !== undefined) {
      await consumeInGroup({ io, connection, layout, group: options.group, spec, follow, printer })
    } else {
      const partitions = onlyPartition === undefined ? layout.leaders.map((_, p) => p) : [onlyPartition]
      await consumeAssigned({ io, connection, layout, partitions, spec, follow, printer })
    }
    if (io.stdout.error) throw new CommandError(`cannot write the output: ${io.stdout.error.message}`)
    return 0
  },
)

function outputFormat(format: string | undefined, json: boolean): OutputFormat {
  if (format === undefined) return json ? 'json' : 'text'
  if (format !== 'text' && format !== 'json') throw new UsageError(`--format takes text or json, got "${format}"`)
  if (json && format !== 'json') throw new UsageError('--json and --format text contradict each other')
  return format
}

/** Where a reader puts what it fetched: the printer, or `tideway dlq`'s collector. */
export interface RecordSink {
  /** False once nothing more is wanted. */
  readonly wantsMore: boolean
  /** Takes the records it still wants, in order; returns how many it took. */
  print(records: readonly ConsumedRecord[]): Promise<number>
}

/** Writes records and counts them against --max. */
class Printer implements RecordSink {
  readonly #io: CommandIO
  readonly #format: OutputFormat
  readonly #max: number | undefined
  #printed = 0

  constructor(io: CommandIO, format: OutputFormat, max: number | undefined) {
    this.#io = io
    this.#format = format
    this.#max = max
  }

  /** False once nothing more should be printed: --max reached, or the reader closed stdout. */
  get wantsMore(): boolean {
    return !this.#io.stdout.closed && (this.#max === undefined || this.#printed < this.#max)
  }

  /** Prints the records it still wants, in order; returns how many it took. */
  async print(records: readonly ConsumedRecord[]): Promise<number> {
    let taken = records.length
    if (this.#max !== undefined) taken = Math.min(taken, this.#max - this.#printed)
    if (taken <= 0 || this.#io.stdout.closed) return 0
    const chunk = Buffer.concat(records.slice(0, taken).map((r) => formatRecord(r, this.#format)))
    this.#printed += taken
    await this.#io.stdout.write(chunk)
    return taken
  }
}

export interface ConsumeContext {
  readonly io: CommandIO
  readonly connection: Connection
  readonly layout: TopicLayout
  readonly spec: StartSpec
  readonly follow: boolean
  readonly printer: RecordSink
}

interface PartitionState {
  readonly partition: number
  /** The next offset to read. */
  position: bigint
  /** Where to stop (the high watermark at start); undefined with --follow. */
  readonly end: bigint | undefined
}

/** Reads the given partitions directly (no group), from `spec` to their end (or on, with follow). */
export async function consumeAssigned(context: ConsumeContext & { readonly partitions: readonly number[] }): Promise<void> {
  const { io, connection, layout, partitions, spec, follow, printer } = context
  const topic = layout.topic
  const failure = { action: `consume topic "${topic}"`, bootstrap: connection.bootstrap, topic }
  // The group id is required by the client's constructor; no group is joined on this path.
  const consumer = new Consumer({ ...connection.clientOptions, groupId: 'tideway-cli', maxWaitTime: FETCH_LIMITS.maxWaitMs })
  try {
    consumer.topics.track(topic)
    const listAt = async (timestamp: bigint) => {
      const listed = await clientCall(failure, () =>
        consumer.listOffsetsWithTimestamps({ topics: [topic], partitions: { [topic]: [...partitions] }, timestamp }),
      )
      const byPartition = listed.get(topic)
      return (partition: number) => byPartition?.get(partition)?.offset ?? -1n
    }
    const earliest = await listAt(EARLIEST)
    const latest = await listAt(LATEST)
    const atTimestamp = spec.kind === 'timestamp' ? await listAt(spec.timestampMs) : undefined
    const states: PartitionState[] = partitions.map((partition) => {
      const offsets = { earliest: earliest(partition), latest: latest(partition), atTimestamp: atTimestamp?.(partition) }
      return { partition, position: startOffset(spec, offsets), end: follow ? undefined : offsets.latest }
    })
    // Metadata v10+ gives topics a UUID, which Fetch v13+ addresses them by; the client maps it
    // back to the name for older versions. A broker without topic ids reports the zero UUID.
    const metadata = await clientCall(failure, () => consumer.metadata({ topics: [topic] }))
    const topicId = metadata.topics.get(topic)?.id ?? topic
    const byLeader = new Map<number, PartitionState[]>()
    for (const state of states) {
      const leader = layout.leaders[state.partition]!
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), state])
    }
    const resetPositions = async (stale: readonly PartitionState[]) => {
      const start = await listAt(EARLIEST)
      const end = await listAt(LATEST)
      for (const state of stale) {
        state.position = startOffset({ kind: 'offset', offset: state.position }, { earliest: start(state.partition), latest: end(state.partition) })
      }
    }
    await Promise.all(
      [...byLeader].map(([node, nodeStates]) =>
        fetchLoop({ consumer, node, topic, topicId, states: nodeStates, io, printer, failure, resetPositions }),
      ),
    )
  } finally {
    await consumer.close(true).catch(() => {})
  }
}

async function fetchLoop(loop: {
  consumer: Consumer
  node: number
  topic: string
  topicId: string
  states: PartitionState[]
  io: CommandIO
  printer: RecordSink
  failure: { action: string; bootstrap: string; topic: string }
  resetPositions: (stale: readonly PartitionState[]) => Promise<void>
}): Promise<void> {
  const { consumer, node, topic, topicId, states, io, printer } = loop
  let resets = 0
  for (;;) {
    const wanted = states.filter((s) => s.end === undefined || s.position < s.end)
    if (wanted.length === 0 || io.stop.aborted || !printer.wantsMore) return
    let response: FetchResponse
    try {
      response = await consumer.fetch({
        node,
        maxWaitTime: FETCH_LIMITS.maxWaitMs,
        maxBytes: FETCH_LIMITS.maxBytes,
        topics: [
          {
            topicId,
            partitions: wanted.map((s) => ({
              partition: s.partition,
              fetchOffset: s.position,
              partitionMaxBytes: FETCH_LIMITS.partitionMaxBytes,
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1,
            })),
          },
        ],
      })
    } catch (err) {
      if (io.stop.aborted) return
      if (hasKafkaError(err, 'OFFSET_OUT_OF_RANGE') && resets < FETCH_LIMITS.maxPositionResets) {
        resets++
        await loop.resetPositions(wanted)
        continue
      }
      throw explainClientError(err, loop.failure) ?? err
    }
    resets = 0
    for (const topicResponse of response.responses) {
      for (const partitionResponse of topicResponse.partitions) {
        const state = wanted.find((s) => s.partition === partitionResponse.partitionIndex)
        if (!state) continue
        const records = takeRecords(topic, state, partitionResponse.records ?? [])
        const printed = await printer.print(records)
        if (printed < records.length) return
      }
    }
  }
}

/** LogAppendTime batches (attribute bit 3) carry the broker's time as the batch's max timestamp. */
const LOG_APPEND_TIME = 0x08

/**
 * The records of the fetched batches from the state's position up to its end, advancing the
 * position past them (and past control batches and gaps, so they are not fetched again).
 */
function takeRecords(topic: string, state: PartitionState, batches: readonly RecordsBatch[]): ConsumedRecord[] {
  const out: ConsumedRecord[] = []
  for (const batch of batches) {
    const batchEnd = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n
    if ((batch.attributes & IS_CONTROL) === 0) {
      for (const record of batch.records) {
        const offset = batch.firstOffset + BigInt(record.offsetDelta)
        // A fetch starts at the batch holding the position, so earlier records come back too.
        if (offset < state.position) continue
        if (state.end !== undefined && offset >= state.end) {
          state.position = state.end
          return out
        }
        const timestamp = batch.attributes & LOG_APPEND_TIME ? batch.maxTimestamp : batch.firstTimestamp + record.timestampDelta
        out.push({ topic, partition: state.partition, offset, timestamp, key: record.key, value: record.value, headers: record.headers })
        state.position = offset + 1n
      }
    }
    if (batchEnd > state.position) state.position = state.end !== undefined && batchEnd > state.end ? state.end : batchEnd
  }
  return out
}

async function consumeInGroup(context: ConsumeContext & { readonly group: string }): Promise<void> {
  const { io, connection, layout, group, spec, follow, printer } = context
  const topic = layout.topic
  const failure = { action: `consume topic "${topic}" in group "${group}"`, bootstrap: connection.bootstrap, topic }
  const consumer = new Consumer({
    ...connection.clientOptions,
    groupId: group,
    maxWaitTime: FETCH_LIMITS.maxWaitMs,
    sessionTimeout: GROUP_LIMITS.sessionTimeoutMs,
    heartbeatInterval: GROUP_LIMITS.heartbeatIntervalMs,
  })
  // A failed rejoin is emitted as 'error', which would throw if nobody listened; the next
  // heartbeat or fetch reports what is wrong.
  consumer.on('error', (err: unknown) => warn(io, err))
  const listAll = async (timestamp: bigint) => {
    const listed = await clientCall(failure, () => consumer.listOffsetsWithTimestamps({ topics: [topic], timestamp }))
    return (partition: number) => listed.get(topic)?.get(partition)?.offset ?? 0n
  }

  // Per partition: where this member started (the group's commit, else --from), the offset after
  // the last record printed, and what the group has committed. A partition's position is the
  // larger of the first two; it is what gets committed, so a partition that printed nothing still
  // records where --from put it and the next run with the group resumes there.
  const started = new Map<number, bigint>()
  const printedUpTo = new Map<number, { next: bigint; leaderEpoch: number }>()
  const committed = new Map<number, bigint>()
  const position = (p: number): bigint | undefined => {
    const start = started.get(p)
    const next = printedUpTo.get(p)?.next
    return start === undefined ? next : next === undefined || start > next ? start : next
  }
  let assigned: number[] | undefined
  let finished!: () => void
  let failed!: (err: unknown) => void
  const done = new Promise<void>((resolve, reject) => {
    finished = resolve
    failed = reject
  })

  try {
    const ends = follow ? undefined : await listAll(LATEST)
    const checkDone = () => {
      if (!printer.wantsMore) return finished()
      if (!ends || !assigned) return
      if (assigned.every((p) => (position(p) ?? -1n) >= ends(p))) finished()
    }
    consumer.on('consumer:group:join', (payload) => {
      const mine = (payload.assignments ?? []).filter((a) => a.topic === topic).flatMap((a) => a.partitions)
      const commits = clientCall(failure, () => consumer.listCommittedOffsets({ topics: [{ topic, partitions: mine }] }))
      Promise.all([commits, listAll(spec.kind === 'end' ? LATEST : EARLIEST)])
        .then(([groupOffsets, fallback]) => {
          for (const p of mine) {
            const commit = groupOffsets.get(topic)?.[p] ?? -1n
            if (commit >= 0n) committed.set(p, commit)
            started.set(p, commit >= 0n ? commit : fallback(p))
          }
          assigned = mine
          checkDone()
        })
        .catch(failed)
    })
    const stream = await clientCall(failure, () =>
      consumer.consume({
        topics: [topic],
        mode: 'committed',
        fallbackMode: spec.kind === 'end' ? 'latest' : 'earliest',
        autocommit: false,
        sessionTimeout: GROUP_LIMITS.sessionTimeoutMs,
        heartbeatInterval: GROUP_LIMITS.heartbeatIntervalMs,
      }),
    )
    const commit = async () => {
      const offsets = (assigned ?? []).flatMap((partition) => {
        const offset = position(partition)
        if (offset === undefined || offset === committed.get(partition)) return []
        return [{ topic, partition, offset, leaderEpoch: printedUpTo.get(partition)?.leaderEpoch ?? -1 }]
      })
      if (offsets.length === 0) return
      await clientCall({ ...failure, action: `commit offsets of group "${group}"` }, () => consumer.commit({ offsets }))
      for (const { partition, offset } of offsets) committed.set(partition, offset)
    }
    // Records arrive one by one; printing is chained so the output keeps their order.
    let printing = Promise.resolve()
    stream.on('data', (message: Message) => {
      const p = message.partition
      if (ends && message.offset >= ends(p)) return
      const record: ConsumedRecord = {
        topic,
        partition: p,
        offset: message.offset,
        timestamp: message.timestamp,
        key: message.key ?? null,
        value: message.value ?? null,
        headers: message.headerEntries,
      }
      printing = printing
        .then(async () => {
          // After a rebalance the stream may deliver a record again; print each once.
          if ((printedUpTo.get(p)?.next ?? -1n) > message.offset) return
          if ((await printer.print([record])) === 1) printedUpTo.set(p, { next: message.offset + 1n, leaderEpoch: message.leaderEpoch })
          checkDone()
        })
        .catch(failed)
    })
    stream.on('error', failed)
    const stop = () => finished()
    io.stop.addEventListener('abort', stop, { once: true })
    const timer = follow ? setInterval(() => void commit().catch((err: unknown) => warn(io, err)), GROUP_LIMITS.commitIntervalMs) : undefined
    try {
      await done
    } finally {
      clearInterval(timer)
      io.stop.removeEventListener('abort', stop)
      await printing
      await stream.close().catch(() => {})
    }
    await commit()
  } finally {
    await consumer.close(true).catch(() => {})
  }
}

function warn(io: CommandIO, err: unknown): void {
  io.stderr.write(`tideway: warning: ${err instanceof Error ? err.message : String(err)}\n`)
}
