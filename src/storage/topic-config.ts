// Topic configuration: one table of keys (Kafka's names), each with its type, default,
// validation and documentation. CreateTopics validates against it, DescribeConfigs lists it,
// and the partition log reads its settings from the parsed result.

import { TidewayError } from '../errors.ts'

type ConfigType = 'long' | 'int' | 'string'

interface ConfigSpec {
  readonly name: string
  readonly type: ConfigType
  readonly default: number | string
  readonly doc: string
  /** Returns an error message, or undefined when the value is acceptable. */
  readonly check?: (value: number | string) => string | undefined
}

const atLeast = (min: number) => (v: number | string) => (typeof v === 'number' && v < min ? `must be at least ${min}` : undefined)
const oneOf = (...allowed: string[]) => (v: number | string) =>
  allowed.includes(String(v)) ? undefined : `must be one of ${allowed.join(', ')}`

export const topicConfigTable = [
  {
    name: 'cleanup.policy',
    type: 'string',
    default: 'delete',
    doc: 'What happens to old segments: "delete" removes them by retention.ms and retention.bytes.',
    check: oneOf('delete'),
  },
  {
    name: 'retention.ms',
    type: 'long',
    default: 604800000,
    doc: 'Delete a segment once its newest record is older than this (-1: keep forever).',
    check: atLeast(-1),
  },
  {
    name: 'retention.bytes',
    type: 'long',
    default: -1,
    doc: 'Delete the oldest segments while a partition is larger than this (-1: no limit).',
    check: atLeast(-1),
  },
  {
    name: 'segment.bytes',
    type: 'int',
    default: 134217728,
    doc: 'Start a new segment file when the active one would grow past this size.',
    check: atLeast(1024),
  },
  {
    name: 'segment.ms',
    type: 'long',
    default: 604800000,
    doc: 'Start a new segment file when the active one is older than this.',
    check: atLeast(1),
  },
  {
    name: 'max.message.bytes',
    type: 'int',
    default: 1048588,
    doc: 'Largest record batch accepted (after compression); larger ones get MESSAGE_TOO_LARGE.',
    check: atLeast(0),
  },
  {
    name: 'message.timestamp.type',
    type: 'string',
    default: 'CreateTime',
    doc: 'Record timestamps are the producer\'s (CreateTime); LogAppendTime is not supported yet.',
    check: oneOf('CreateTime'),
  },
] as const satisfies readonly ConfigSpec[]

export type TopicConfigName = (typeof topicConfigTable)[number]['name']

export interface TopicConfig {
  'cleanup.policy': string
  'retention.ms': number
  'retention.bytes': number
  'segment.bytes': number
  'segment.ms': number
  'max.message.bytes': number
  'message.timestamp.type': string
}

const byName = new Map<string, ConfigSpec>(topicConfigTable.map((spec) => [spec.name, spec]))

/** Parses explicitly set entries over the defaults; an unknown key or a bad value is an error. */
export function parseTopicConfig(entries: Readonly<Record<string, string>>): TopicConfig {
  const config: Record<string, number | string> = {}
  for (const spec of topicConfigTable) config[spec.name] = spec.default
  for (const [name, raw] of Object.entries(entries)) {
    const spec = byName.get(name)
    if (!spec) throw new TidewayError('TIDEWAY_ERR_CONFIG', `unknown topic config "${name}"`)
    let value: number | string = raw
    if (spec.type !== 'string') {
      value = Number(raw)
      if (raw.trim() === '' || !Number.isSafeInteger(value)) {
        throw new TidewayError('TIDEWAY_ERR_CONFIG', `${name} must be an integer, got "${raw}"`)
      }
    }
    const problem = spec.check?.(value)
    if (problem) throw new TidewayError('TIDEWAY_ERR_CONFIG', `${name} ${problem}, got "${raw}"`)
    config[name] = value
  }
  return config as unknown as TopicConfig
}
