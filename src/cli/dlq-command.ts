// `tideway dlq list|show|redrive`: dead-letter topics written by the SDK's consumers (topics named
// `<topic>.dlt`, records with the provenance headers of src/sdk/copies.ts), through the Kafka
// protocol only, so it works against any cluster.
//
// redrive sends dead letters back to the partition they failed on, in order, and remembers how
// far it got as the committed offsets of the group `tideway-dlq-redrive` (or
// `tideway-dlq-redrive-<group>` with --group) on the dead-letter topic: a later redrive starts
// after what an earlier one sent, so nothing is sent back twice. Without --execute it prints the
// plan and sends nothing (like `groups reset-offsets`).
import { randomUUID } from 'node:crypto'
import { Admin, Consumer } from '@platformatic/kafka'
import { createProducer } from '../sdk/producer.ts'
import { clientCall, defineCommand, type ClientCommand, type CommandIO } from './command.ts'
import { consumeAssigned, type RecordSink } from './consume-command.ts'
import type { ConsumedRecord } from './consume-plan.ts'
import { resolveConnection, type Connection } from './connection.ts'
import { deadLetterOf, DLT_SUFFIX, formatDeadLetters, formatRedrivePlan, planRedrive, REDRIVE_CURSOR_GROUP, sendRedrive, type DeadLetter } from './dlq-plan.ts'
import { formatTable, toJson } from './output.ts'
import { lookupTopic } from './topic-lookup.ts'

const EARLIEST = -2n
const LATEST = -1n

/** Collects every record read, for the commands that look at a whole topic. */
class Collector implements RecordSink {
  readonly records: ConsumedRecord[] = []
  readonly wantsMore = true
  async print(records: readonly ConsumedRecord[]): Promise<number> {
    this.records.push(...records)
    return records.length
  }
}

/** Offsets of each partition of `topic` at EARLIEST or LATEST. */
async function offsetsAt(connection: Connection, topic: string, partitions: number, timestamp: bigint): Promise<bigint[]> {
  const consumer = new Consumer({ ...connection.clientOptions, groupId: 'tideway-cli' })
  try {
    const listed = await clientCall({ action: `list offsets of "${topic}"`, bootstrap: connection.bootstrap, topic }, () =>
      consumer.listOffsetsWithTimestamps({ topics: [topic], partitions: { [topic]: Array.from({ length: partitions }, (_, p) => p) }, timestamp }),
    )
    return Array.from({ length: partitions }, (_, p) => listed.get(topic)?.get(p)?.offset ?? 0n)
  } finally {
    await consumer.close(true).catch(() => {})
  }
}

/** Every dead letter on the topic now, in partition then offset order. */
async function readDeadLetters(io: CommandIO, connection: Connection, topic: string): Promise<{ letters: DeadLetter[]; ends: bigint[] }> {
  const layout = await lookupTopic(connection, topic)
  const ends = await offsetsAt(connection, topic, layout.leaders.length, LATEST)
  const collector = new Collector()
  await consumeAssigned({ io, connection, layout, partitions: layout.leaders.map((_, p) => p), spec: { kind: 'beginning' }, follow: false, printer: collector })
  const letters = collector.records.map(deadLetterOf).sort((a, b) => a.dltPartition - b.dltPartition || (a.dltOffset < b.dltOffset ? -1 : 1))
  return { letters, ends }
}

const listDeadLetterTopics = defineCommand(
  { name: 'tideway dlq list', synopsis: '[options]', summary: 'List dead-letter topics (named <topic>.dlt) and how many offsets each holds.', positionals: [], options: {} },
  async (io, _positionals, options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const admin = new Admin(connection.clientOptions)
    let names: string[]
    try {
      names = (await clientCall({ action: 'list topics', bootstrap: connection.bootstrap }, () => admin.listTopics())).filter((n) => n.endsWith(DLT_SUFFIX)).sort()
    } finally {
      await admin.close().catch(() => {})
    }
    const rows: { topic: string; source: string; partitions: number; records: number }[] = []
    for (const topic of names) {
      const { leaders } = await lookupTopic(connection, topic)
      const [earliest, latest] = [await offsetsAt(connection, topic, leaders.length, EARLIEST), await offsetsAt(connection, topic, leaders.length, LATEST)]
      const records = latest.reduce((sum, end, p) => sum + Number(end - earliest[p]!), 0)
      rows.push({ topic, source: topic.slice(0, -DLT_SUFFIX.length), partitions: leaders.length, records })
    }
    if (options.json) await io.stdout.write(toJson(rows) + '\n')
    else await io.stdout.write(formatTable(['TOPIC', 'SOURCE', 'PARTITIONS', 'OFFSETS'], rows.map((r) => [r.topic, r.source, String(r.partitions), String(r.records)]), [2, 3]))
    return 0
  },
)

