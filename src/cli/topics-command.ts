// `tideway topics create|list|describe|alter|delete`: topic administration through the Kafka Admin
// APIs (CreateTopics, Metadata, ListOffsets, DescribeConfigs, IncrementalAlterConfigs,
// DeleteTopics), so it works against
// any Kafka-protocol cluster. A named topic is looked up first, so a missing one is reported as
// `topic "x" does not exist` at once instead of after the client's retries.
import {
  Admin,
  ConfigResourceTypes,
  ConfigSources,
  IncrementalAlterConfigOperationTypes,
  type ConfigSourceValue,
  type IncrementalAlterConfigsOptions,
} from '@platformatic/kafka'
import { parseDuration, parseInteger, parsePairs } from './args.ts'
import { clientCall, defineCommand, type ClientCommand } from './command.ts'
import { resolveConnection, type Connection } from './connection.ts'
import { CommandError, UsageError } from './errors.ts'
import { formatFields, formatTable, toJson } from './output.ts'

const EARLIEST = -2n
const LATEST = -1n

async function withAdmin<T>(connection: Connection, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(connection.clientOptions)
  try {
    return await use(admin)
  } finally {
    await admin.close().catch(() => {})
  }
}

async function requireTopic(admin: Admin, connection: Connection, topic: string): Promise<void> {
  const topics = await clientCall({ action: 'list topics', bootstrap: connection.bootstrap }, () => admin.listTopics({ includeInternals: true }))
  if (!topics.includes(topic)) throw new CommandError(`topic "${topic}" does not exist`)
}

const createTopic = defineCommand(
  {
    name: 'tideway topics create',
    synopsis: '<name> [options]',
    summary: 'Create a topic.',
    positionals: ['name'],
    options: {
      partitions: { type: 'string', placeholder: 'N', help: 'number of partitions (default: the broker\'s default)' },
      'replication-factor': { type: 'string', placeholder: 'N', help: 'copies of each partition (default: the broker\'s default; Tideway has 1)' },
      config: { type: 'string', multiple: true, placeholder: 'KEY=VALUE', help: 'topic config, e.g. retention.ms=86400000 (repeatable)' },
      kind: { type: 'string', placeholder: 'stream|pubsub', help: 'Tideway topic kind (the tideway.topic.kind config; default stream)' },
      dedup: { type: 'boolean', help: 'store each idempotency key once (tideway.dedup.enable=true; header idempotency-key)' },
      'dedup-window': {
        type: 'string',
        placeholder: 'DURATION',
        help: 'with --dedup: how long a key is remembered, e.g. 10m or PT2H (tideway.dedup.window.ms; default 1h)',
      },
    },
  },
  async (io, [name], options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const partitions = options.partitions === undefined ? undefined : parseInteger('--partitions', options.partitions, 1)
    const replicas =
      options['replication-factor'] === undefined ? undefined : parseInteger('--replication-factor', options['replication-factor'], 1, 32767)
    const configs = parsePairs('--config', options.config).map(([name, value]) => ({ name, value }))
    if (options.kind !== undefined) {
      if (options.kind !== 'stream' && options.kind !== 'pubsub') throw new UsageError(`--kind must be stream or pubsub, got "${options.kind}"`)
      configs.push({ name: 'tideway.topic.kind', value: options.kind })
    }
    if (options['dedup-window'] !== undefined && !options.dedup) throw new UsageError('--dedup-window needs --dedup')
    if (options.dedup) configs.push({ name: 'tideway.dedup.enable', value: 'true' })
    if (options['dedup-window'] !== undefined) {
      configs.push({ name: 'tideway.dedup.window.ms', value: String(parseDuration('--dedup-window', options['dedup-window'])) })
    }
    const topic = name!
    const [created] = await withAdmin(connection, (admin) =>
      clientCall({ action: `create topic "${topic}"`, bootstrap: connection.bootstrap, topic }, () =>
        admin.createTopics({
          topics: [topic],
          ...(partitions === undefined ? {} : { partitions }),
          ...(replicas === undefined ? {} : { replicas }),
          configs,
        }),
      ),
    )
    // CreateTopics v5+ answers with the partition count and configs; older brokers answer -1.
    const partitionCount = created && created.partitions > 0 ? created.partitions : partitions
    if (options.json) {
      await io.stdout.write(
        toJson({
          topic,
          partitions: partitionCount ?? null,
          replicationFactor: created && created.replicas > 0 ? created.replicas : (replicas ?? null),
          configs: Object.fromEntries(configs.map((c) => [c.name, c.value])),
        }) + '\n',
      )
    } else {
      const count = partitionCount === undefined ? '' : ` with ${partitionCount} partition${partitionCount === 1 ? '' : 's'}`
      await io.stdout.write(`created topic "${topic}"${count}\n`)
    }
    return 0
  },
)

