// `tideway breakers list`: the circuit breakers shared through Redis (src/patterns/circuit-breaker),
// read with SCAN over their key prefix and HGETALL, at Redis's own time (TIME), the clock the
// breakers' scripts use. Read-only: it never changes a breaker.
//
// It talks to Redis through ioredis, loaded only when the command runs, so the rest of the CLI
// works without it.
import { parseArgs } from 'node:util'
import { DEFAULT_BREAKER_PREFIX, scanStoredBreakers, type BreakerScanRedis, type StoredBreaker } from '../patterns/index.ts'
import type { ClientCommand } from './command.ts'
import { CommandError, UsageError } from './errors.ts'
import { formatTable, toJson } from './output.ts'

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
/** Bound on what one listing reads; past it the rest are left out, and stderr says so. */
const MAX_BREAKERS = 10_000

/** Declared once: the parser and the help both come from it. */
const listOptions = {
  redis: { type: 'string', placeholder: 'URL', help: `Redis holding the breakers (env TIDEWAY_REDIS; default ${DEFAULT_REDIS_URL})` },
  prefix: { type: 'string', placeholder: 'P', help: `key prefix of the breakers (default ${DEFAULT_BREAKER_PREFIX})` },
  json: { type: 'boolean', help: 'machine-readable output (JSON)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const

const listHelp = (() => {
  const flags = Object.entries(listOptions).map(([name, o]) => {
    const short = 'short' in o ? `-${o.short}, ` : ''
    return [`${short}--${name}${'placeholder' in o ? ` ${o.placeholder}` : ''}`, o.help] as const
  })
  const width = Math.max(...flags.map(([flag]) => flag.length))
  return [
    'Usage: tideway breakers list [options]',
    '',
    'List the circuit breakers shared through Redis: state, failure rate, calls, and when an open one goes half-open.',
    '',
    'Options:',
    ...flags.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`),
    '',
    'CALLS and FAILURES are the window now for a closed breaker; for an open or half-open one they are',
    'the counts it opened with (the window is empty until it closes). HALF-OPEN says when an open',
    'breaker lets its next call through as a probe ("due": the next call will).',
  ].join('\n') + '\n'
})()

/** A breaker as listed, for JSON and the table. */
export interface ListedBreaker {
  readonly breaker: string
  readonly caller: string
  readonly callee: string
  readonly key: string
  readonly state: StoredBreaker['state']
  readonly failureRate: number
  readonly calls: number
  readonly failures: number
  readonly window: string
  readonly reason: string
  readonly since: string | null
  readonly halfOpenAt: string | null
  /** ms from now (Redis time) until it goes half-open; 0 when due; null unless open. */
  readonly halfOpenInMs: number | null
  readonly probesInFlight: number
}

export function listedBreaker(stored: StoredBreaker, nowMs: number): ListedBreaker {
  return {
    breaker: stored.breaker,
    caller: stored.caller,
    callee: stored.callee,
    key: stored.key,
    state: stored.state,
    failureRate: stored.window.failureRate,
    calls: stored.window.calls,
    failures: stored.window.failures,
    window: stored.windowShape,
    reason: stored.reason,
    since: stored.since?.toISOString() ?? null,
    halfOpenAt: stored.halfOpenAt?.toISOString() ?? null,
    halfOpenInMs: stored.halfOpenAt === undefined ? null : Math.max(0, stored.halfOpenAt.getTime() - nowMs),
    probesInFlight: stored.probesInFlight,
  }
}

export function formatBreakers(rows: readonly ListedBreaker[]): string {
  const halfOpen = (r: ListedBreaker) => {
    if (r.state === 'half-open') return `now (${r.probesInFlight} probe${r.probesInFlight === 1 ? '' : 's'} out)`
    if (r.halfOpenInMs === null) return '-'
    return r.halfOpenInMs === 0 ? 'due' : `in ${(r.halfOpenInMs / 1000).toFixed(1)}s`
  }
  return formatTable(
    ['BREAKER', 'STATE', 'FAILURE RATE', 'CALLS', 'FAILURES', 'HALF-OPEN', 'REASON', 'WINDOW'],
    rows.map((r) => [r.breaker, r.state, `${(r.failureRate * 100).toFixed(1)}%`, String(r.calls), String(r.failures), halfOpen(r), r.reason, r.window]),
    [2, 3, 4],
  )
}

export interface RedisLike extends BreakerScanRedis {
  connect(): Promise<void>
  disconnect(): void
  on(event: 'error', listener: (err: Error) => void): unknown
}

async function connect(url: string): Promise<RedisLike> {
  let Redis: new (url: string, options: object) => RedisLike
  try {
    ;({ Redis } = (await import('ioredis')) as unknown as { Redis: typeof Redis })
  } catch (err) {
    throw new CommandError('`tideway breakers` needs the ioredis package (npm install ioredis)', { cause: err })
  }
  let redis: RedisLike
  try {
    // Fail fast against an unreachable Redis: no reconnects, no queue of commands waiting for one.
    redis = new Redis(url, { lazyConnect: true, connectTimeout: 3_000, commandTimeout: 5_000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
  } catch (err) {
    throw new UsageError(`--redis takes a redis:// URL, got "${url}" (${err instanceof Error ? err.message : String(err)})`)
  }
  // ioredis rejects connect() with "Connection is closed."; the socket's own error says why.
  let socketError: Error | undefined
  redis.on('error', (err) => (socketError = err))
  try {
    await redis.connect()
  } catch (err) {
    // No disconnect(): the connection has ended already, and ioredis would then hold the process
    // for its disconnectTimeout (2 s) waiting for a close event that came before.
    const reason = socketError?.message ?? (err instanceof Error ? err.message : String(err))
    throw new CommandError(`cannot reach Redis at ${url} (${reason})`, { cause: err })
  }
  return redis
}

const list: ClientCommand = {
  spec: { name: 'tideway breakers list', synopsis: '[options]', summary: 'List the circuit breakers shared through Redis.', positionals: [], options: {} },
  async run(argv, io) {
    let values
    try {
      ;({ values } = parseArgs({ args: argv, options: listOptions, allowPositionals: false, strict: true }))
    } catch (err) {
      // As args.ts puts it: the flag, without Node's advice about positionals.
      const flag = (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'([^']+)'/.exec(String(err))?.[1] : undefined
      throw new UsageError(flag ? `unknown option ${flag}` : err instanceof Error ? err.message : String(err))
    }
    if (values.help) {
      await io.stdout.write(listHelp)
      return 0
    }
    const url = values.redis ?? io.env['TIDEWAY_REDIS'] ?? DEFAULT_REDIS_URL
    const prefix = values.prefix ?? DEFAULT_BREAKER_PREFIX
    const redis = await connect(url)
    let rows: ListedBreaker[] = []
    let truncated = false
    try {
      const scanned = await scanStoredBreakers(redis, prefix, MAX_BREAKERS)
      rows = scanned.breakers.map((stored) => listedBreaker(stored, scanned.nowMs))
      truncated = scanned.truncated
    } catch (err) {
      if (err instanceof CommandError) throw err
      throw new CommandError(`cannot list breakers in Redis at ${url} (${err instanceof Error ? err.message : String(err)})`, { cause: err })
    } finally {
      redis.disconnect()
    }
    if (truncated) io.stderr.write(`more than ${MAX_BREAKERS} keys under "${prefix}": the first ${MAX_BREAKERS} found are listed\n`)
    if (values.json) await io.stdout.write(toJson(rows) + '\n')
    else if (rows.length === 0) io.stderr.write(`no breakers under "${prefix}" in Redis at ${url}\n`)
    else await io.stdout.write(formatBreakers(rows))
    return 0
  },
}

export const breakersCommands: Readonly<Record<string, ClientCommand>> = { list }

export const breakersUsage = `Usage: tideway breakers <list> [options]

Commands:
  list    circuit breakers shared through Redis: state, failure rate, calls, when an open one goes half-open

Run \`tideway breakers list --help\` for its options.
`
