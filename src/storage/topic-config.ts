// Topic configuration: one table of keys (Kafka's names), each with its type, default,
// validation and documentation. CreateTopics validates against it, DescribeConfigs lists it,
// the TopicConfig type is derived from it, and the partition log reads its settings through
// toLogConfig. Adding a key means adding one row here.

import { TidewayError } from '../errors.ts'
import type { FlushPolicy, LogConfig } from './partition-log.ts'

type ConfigType = 'long' | 'int' | 'string' | 'boolean'

interface ConfigSpec {
  readonly name: string
  readonly type: ConfigType
  readonly default: number | string | boolean
  readonly doc: string
  /** Returns why the value is unacceptable, or undefined when it is fine. */
  readonly check: (value: number | string | boolean) => string | undefined
}

const INT32_MAX = 2 ** 31 - 1

const between = (min: number, max: number) => (v: number | string | boolean) =>
  typeof v === 'number' && (v < min || v > max) ? `must be between ${min} and ${max}` : undefined
const atLeast = (min: number) => between(min, Number.MAX_SAFE_INTEGER)
const oneOf =
  (...allowed: string[]) =>
  (v: number | string | boolean) =>
    allowed.includes(String(v)) ? undefined : `must be one of ${allowed.join(', ')}`

export const topicConfigTable = [
  {
    name: 'cleanup.policy',
    type: 'string',
    default: 'delete',
    doc:
      'What happens to old segments: "delete" removes them by retention.ms and retention.bytes; "compact" keeps ' +
      'the last record of each key (a background cleaner rewrites closed segments; records without a key are ' +
      'refused); "compact,delete" does both.',
    check: (v) => {
      const policies = String(v).split(',').map((p) => p.trim())
      const known = policies.every((p) => p === 'compact' || p === 'delete')
      return known && new Set(policies).size === policies.length ? undefined : 'must be delete, compact, or compact,delete'
    },
  },
  {
    name: 'min.compaction.lag.ms',
    type: 'long',
    default: 0,
    doc: 'Compacted topics: a record is never removed by compaction until it is at least this many milliseconds old (by its timestamp).',
    check: atLeast(0),
  },
  {
    name: 'delete.retention.ms',
    type: 'long',
    default: 86400000,
    doc:
      'Compacted topics: how long a tombstone (a record with a null value) stays after its timestamp, so consumers ' +
      'reading the topic from the start within that time see the deletion; then compaction removes it.',
    check: atLeast(0),
  },
  {
    name: 'retention.ms',
    type: 'long',
    default: 604800000,
    doc: 'Delete a closed segment once its newest record timestamp is older than this many milliseconds (-1: keep forever).',
    check: atLeast(-1),
  },
  {
    name: 'retention.bytes',
    type: 'long',
    default: -1,
    doc: 'Delete the oldest closed segments while the partition would still hold at least this many bytes without them (-1: no limit).',
    check: atLeast(-1),
  },
  {
    name: 'segment.bytes',
    type: 'int',
    default: 134217728,
    doc: 'Start a new segment file when the active one would grow past this many bytes. Retention deletes whole segments.',
    // Index entries store file positions as u32, so a segment must stay below 2 GiB.
    check: between(1024, INT32_MAX),
  },
  {
    name: 'segment.ms',
    type: 'long',
    default: 604800000,
    doc: 'Start a new segment file when the active one is older than this many milliseconds, so time retention can delete it.',
    check: atLeast(1),
  },
  {
    name: 'max.message.bytes',
    type: 'int',
    default: 1048588,
    doc: 'Largest record batch accepted, after compression; a larger one is refused with MESSAGE_TOO_LARGE.',
    check: between(0, INT32_MAX),
  },
  {
    name: 'tideway.topic.kind',
    type: 'string',
    default: 'stream',
    doc:
      'stream: records stay until retention.ms/retention.bytes, and a new consumer group may start anywhere. ' +
      'pubsub: a consumer group that subscribes starts at the end whatever its client\'s reset policy, and a ' +
      'segment is deleted once every group with offsets on the partition has committed past it ' +
      '(retention.ms and retention.bytes still apply, as caps for subscribers that never come back).',
    check: oneOf('stream', 'pubsub'),
  },
  {
    name: 'tideway.dedup.enable',
    type: 'boolean',
    default: false,
    doc:
      'Idempotency-key dedup: a record whose tideway.dedup.header value was already stored in this partition within the ' +
      'window is not stored again, and its produce is answered with the offset of the original. Records without the ' +
      'header are stored as usual. The broker opens (inflates) every batch of such a topic.',
    check: () => undefined,
  },
  {
    name: 'tideway.dedup.header',
    type: 'string',
    default: 'idempotency-key',
    doc: 'The record header whose value is the idempotency key (compared as bytes; an empty or null value is no key).',
    check: (v) => (typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= 255 ? undefined : 'must be 1 to 255 bytes'),
  },
  {
    name: 'tideway.dedup.window.ms',
    type: 'long',
    default: 3600000,
    doc:
      'How long a key is remembered after its original was stored (after a broker restart: counted from the ' +
      "original record's timestamp). A key sent again later is stored again.",
    check: atLeast(1),
  },
  {
    name: 'tideway.dedup.window.records',
    type: 'long',
    default: 100000,
    doc:
      "A key is also forgotten once its original is more than this many offsets behind the partition's end. Bounds " +
      'memory (about 200 bytes a key) and the rebuild after a restart.',
    check: between(1, 100_000_000),
  },
  {
    name: 'message.timestamp.type',
    type: 'string',
    default: 'CreateTime',
    doc: "Record timestamps are the producer's (CreateTime). LogAppendTime is not supported yet.",
    check: oneOf('CreateTime'),
  },
] as const satisfies readonly ConfigSpec[]