const listTopics = defineCommand(
  {
    name: 'tideway topics list',
    synopsis: '[options]',
    summary: 'List the topics with their partition counts.',
    positionals: [],
    options: {},
  },
  async (io, _positionals, options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const context = { action: 'list topics', bootstrap: connection.bootstrap }
    const topics = await withAdmin(connection, async (admin) => {
      const names = (await clientCall(context, () => admin.listTopics())).sort()
      if (names.length === 0) return []
      const metadata = await clientCall(context, () => admin.metadata({ topics: names }))
      return names.map((name) => ({ name, partitions: metadata.topics.get(name)?.partitionsCount ?? 0 }))
    })
    if (options.json) {
      await io.stdout.write(toJson(topics) + '\n')
    } else if (topics.length === 0) {
      await io.stdout.write('no topics\n')
    } else {
      await io.stdout.write(formatTable(['TOPIC', 'PARTITIONS'], topics.map((t) => [t.name, String(t.partitions)]), [1]))
    }
    return 0
  },
)

const configSourceNames: Record<ConfigSourceValue, string> = {
  [ConfigSources.UNKNOWN]: 'unknown',
  [ConfigSources.DYNAMIC_TOPIC_CONFIG]: 'topic',
  [ConfigSources.DYNAMIC_BROKER_CONFIG]: 'broker',
  [ConfigSources.DYNAMIC_DEFAULT_BROKER_CONFIG]: 'cluster default',
  [ConfigSources.STATIC_BROKER_CONFIG]: 'broker file',
  [ConfigSources.DEFAULT_CONFIG]: 'default',
  [ConfigSources.DYNAMIC_BROKER_LOGGER_CONFIG]: 'broker logger',
  [ConfigSources.CLIENT_METRICS_CONFIG]: 'client metrics',
  [ConfigSources.GROUP_CONFIG]: 'group',
}

const describeTopic = defineCommand(
  {
    name: 'tideway topics describe',
    synopsis: '<name> [options]',
    summary: 'Show a topic\'s partitions (leader, earliest and latest offsets) and its configs.',
    positionals: ['name'],
    options: {},
  },
  async (io, [name], options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const topic = name!
    const context = { action: `describe topic "${topic}"`, bootstrap: connection.bootstrap, topic }
    const description = await withAdmin(connection, async (admin) => {
      await requireTopic(admin, connection, topic)
      const metadata = await clientCall(context, () => admin.metadata({ topics: [topic] }))
      const partitionsMetadata = metadata.topics.get(topic)?.partitions ?? []
      const indexes = partitionsMetadata.map((_, i) => i)
      const offsetsAt = async (timestamp: bigint) => {
        const listed = await clientCall(context, () =>
          admin.listOffsets({ topics: [{ name: topic, partitions: indexes.map((partitionIndex) => ({ partitionIndex, timestamp })) }] }),
        )
        const byPartition = new Map<number, bigint>()
        for (const t of listed) for (const p of t.partitions) byPartition.set(p.partitionIndex, p.offset)
        return byPartition
      }
      const earliest = await offsetsAt(EARLIEST)
      const latest = await offsetsAt(LATEST)
      const [described] = await clientCall(context, () =>
        admin.describeConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic }] }),
      )
      return {
        topic,
        partitions: partitionsMetadata.map((p, partition) => ({
          partition,
          leader: p.leader,
          replicas: p.replicas,
          isr: p.isr,
          earliestOffset: earliest.get(partition) ?? null,
          latestOffset: latest.get(partition) ?? null,
        })),
        configs: (described?.configs ?? [])
          .map((c) => ({
            name: c.name,
            value: c.isSensitive ? null : c.value,
            source: configSourceNames[c.configSource] ?? String(c.configSource),
            readOnly: c.readOnly,
            sensitive: c.isSensitive,
          }))
          .sort((a, b) => a.name.localeCompare(b.name)),
      }
    })
    if (options.json) {
      // Configs keyed by name, so a script reads `.configs["retention.ms"].value`.
      const configs = Object.fromEntries(description.configs.map(({ name, ...rest }) => [name, rest]))
      await io.stdout.write(toJson({ ...description, configs }) + '\n')
      return 0
    }
    const records = description.partitions.reduce(
      (sum, p) => sum + (p.latestOffset !== null && p.earliestOffset !== null ? p.latestOffset - p.earliestOffset : 0n),
      0n,
    )
    const text = [
      formatFields([
        ['topic', topic],
        ['partitions', String(description.partitions.length)],
        ['records', `${records} (latest - earliest, summed over partitions)`],
      ]),
      formatTable(
        ['PARTITION', 'LEADER', 'EARLIEST', 'LATEST'],
        description.partitions.map((p) => [String(p.partition), String(p.leader), String(p.earliestOffset ?? '?'), String(p.latestOffset ?? '?')]),
        [0, 1, 2, 3],
      ),
      formatTable(
        ['CONFIG', 'VALUE', 'SOURCE'],
        description.configs.map((c) => [c.name, c.sensitive ? '(sensitive)' : (c.value ?? '(null)'), c.source]),
      ),
    ]
    await io.stdout.write(text.join('\n'))
    return 0
  },
)

