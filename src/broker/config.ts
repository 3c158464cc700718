// The broker's one configuration schema. Each option is declared once, with its type, default
// and documentation; the CLI flag (`--data-dir`), the environment variable (`TIDEWAY_DATA_DIR`),
// the config-file key (`dataDir`) and `tideway broker --help` all derive from this table.
// Precedence, lowest first: defaults, config file, environment, flags, programmatic options.

import { readFileSync } from 'node:fs'
import { TidewayError } from '../errors.ts'
import { isLogLevel, type LogLevel } from '../logger.ts'

import type { FlushPolicy } from '../storage/partition-log.ts'

export type { FlushPolicy }

type Kind = 'string' | 'int' | 'bool' | 'flush' | 'level' | 'address'

interface OptionSpec {
  readonly kind: Kind
  readonly default: unknown
  readonly doc: string
}

export const brokerOptions = {
  host: { kind: 'string', default: '127.0.0.1', doc: 'Address to listen on.' },
  port: { kind: 'int', default: 9092, doc: 'Port to listen on (0 picks a free port).' },
  advertisedHost: {
    kind: 'string',
    default: '',
    doc: 'Host clients are told to connect to in Metadata (default: the listen host).',
  },
  advertisedPort: {
    kind: 'int',
    default: 0,
    doc: 'Port clients are told to connect to in Metadata (default: the bound port).',
  },
  dataDir: { kind: 'string', default: './data', doc: 'Directory holding the logs and topic catalogue.' },
  nodeId: { kind: 'int', default: 0, doc: 'Broker id reported in Metadata.' },
  flush: {
    kind: 'flush',
    default: { mode: 'always' },
    doc:
      'When an acknowledged produce is durable. "always": fsync before every ack, concurrent produces share one ' +
      'fsync (loses nothing acknowledged). "interval:<ms>": ack after write, fsync every <ms> (a power loss or OS ' +
      'crash loses up to <ms> of acknowledged data; a broker crash loses nothing). "never": leave flushing to the ' +
      'OS (a power loss or OS crash loses whatever the OS had not written).',
  },
  autoCreateTopics: {
    kind: 'bool',
    default: true,
    doc: 'Create a topic when a client asks for its metadata and allows auto-creation.',
  },
  defaultPartitions: { kind: 'int', default: 1, doc: 'Partitions of an auto-created topic or a CreateTopics with -1.' },
  maxFrameBytes: {
    kind: 'int',
    default: 100 * 1024 * 1024,
    doc: 'Largest request frame accepted; a larger declared size closes the connection (Kafka: socket.request.max.bytes).',
  },
  maxQueuedRequestBytes: {
    kind: 'int',
    default: 512 * 1024 * 1024,
    doc: 'Request bytes held in memory across all connections before the broker stops reading new requests (Kafka: queued.max.request.bytes).',
  },
  maxInFlightPerConnection: {
    kind: 'int',
    default: 100,
    doc: 'Pipelined requests a connection may have outstanding before the broker stops reading from it.',
  },
  maxConnections: { kind: 'int', default: 10000, doc: 'Open connections allowed; further ones are refused.' },
  idleTimeoutMs: { kind: 'int', default: 600000, doc: 'Close connections idle this long (Kafka: connections.max.idle.ms).' },
  requestReadTimeoutMs: {
    kind: 'int',
    default: 30000,
    doc:
      'Close a connection whose request frame has begun to arrive but is not complete this long after (0: never). ' +
      'Guards against slow-loris clients, which trickle a frame a byte at a time: never idle, so idleTimeoutMs ' +
      'never closes them, they would hold a connection slot and their buffered bytes for ever. Kafka has no such ' +
      'guard. 30 s is the default request timeout of Kafka clients (request.timeout.ms, KafkaJS requestTimeout): ' +
      'a frame still incomplete by then belongs to a request its sender has given up on. Time the broker itself ' +
      'stops reading a connection (back-pressure) does not count.',
  },
  maxFetchWaitMs: { kind: 'int', default: 30000, doc: 'Upper bound on a fetch long-poll, whatever the client asks.' },
  fetchMaxBytes: {
    kind: 'int',
    default: 57671680,
    doc:
      'Most record bytes one Fetch answer holds, whatever the client asks for (Kafka: fetch.max.bytes, 55 MiB); ' +
      'the first batch of the first partition with data is returned whole even if it is larger, so a consumer ' +
      'always makes progress. Bounds the memory each fetch in progress holds.',
  },
  retentionCheckIntervalMs: { kind: 'int', default: 300000, doc: 'How often retention deletes old segments.' },
  cleanerIntervalMs: {
    kind: 'int',
    default: 15000,
    doc: 'How often the log cleaner looks for compacted partitions with sealed segments to clean; passes never overlap (Kafka: log.cleaner.backoff.ms).',
  },
  cleanerIoBytesPerSecond: {
    kind: 'int',
    default: 16777216,
    doc:
      'Most bytes a second the log cleaner reads and writes, all partitions together (0: unlimited), so produce ' +
      'latency is unaffected by compaction (Kafka: log.cleaner.io.max.bytes.per.second).',
  },
  shutdownTimeoutMs: { kind: 'int', default: 10000, doc: 'How long a graceful shutdown waits for in-flight requests.' },
  producerIdExpirationMs: {
    kind: 'int',
    default: 86400000,
    doc: 'How long a partition remembers an idle idempotent producer\'s last batches, to recognise its retries (Kafka: producer.id.expiration.ms, 1 day).',
  },
  groupInitialRebalanceDelayMs: {
    kind: 'int',
    default: 200,
    doc:
      'How long the first rebalance of an empty group waits for more members, extended by this much per new ' +
      'member up to the rebalance timeout (Kafka: group.initial.rebalance.delay.ms, 3000). Lower than Kafka so ' +
      'tests and development, which start groups all the time, do not wait 3 s per group; long enough that ' +
      'consumers started together land in one generation instead of one rebalance each.',
  },
  groupMinSessionTimeoutMs: {
    kind: 'int',
    default: 6000,
    doc: 'Smallest session timeout a member may ask for (Kafka: group.min.session.timeout.ms). Client defaults are 30000-60000.',
  },
  groupMaxSessionTimeoutMs: {
    kind: 'int',
    default: 1800000,
    doc: 'Largest session timeout a member may ask for (Kafka: group.max.session.timeout.ms).',
  },
  groupOffsetsRetentionMs: {
    kind: 'int',
    default: 604800000,
    doc: 'How long a group with no members keeps its committed offsets, counted from when it became empty (Kafka: offsets.retention.minutes, 7 days).',
  },
  groupOffsetsRetentionCheckIntervalMs: {
    kind: 'int',
    default: 600000,
    doc: 'How often expired group offsets are looked for (Kafka: offsets.retention.check.interval.ms).',
  },
  groupMaxSize: {
    kind: 'int',
    default: 1000,
    doc: 'Members (including ones mid-join) one consumer group may have (Kafka: group.max.size).',
  },
  logLevel: { kind: 'level', default: 'info', doc: 'debug, info, warn, error or silent.' },
  http: {
    kind: 'address',
    default: '127.0.0.1:8080',
    doc:
      'Where the HTTP endpoint listens: the web console, /metrics (Prometheus) and /health and /ready. host:port, ' +
      'or "off". With --port 0 and this default, it takes a free port too (the log line "broker started" says which).',
  },
  console: { kind: 'bool', default: true, doc: 'Serve the web console on the HTTP endpoint (read-only unless consoleActions).' },
  consoleActions: {
    kind: 'bool',
    default: false,
    doc: 'Let the console change things (redrive dead letters). Off by default: anyone who reaches the port could use them.',
  },
  consoleSagaDb: {
    kind: 'string',
    default: '',
    doc: 'Where the console reads saga instances: sqlite:PATH or postgres://… (as tideway sagas --db). Empty: no sagas page data.',
  },
  consoleSagaSchema: { kind: 'string', default: '', doc: 'PostgreSQL schema holding the saga tables, for consoleSagaDb.' },
  consoleRedis: {
    kind: 'string',
    default: '',
    doc: 'Redis holding shared circuit breakers, for the console (as tideway breakers list --redis). Empty: no breakers page data.',
  },
  consoleBreakerPrefix: { kind: 'string', default: '', doc: 'Key prefix of the circuit breakers in consoleRedis (empty: the default prefix).' },
} as const satisfies Record<string, OptionSpec>

