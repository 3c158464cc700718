// `tideway topics|produce|consume`: client commands built on @platformatic/kafka only (never the
// broker's internals), so they work against any Kafka-protocol cluster. Exit codes: 0 ok,
// 1 failure (one clear line on stderr), 2 usage error.

import { randomUUID } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import {
  Admin,
  Consumer,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka'

class UsageError extends Error {}
class CommandFailure extends Error {}

const connection = (bootstrap: string, clientId: string) => ({
  clientId,
  bootstrapBrokers: [bootstrap],
  connectTimeout: 5000,
  requestTimeout: 30000,
  retries: 2,
  retryDelay: 250,
})

const commonOptions = {
  bootstrap: { type: 'string', default: process.env.TIDEWAY_BOOTSTRAP ?? '127.0.0.1:9092' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options']

const usage = {
  topics: `Usage:
  tideway topics create <name> [--partitions N] [--replication-factor N] [--config key=value ...]
  tideway topics list
  tideway topics describe <name>
  tideway topics delete <name>
Options: --bootstrap host:port (default 127.0.0.1:9092, env TIDEWAY_BOOTSTRAP), --json`,
  produce: `Usage: tideway produce <topic> [--key-separator SEP] [--partition N] [--acks all|1|0] [--header k=v ...]
Reads stdin; each line is one record (the text before SEP is its key). Sends in batches.
Options: --bootstrap host:port, --json (one result per batch on stdout)`,
  consume: `Usage: tideway consume <topic> [--from beginning|end|<offset>|@<ms or ISO time>] [--partition N]
                        [--follow] [--max N] [--group G] [--format text|json]
Without --follow, stops at the end of the partitions as they were when it started.
Output: "partition:offset<TAB>key<TAB>value" per record, or JSON lines with --json.
Options: --bootstrap host:port`,
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...commonOptions, ...options }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

function integer(text: string | undefined, name: string, min = 0): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got "${text}"`)
  return n
}

function keyValues(list: string[] | undefined, name: string): [string, string][] {
  return (list ?? []).map((entry) => {
    const eq = entry.indexOf('=')
    if (eq <= 0) throw new UsageError(`${name} takes key=value, got "${entry}"`)
    return [entry.slice(0, eq), entry.slice(eq + 1)]
  })
}

/** Turns a client error into one readable line. */
function describeError(err: unknown): string {
  const e = err as { message?: string; errors?: unknown[]; cause?: unknown }
  const inner = Array.isArray(e.errors) && e.errors.length > 0 ? describeError(e.errors[0]) : ''
  const message = e.message ?? String(err)
  return inner && !message.includes(inner) ? `${message}: ${inner}` : message
}

async function topicPartitions(admin: Admin, topic: string): Promise<number> {
  let metadata
  try {
    metadata = await admin.metadata({ topics: [topic], autocreateTopics: false })
  } catch (err) {
    throw new CommandFailure(`topic "${topic}" does not exist or the cluster is unreachable (${describeError(err)})`)
  }
  const described = metadata.topics.get(topic)
  if (!described) throw new CommandFailure(`topic "${topic}" does not exist`)
  return described.partitionsCount
}

// ---------------------------------------------------------------------------------------------

async function topics(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    partitions: { type: 'string' },
    'replication-factor': { type: 'string' },
    config: { type: 'string', multiple: true },
  })
  const [sub, name] = positionals
  if (values.help || !sub) {
    process.stdout.write(usage.topics + '\n')
    return values.help ? 0 : 2
  }
  const admin = new Admin(connection(values.bootstrap, 'tideway-cli-admin'))
  const out = (human: string, json: unknown) => process.stdout.write((values.json ? JSON.stringify(json) : human) + '\n')
  try {
    switch (sub) {
      case 'list': {
        const names = (await admin.listTopics()).sort()
        const metadata = names.length > 0 ? await admin.metadata({ topics: names }) : undefined
        const rows = names.map((n) => ({ name: n, partitions: metadata?.topics.get(n)?.partitionsCount ?? 0 }))
        const width = Math.max(5, ...rows.map((r) => r.name.length))
        out([`${'TOPIC'.padEnd(width)}  PARTITIONS`, ...rows.map((r) => `${r.name.padEnd(width)}  ${r.partitions}`)].join('\n'), rows)
        return 0
      }
      case 'create': {
        if (!name) throw new UsageError('topics create needs a topic name')
        const partitions = integer(values.partitions, '--partitions', 1) ?? -1
        const replicas = integer(values['replication-factor'], '--replication-factor', 1) ?? -1
        const configs = keyValues(values.config, '--config').map(([n, v]) => ({ name: n, value: v }))
        try {
          const [created] = await admin.createTopics({ topics: [name], partitions, replicas, configs })
          out(`created topic ${name} with ${created?.partitions ?? partitions} partitions`, { name, partitions: created?.partitions, id: created?.id })
        } catch (err) {
          throw new CommandFailure(`cannot create topic "${name}": ${describeError(err)}`)
        }
        return 0
      }
      case 'describe': {
        if (!name) throw new UsageError('topics describe needs a topic name')
        const count = await topicPartitions(admin, name)
        const consumer = new Consumer({ ...connection(values.bootstrap, 'tideway-cli-describe'), groupId: `tideway-cli-${randomUUID()}` })
        try {
          const earliest = (await consumer.listOffsets({ topics: [name], timestamp: -2n })).get(name) ?? []
          const latest = (await consumer.listOffsets({ topics: [name], timestamp: -1n })).get(name) ?? []
          const [description] = await admin.describeConfigs({ resources: [{ resourceType: 2, resourceName: name }] })
          const configs = Object.fromEntries((description?.configs ?? []).map((c) => [c.name, c.value]))
          const partitions = Array.from({ length: count }, (_, p) => ({
            partition: p,
            earliest: String(earliest[p] ?? -1n),
            latest: String(latest[p] ?? -1n),
          }))
          const human = [
            `topic ${name}: ${count} partitions`,
            'PARTITION  EARLIEST  LATEST',
            ...partitions.map((p) => `${String(p.partition).padEnd(9)}  ${p.earliest.padEnd(8)}  ${p.latest}`),
            'CONFIG',
            ...Object.entries(configs).map(([k, v]) => `  ${k}=${v}`),
          ].join('\n')
          out(human, { name, partitions, configs })
        } finally {
          await consumer.close()
        }
        return 0
      }
      case 'delete': {
        if (!name) throw new UsageError('topics delete needs a topic name')
        await topicPartitions(admin, name)
        await admin.deleteTopics({ topics: [name] })
        out(`deleted topic ${name}`, { name, deleted: true })
        return 0
      }
      default:
        throw new UsageError(`unknown topics subcommand "${sub}"`)
    }
  } finally {
    await admin.close().catch(() => {})
  }
}

// ---------------------------------------------------------------------------------------------

const PRODUCE_BATCH = 500

async function produce(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    'key-separator': { type: 'string' },
    partition: { type: 'string' },
    acks: { type: 'string', default: 'all' },
    header: { type: 'string', multiple: true },
  })
  const [topic] = positionals
  if (values.help || !topic) {
    process.stdout.write(usage.produce + '\n')
    return values.help ? 0 : 2
  }
  const acks = ({ all: -1, '-1': -1, '1': 1, '0': 0 } as Record<string, number>)[values.acks]
  if (acks === undefined) throw new UsageError(`--acks must be all, 1 or 0, got "${values.acks}"`)
  const partition = integer(values.partition, '--partition')
  const headers = new Map(keyValues(values.header, '--header'))
  const separator = values['key-separator']

  const producer = new Producer({ ...connection(values.bootstrap, 'tideway-cli-producer'), serializers: stringSerializers, acks })
  let sent = 0
  const offsets = new Map<number, { first: bigint; last: bigint }>()
  const flush = async (lines: string[]) => {
    if (lines.length === 0) return
    const messages = lines.map((line) => {
      const cut = separator ? line.indexOf(separator) : -1
      return {
        topic,
        key: cut >= 0 ? line.slice(0, cut) : undefined,
        value: cut >= 0 ? line.slice(cut + separator!.length) : line,
        ...(partition === undefined ? {} : { partition }),
        ...(headers.size > 0 ? { headers } : {}),
      }
    })
    let result
    try {
      result = await producer.send({ messages, acks })
    } catch (err) {
      throw new CommandFailure(`sending to "${topic}" failed after ${sent} records: ${describeError(err)}`)
    }
    sent += lines.length
    for (const o of result.offsets ?? []) {
      const seen = offsets.get(o.partition)
      offsets.set(o.partition, { first: seen?.first ?? o.offset, last: o.offset })
    }
    if (values.json) {
      process.stdout.write(JSON.stringify({ records: lines.length, offsets: (result.offsets ?? []).map((o) => ({ partition: o.partition, offset: String(o.offset) })) }) + '\n')
    }
  }
  try {
    let batch: string[] = []
    for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
      batch.push(line)
      if (batch.length >= PRODUCE_BATCH) {
        await flush(batch)
        batch = []
      }
    }
    await flush(batch)
  } finally {
    await producer.close().catch(() => {})
  }
  const where = [...offsets].sort((a, b) => a[0] - b[0]).map(([p, o]) => `${p}@${o.first}..${o.last}`)
  process.stderr.write(`produced ${sent} records to ${topic}${where.length ? ` (partition@first batch offset..last batch offset: ${where.join(', ')})` : ''}\n`)
  return 0
}

// ---------------------------------------------------------------------------------------------

async function consume(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    from: { type: 'string' },
    partition: { type: 'string' },
    follow: { type: 'boolean', default: false },
    max: { type: 'string' },
    group: { type: 'string' },
    format: { type: 'string', default: 'text' },
  })
  const [topic] = positionals
  if (values.help || !topic) {
    process.stdout.write(usage.consume + '\n')
    return values.help ? 0 : 2
  }
  if (values.format !== 'text' && values.format !== 'json') throw new UsageError('--format must be text or json')
  const asJson = values.json || values.format === 'json'
  const only = integer(values.partition, '--partition')
  const max = integer(values.max, '--max', 1)

  const admin = new Admin(connection(values.bootstrap, 'tideway-cli-admin'))
  let partitionCount: number
  try {
    partitionCount = await topicPartitions(admin, topic)
  } finally {
    await admin.close().catch(() => {})
  }
  if (only !== undefined && only >= partitionCount) throw new CommandFailure(`topic "${topic}" has no partition ${only}`)
  const selected = Array.from({ length: partitionCount }, (_, p) => p).filter((p) => only === undefined || p === only)

  const consumer = new Consumer({
    ...connection(values.bootstrap, 'tideway-cli-consumer'),
    groupId: values.group ?? `tideway-cli-${randomUUID()}`,
    deserializers: stringDeserializers,
  })
  try {
    const latest = (await consumer.listOffsets({ topics: [topic], timestamp: -1n })).get(topic) ?? []
    const start = await startOffsets(consumer, topic, values.from, latest, values.group !== undefined)
    // Without --follow we stop at the end as it was when we started.
    const stopAt = new Map(selected.map((p) => [p, latest[p] ?? 0n]))
    const pending = new Set(selected.filter((p) => start === null || (start[p] ?? 0n) < stopAt.get(p)!))
    if (!values.follow && pending.size === 0) return 0

    const stream = await consumer.consume({
      topics: [topic],
      autocommit: values.group !== undefined,
      ...(start === null
        ? { mode: MessagesStreamModes.COMMITTED, fallbackMode: MessagesStreamFallbackModes.EARLIEST }
        : { mode: MessagesStreamModes.MANUAL, offsets: start.map((offset, partition) => ({ topic, partition, offset })) }),
    })
    const stop = () => void stream.close().catch(() => {})
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    let printed = 0
    try {
      for await (const message of stream) {
        if (!selected.includes(message.partition)) continue
        if (asJson) {
          process.stdout.write(
            JSON.stringify({
              topic,
              partition: message.partition,
              offset: String(message.offset),
              timestamp: String(message.timestamp),
              key: message.key ?? null,
              value: message.value,
              headers: Object.fromEntries(message.headers),
            }) + '\n',
          )
        } else {
          process.stdout.write(`${message.partition}:${message.offset}\t${message.key ?? '-'}\t${message.value}\n`)
        }
        printed++
        if (max !== undefined && printed >= max) break
        if (!values.follow && message.offset + 1n >= stopAt.get(message.partition)!) {
          pending.delete(message.partition)
          if (pending.size === 0) break
        }
      }
    } finally {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      await stream.close().catch(() => {})
    }
    return 0
  } finally {
    await consumer.close(true).catch(() => {})
  }
}

/** Start offset per partition for --from, or null to resume from a group's commits. */
async function startOffsets(
  consumer: Consumer<string, string, string, string>,
  topic: string,
  from: string | undefined,
  latest: bigint[],
  hasGroup: boolean,
): Promise<bigint[] | null> {
  if (from === undefined && hasGroup) return null
  if (from === undefined || from === 'beginning') return (await consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? []
  if (from === 'end') return latest
  if (from.startsWith('@')) {
    const text = from.slice(1)
    const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text)
    if (!Number.isFinite(ms)) throw new UsageError(`--from @ needs milliseconds since the epoch or an ISO time, got "${text}"`)
    const found = (await consumer.listOffsetsWithTimestamps({ topics: [topic], timestamp: BigInt(ms) })).get(topic)
    return latest.map((end, p) => {
      const offset = found?.get(p)?.offset ?? -1n
      return offset < 0n ? end : offset
    })
  }
  const offset = integer(from, '--from')
  if (offset === undefined) throw new UsageError('--from needs a value')
  return latest.map((end) => (BigInt(offset) < end ? BigInt(offset) : end))
}

// ---------------------------------------------------------------------------------------------

export async function runClientCommand(command: 'topics' | 'produce' | 'consume', argv: string[]): Promise<number> {
  try {
    if (command === 'topics') return await topics(argv)
    if (command === 'produce') return await produce(argv)
    return await consume(argv)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tideway ${command}: ${err.message}\n\n${usage[command]}\n`)
      return 2
    }
    process.stderr.write(`tideway: ${err instanceof CommandFailure ? err.message : describeError(err)}\n`)
    return 1
  }
}