const showDeadLetters = defineCommand(
  {
    name: 'tideway dlq show',
    synopsis: '<dlt-topic> [options]',
    summary: 'Print the dead letters of a topic with where and why they failed.',
    positionals: ['topic'],
    options: { group: { type: 'string', placeholder: 'GROUP', help: 'only dead letters of this consumer group' } },
  },
  async (io, [topic], options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const { letters } = await readDeadLetters(io, connection, topic!)
    const shown = letters.filter((l) => options.group === undefined || l.group === options.group)
    if (options.json) {
      const rows = shown.map((l) => ({
        partition: l.dltPartition,
        offset: l.dltOffset,
        source: l.source,
        group: l.group,
        errorClass: l.errorClass,
        error: l.error,
        attempts: l.attempts,
        lastFailure: l.lastFailure,
        key: l.key?.toString('utf8') ?? null,
        value: l.value?.toString('utf8') ?? null,
      }))
      await io.stdout.write(toJson(rows) + '\n')
    } else await io.stdout.write(formatDeadLetters(shown))
    return 0
  },
)

const redriveDeadLetters = defineCommand(
  {
    name: 'tideway dlq redrive',
    synopsis: '<dlt-topic> [options]',
    summary: 'Send dead letters back to where they failed, in order (a dry run without --execute).',
    positionals: ['topic'],
    options: {
      group: { type: 'string', placeholder: 'GROUP', help: 'only dead letters of this consumer group (with its own redrive cursor)' },
      execute: { type: 'boolean', help: 'send them; without it, print what would be sent' },
    },
  },
  async (io, [topic], options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const cursorGroup = options.group === undefined ? REDRIVE_CURSOR_GROUP : `${REDRIVE_CURSOR_GROUP}-${options.group}`
    const admin = new Admin(connection.clientOptions)
    const context = { action: `redrive "${topic}"`, bootstrap: connection.bootstrap, topic: topic! }
    try {
      const [fetched] = await clientCall(context, () => admin.listConsumerGroupOffsets({ groups: [cursorGroup] }))
      const cursor = new Map<number, bigint>()
      for (const t of fetched?.topics ?? []) if (t.name === topic) for (const p of t.partitions) if (p.committedOffset >= 0n) cursor.set(p.partitionIndex, p.committedOffset)
      const { letters, ends } = await readDeadLetters(io, connection, topic!)
      const pending = letters.filter((l) => l.dltOffset >= (cursor.get(l.dltPartition) ?? 0n) && (options.group === undefined || l.group === options.group))
      const redriveId = randomUUID()
      const { steps, skipped } = planRedrive(pending, redriveId)
      if (skipped.length > 0) io.stderr.write(`${skipped.length} record(s) have no dead-letter provenance and stay where they are\n`)
      if (!options.execute) {
        if (options.json) await io.stdout.write(toJson({ execute: false, records: steps.length, to: steps.map((s) => ({ topic: s.topic, partition: s.message.partition, from: s.from.dltOffset })) }) + '\n')
        else await io.stdout.write(formatRedrivePlan(steps))
        io.stderr.write(`dry run: ${steps.length} dead letter(s) would be sent back; add --execute to send them\n`)
        return 0
      }
      const producer = createProducer({ bootstrap: connection.clientOptions.bootstrapBrokers as string[], delivery: 'at-least-once', clientId: 'tideway-dlq-redrive' })
      try {
        await clientCall(context, () => sendRedrive(producer, steps))
      } finally {
        await producer.close()
      }
      await clientCall(context, () =>
        admin.alterConsumerGroupOffsets({ groupId: cursorGroup, topics: [{ name: topic!, partitionOffsets: ends.map((offset, partition) => ({ partition, offset })) }] }),
      )
      if (options.json) await io.stdout.write(toJson({ execute: true, redriveId, records: steps.length }) + '\n')
      else await io.stdout.write(formatRedrivePlan(steps))
      io.stderr.write(`sent ${steps.length} dead letter(s) back (redrive ${redriveId})\n`)
      return 0
    } finally {
      await admin.close().catch(() => {})
    }
  },
)

export const dlqCommands: Readonly<Record<string, ClientCommand>> = {
  list: listDeadLetterTopics,
  show: showDeadLetters,
  redrive: redriveDeadLetters,
}