export type OptionName = keyof typeof brokerOptions

type ValueOf<K extends Kind> = K extends 'string'
  ? string
  : K extends 'int'
    ? number
    : K extends 'bool'
      ? boolean
      : K extends 'flush'
        ? FlushPolicy
        : K extends 'address'
          ? string
          : LogLevel

export type BrokerConfig = { -readonly [K in OptionName]: ValueOf<(typeof brokerOptions)[K]['kind']> }

export const flagName = (name: string) => '--' + name.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
export const envName = (name: string) => 'TIDEWAY_' + name.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()

export function parseFlush(text: string): FlushPolicy {
  if (text === 'always' || text === 'never') return { mode: text }
  const m = /^interval:(\d+)(ms)?$/.exec(text)
  if (m) return { mode: 'interval', intervalMs: Number(m[1]) }
  throw new TidewayError('TIDEWAY_ERR_CONFIG', `flush must be always, never or interval:<ms>, got "${text}"`)
}

export function formatFlush(policy: FlushPolicy): string {
  return policy.mode === 'interval' ? `interval:${policy.intervalMs}ms` : policy.mode
}

function coerce(name: OptionName, raw: unknown, source: string): unknown {
  const spec = brokerOptions[name]
  const bad = (why: string) => new TidewayError('TIDEWAY_ERR_CONFIG', `${name} from ${source}: ${why}`)
  switch (spec.kind) {
    case 'string':
      if (typeof raw !== 'string') throw bad('expected a string')
      return raw
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN
      if (!Number.isSafeInteger(n) || n < 0) throw bad(`expected a non-negative integer, got ${JSON.stringify(raw)}`)
      return n
    }
    case 'bool':
      if (typeof raw === 'boolean') return raw
      if (raw === 'true' || raw === '1') return true
      if (raw === 'false' || raw === '0') return false
      throw bad(`expected true or false, got ${JSON.stringify(raw)}`)
    case 'flush':
      if (typeof raw === 'object' && raw !== null && 'mode' in raw) return raw
      if (typeof raw !== 'string') throw bad('expected always, never or interval:<ms>')
      return parseFlush(raw)
    case 'address':
      if (typeof raw !== 'string' || !(raw === 'off' || /^(\[[^\]]+\]|[^:\[\]]+):\d{1,5}$/.test(raw)) || Number(raw.slice(raw.lastIndexOf(':') + 1)) > 65535) {
        throw bad(`expected host:port or off, got ${JSON.stringify(raw)}`)
      }
      return raw
    case 'level':
      if (typeof raw !== 'string' || !isLogLevel(raw)) throw bad(`expected a log level, got ${JSON.stringify(raw)}`)
      return raw
  }
}