type Spec = (typeof topicConfigTable)[number]
export type TopicConfigName = Spec['name']

/** The effective configuration of a topic: every key of the table, typed by its row. */
export type TopicConfig = {
  readonly [S in Spec as S['name']]: S['type'] extends 'string' ? string : S['type'] extends 'boolean' ? boolean : number
}

/** Bytes of log between two sparse offset-index entries (Kafka's index.interval.bytes). */
export const INDEX_INTERVAL_BYTES = 4096

const byName = new Map<string, ConfigSpec>(topicConfigTable.map((spec) => [spec.name, spec]))

/**
 * Parses explicitly set entries (string values, as they arrive in CreateTopics) over the
 * defaults. An unknown key or a bad value is a TIDEWAY_ERR_CONFIG naming the key.
 */
export function parseTopicConfig(entries: Readonly<Record<string, string>>): TopicConfig {
  const config: Record<string, number | string | boolean> = {}
  for (const spec of topicConfigTable) config[spec.name] = spec.default
  for (const [name, raw] of Object.entries(entries)) {
    const spec = byName.get(name)
    if (!spec) throw new TidewayError('TIDEWAY_ERR_CONFIG', `unknown topic config "${name}"`, { context: { config: name } })
    let value: number | string | boolean = raw
    if (spec.type === 'boolean') {
      const lower = raw.trim().toLowerCase()
      if (lower !== 'true' && lower !== 'false') {
        throw new TidewayError('TIDEWAY_ERR_CONFIG', `${name} must be true or false, got "${raw}"`, { context: { config: name } })
      }
      value = lower === 'true'
    } else if (spec.type !== 'string') {
      value = Number(raw)
      if (raw.trim() === '' || !Number.isSafeInteger(value)) {
        throw new TidewayError('TIDEWAY_ERR_CONFIG', `${name} must be an integer, got "${raw}"`, { context: { config: name } })
      }
    }
    const problem = spec.check(value)
    if (problem) throw new TidewayError('TIDEWAY_ERR_CONFIG', `${name} ${problem}, got "${raw}"`, { context: { config: name } })
    config[name] = value
  }
  return config as TopicConfig
}

/** A key's default as text (as DescribeConfigs shows it); undefined for an unknown key. */
export function topicConfigDefault(name: string): string | undefined {
  const spec = byName.get(name)
  return spec ? String(spec.default) : undefined
}

/** Configs whose value is a comma-separated list (IncrementalAlterConfigs APPEND and SUBTRACT). */
export function isListConfig(name: string): boolean {
  return name === 'cleanup.policy'
}

/** Which of cleanup.policy's policies a topic has. */
export function cleanupPolicies(config: TopicConfig): { compact: boolean; delete: boolean } {
  const policies = config['cleanup.policy'].split(',').map((p) => p.trim())
  return { compact: policies.includes('compact'), delete: policies.includes('delete') }
}

/** The partition log's view of a topic's configuration. */
export function toLogConfig(config: TopicConfig, flush: FlushPolicy): LogConfig {
  const policies = cleanupPolicies(config)
  return {
    segmentBytes: config['segment.bytes'],
    segmentMs: config['segment.ms'],
    // compact alone: retention never deletes segments (Kafka's rule).
    retentionMs: policies.delete ? config['retention.ms'] : -1,
    retentionBytes: policies.delete ? config['retention.bytes'] : -1,
    indexIntervalBytes: INDEX_INTERVAL_BYTES,
    flush,
    ...(config['tideway.dedup.enable']
      ? {
          dedup: {
            header: config['tideway.dedup.header'],
            windowMs: config['tideway.dedup.window.ms'],
            windowRecords: config['tideway.dedup.window.records'],
          },
        }
      : {}),
    ...(policies.compact
      ? { compaction: { minLagMs: config['min.compaction.lag.ms'], deleteRetentionMs: config['delete.retention.ms'] } }
      : {}),
  }
}