const alterTopic = defineCommand(
  {
    name: 'tideway topics alter',
    synopsis: '<name> --config KEY=VALUE ... [--delete-config KEY ...] [options]',
    summary: 'Change a topic\'s configs at once, without a restart (IncrementalAlterConfigs: keys not named keep their values).',
    positionals: ['name'],
    options: {
      config: { type: 'string', multiple: true, placeholder: 'KEY=VALUE', help: 'set a config, e.g. retention.ms=86400000 (repeatable)' },
      'delete-config': { type: 'string', multiple: true, placeholder: 'KEY', help: 'return a config to its default (repeatable)' },
      'validate-only': { type: 'boolean', help: 'check the change with the broker without applying it' },
    },
  },
  async (io, [name], options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const topic = name!
    const sets = parsePairs('--config', options.config)
    const deletes = options['delete-config'] ?? []
    if (sets.length === 0 && deletes.length === 0) throw new UsageError('nothing to change: give --config KEY=VALUE or --delete-config KEY')
    const configs: IncrementalAlterConfigsOptions['resources'][number]['configs'] = [
      ...sets.map(([key, value]) => ({ name: key, configOperation: IncrementalAlterConfigOperationTypes.SET, value })),
      ...deletes.map((key) => ({ name: key, configOperation: IncrementalAlterConfigOperationTypes.DELETE })),
    ]
    const validateOnly = options['validate-only'] === true
    await withAdmin(connection, async (admin) => {
      await requireTopic(admin, connection, topic)
      await clientCall({ action: `alter topic "${topic}"`, bootstrap: connection.bootstrap, topic }, () =>
        admin.incrementalAlterConfigs({
          resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configs }],
          validateOnly,
        }),
      )
    })
    if (options.json) {
      await io.stdout.write(toJson({ topic, set: Object.fromEntries(sets), deleted: deletes, validateOnly }) + '\n')
    } else {
      const changed = [...sets.map(([key, value]) => `${key}=${value}`), ...deletes.map((key) => `${key} (default)`)].join(', ')
      await io.stdout.write(`${validateOnly ? 'valid, not applied' : 'altered'} topic "${topic}": ${changed}\n`)
    }
    return 0
  },
)

const deleteTopic = defineCommand(
  {
    name: 'tideway topics delete',
    synopsis: '<name> [options]',
    summary: 'Delete a topic and all its records.',
    positionals: ['name'],
    options: {},
  },
  async (io, [name], options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const topic = name!
    await withAdmin(connection, async (admin) => {
      await requireTopic(admin, connection, topic)
      await clientCall({ action: `delete topic "${topic}"`, bootstrap: connection.bootstrap, topic }, () => admin.deleteTopics({ topics: [topic] }))
    })
    await io.stdout.write(options.json ? toJson({ topic, deleted: true }) + '\n' : `deleted topic "${topic}"\n`)
    return 0
  },
)

export const topicsCommands: Readonly<Record<string, ClientCommand>> = {
  create: createTopic,
  list: listTopics,
  describe: describeTopic,
  alter: alterTopic,
  delete: deleteTopic,
}