export function defaultConfig(): BrokerConfig {
  const out: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(brokerOptions)) out[name] = spec.default
  return out as BrokerConfig
}

/** Applies programmatic overrides (already typed) over the defaults, validating each. */
export function resolveConfig(overrides: Partial<BrokerConfig> = {}, base: BrokerConfig = defaultConfig()): BrokerConfig {
  const out: Record<string, unknown> = { ...base }
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) continue
    if (!Object.hasOwn(brokerOptions, name)) throw new TidewayError('TIDEWAY_ERR_CONFIG', `unknown option ${name}`)
    out[name] = coerce(name as OptionName, value, 'options')
  }
  return out as BrokerConfig
}

/**
 * Builds the configuration from a config file (`--config path` or TIDEWAY_CONFIG), the
 * environment and command-line flags. Unknown flags and keys are errors, not silently ignored.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const out: Record<string, unknown> = { ...defaultConfig() }
  const byFlag = new Map(Object.keys(brokerOptions).map((n) => [flagName(n), n as OptionName]))

  const flags = new Map<OptionName, string>()
  let configPath = env.TIDEWAY_CONFIG
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg]
    const value = inline ?? argv[i + 1]
    if (flag === '--config') {
      if (value === undefined) throw new TidewayError('TIDEWAY_ERR_CONFIG', '--config needs a path')
      configPath = value
      if (inline === undefined) i++
      continue
    }
    const name = byFlag.get(flag)
    if (!name) throw new TidewayError('TIDEWAY_ERR_CONFIG', `unknown flag ${flag} (see tideway broker --help)`)
    if (brokerOptions[name].kind === 'bool' && (inline === undefined && (value === undefined || value.startsWith('--')))) {
      flags.set(name, 'true')
      continue
    }
    if (value === undefined) throw new TidewayError('TIDEWAY_ERR_CONFIG', `${flag} needs a value`)
    flags.set(name, value)
    if (inline === undefined) i++
  }

  if (configPath) {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(configPath, 'utf8'))
    } catch (cause) {
      throw new TidewayError('TIDEWAY_ERR_CONFIG', `cannot read config file ${configPath}`, { cause })
    }
    if (typeof parsed !== 'object' || parsed === null) throw new TidewayError('TIDEWAY_ERR_CONFIG', `${configPath} is not a JSON object`)
    for (const [key, value] of Object.entries(parsed)) {
      if (!Object.hasOwn(brokerOptions, key)) throw new TidewayError('TIDEWAY_ERR_CONFIG', `unknown key "${key}" in ${configPath}`)
      out[key] = coerce(key as OptionName, value, configPath)
    }
  }
  for (const name of Object.keys(brokerOptions) as OptionName[]) {
    const fromEnv = env[envName(name)]
    if (fromEnv !== undefined && fromEnv !== '') out[name] = coerce(name, fromEnv, envName(name))
  }
  for (const [name, value] of flags) out[name] = coerce(name, value, flagName(name))
  return out as BrokerConfig
}

export function configHelp(): string {
  const lines = ['Options (flag / environment variable / config-file key):', '']
  for (const [name, spec] of Object.entries(brokerOptions)) {
    const shown = spec.kind === 'flush' ? formatFlush(spec.default as FlushPolicy) : JSON.stringify(spec.default)
    lines.push(`  ${flagName(name)}  (${envName(name)}, "${name}")  default ${shown}`)
    lines.push(`      ${spec.doc}`)
  }
  lines.push('', '  --config <file.json>  (TIDEWAY_CONFIG)  read options from a JSON file')
  return lines.join('\n')
}
