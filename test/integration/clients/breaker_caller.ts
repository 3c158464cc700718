// One instance of a calling service, for test/integration/circuit-breaker-redis.test.ts: a
// breaker on state shared through Redis, in front of an HTTP service. The test drives it through
// stdin and reads what happened on stdout, one JSON object per line.
//
// Config: the JSON in env BREAKER_CALLER: { redisPort, prefix, caller, callee, url, policy,
// redisTimeoutMs, retryMs }.
// stdin:  {"op": n, "calls": k, "concurrent": bool}  make k calls (one after another, or all at once)
// stdout: {"event": "ready"}
//         {"event": "call", op, outcome: ok|failed|rejected|timeout, status?, breakerState?, retryAfterMs?, ms, state, backend}
//         {"event": "transition", from, to, reason, failureRate, observed, backend}
//         {"event": "backend", backend, reason, error?, seededFrom?}
//         {"event": "done", op, snapshot}
// It exits when stdin closes.
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import { CallTimeoutError, CircuitOpenError, createCircuitBreaker, sharedState, type BreakerPolicyOptions } from '../../../src/patterns/index.ts'

/** What the test hands a caller process (as JSON, argv[2]); the test imports this type. */
export interface Config {
  redisPort: number
  prefix: string
  caller: string
  callee: string
  url: string
  policy: BreakerPolicyOptions
  redisTimeoutMs: number
  retryMs: number
}

const config = JSON.parse(process.env['BREAKER_CALLER'] ?? '') as Config
const emit = (event: string, fields: object = {}) => process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + '\n')

// As the README advises: no offline queue (commands fail at once while disconnected), and keep
// reconnecting every 100 ms so the breaker finds Redis again when it is back.
const redis = new Redis({
  host: '127.0.0.1',
  port: config.redisPort,
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  connectTimeout: 1_000,
  retryStrategy: () => 100,
})
redis.on('error', () => {}) // the breaker reports what matters (backend events)
await redis.connect()

const breaker = createCircuitBreaker<number>({
  caller: config.caller,
  callee: config.callee,
  ...config.policy,
  isFailure: (outcome) => !outcome.ok || outcome.value >= 500,
  state: sharedState({ redis, prefix: config.prefix, timeoutMs: config.redisTimeoutMs, retryMs: config.retryMs }),
})
breaker.on('transition', ({ from, to, reason, failureRate, observed, backend }) => emit('transition', { from, to, reason, failureRate, observed, backend }))
breaker.on('backend', ({ backend, reason, error, seededFrom }) => emit('backend', { backend, reason, error, seededFrom }))

async function call(op: number): Promise<void> {
  const started = performance.now()
  let fields: object
  try {
    const status = await breaker.execute(async (signal) => {
      const response = await fetch(config.url, { signal, headers: { 'x-caller': config.caller } })
      await response.arrayBuffer()
      return response.status
    })
    fields = { outcome: status >= 500 ? 'failed' : 'ok', status }
  } catch (err) {
    if (err instanceof CircuitOpenError) fields = { outcome: 'rejected', breakerState: err.state, retryAfterMs: err.retryAfterMs }
    else if (err instanceof CallTimeoutError) fields = { outcome: 'timeout' }
    else fields = { outcome: 'failed', error: err instanceof Error ? err.message : String(err) }
  }
  const { state, backend } = breaker.snapshot()
  emit('call', { op, ...fields, ms: performance.now() - started, state, backend })
}

emit('ready')
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as { op: number; calls: number; concurrent?: boolean }
  void (async () => {
    if (command.concurrent) await Promise.all(Array.from({ length: command.calls }, () => call(command.op)))
    else for (let i = 0; i < command.calls; i++) await call(command.op)
    emit('done', { op: command.op, snapshot: breaker.snapshot() })
  })()
}
redis.disconnect()
process.exit(0) // idle keep-alive sockets to the service would otherwise hold the process a while
