// The circuit breaker on state shared through Redis (src/patterns/circuit-breaker/redis-state.ts),
// against real parts: the shared Redis on 127.0.0.1:6379 (env TIDEWAY_TEST_REDIS_PORT) with a
// unique key prefix per test, private redis-server processes for the tests that kill or freeze
// Redis, caller processes (clients/breaker_caller.ts) and an HTTP service whose behaviour the
// test switches. A missing Redis or redis-server fails the tests; nothing is skipped.
//
// Waits are bounded polls of a condition (Redis's own clock reaching a breaker's retryAt, a line
// from a caller); durations are short configured ones (open 300 ms). The figures each test
// measures are printed as diagnostics, so a CI log is evidence.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { ManualClock } from '../../src/clock.ts'
import {
  CircuitBreaker,
  CircuitOpenError,
  createCircuitBreaker,
  sharedState,
  type BackendEvent,
  type BreakerPolicyOptions,
  type CircuitBreakerOptions,
  type TransitionEvent,
} from '../../src/patterns/index.ts'
import { run } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'
import type { Config } from './clients/breaker_caller.ts'
import { onLines } from '../helpers/lines.ts'

const REDIS_PORT = Number(process.env['TIDEWAY_TEST_REDIS_PORT'] ?? 6379)
const REDIS_SERVER = '/usr/bin/redis-server'
const CALLER = fileURLToPath(new URL('./clients/breaker_caller.ts', import.meta.url))
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

const uniquePrefix = () => `tideway-test:breaker:${randomUUID()}:`

async function sharedRedis(t: { after: (fn: () => Promise<void> | void) => void }, prefix: string): Promise<Redis> {
  const redis = new Redis({ host: '127.0.0.1', port: REDIS_PORT, lazyConnect: true, connectTimeout: 5_000, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  await redis.connect().catch((err: unknown) => {
    throw new Error(`the shared Redis on 127.0.0.1:${REDIS_PORT} is not reachable; start it (redis-server) for these tests`, { cause: err })
  })
  t.after(async () => {
    await deletePrefix(redis, prefix)
    redis.disconnect()
  })
  return redis
}

async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    if (keys.length > 0) await redis.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

async function redisNowMs(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time()
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
}

/** Waits (bounded) until Redis's clock has passed an open breaker's retryAt: the next call will probe. */
async function waitUntilHalfOpenIsDue(redis: Redis, key: string): Promise<void> {
  const retryAt = Number(await redis.hget(key, 'retryAt'))
  assert.equal(await redis.hget(key, 'state'), 'open')
  await waitFor(async () => (await redisNowMs(redis)) >= retryAt, { timeoutMs: 10_000, what: `Redis time to reach retryAt of ${key}` })
}

/** An HTTP service whose answers the test switches: 500s, 200s, or held until released. */
class FlakyService {
  mode: 'fail' | 'ok' | 'hold' = 'ok'
  requests = 0
  readonly held: ServerResponse[] = []
  readonly server: Server
  url = ''

  constructor() {
    this.server = createServer((req, res) => {
      this.requests++
      req.resume()
      if (this.mode === 'hold') this.held.push(res)
      else res.writeHead(this.mode === 'fail' ? 500 : 200).end(this.mode)
    })
  }

  static async start(t: { after: (fn: () => Promise<void> | void) => void }): Promise<FlakyService> {
    const service = new FlakyService()
    service.server.listen(0, '127.0.0.1')
    await once(service.server, 'listening')
    service.url = `http://127.0.0.1:${(service.server.address() as AddressInfo).port}/charge`
    t.after(async () => {
      for (const res of service.held) res.destroy()
      service.server.closeAllConnections()
      service.server.close()
    })
    return service
  }

  /** Answers the held requests with `status`, and later ones the same way. */
  release(status: 200 | 500): void {
    this.mode = status === 200 ? 'ok' : 'fail'
    for (const res of this.held.splice(0)) res.writeHead(status).end()
  }
}

interface CallLine {
  event: 'call'
  op: number
  outcome: 'ok' | 'failed' | 'rejected' | 'timeout'
  breakerState?: string
  retryAfterMs?: number
  error?: string
  ms: number
  state: string
  backend: string
  t: number
}
type Line = { event: string; t: number; [field: string]: unknown }

type CallerConfig = Config

/** One caller process, driven through stdin; what it reported, parsed. Killed after 100 s whatever happens. */
class CallerProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly lines: Line[] = []
  stderr = ''
  #op = 0

  constructor(name: string, config: CallerConfig) {
    this.name = name
    this.child = spawn(process.execPath, [CALLER], { env: { ...process.env, BREAKER_CALLER: JSON.stringify(config) }, stdio: ['pipe', 'pipe', 'pipe'] })
    const lifetime = setTimeout(() => this.child.kill('SIGKILL'), 100_000)
    lifetime.unref()
    this.child.once('exit', () => clearTimeout(lifetime))
    onLines(this.child.stdout!, (line) => this.lines.push(JSON.parse(line) as Line))
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-20_000)))
    this.child.stdin!.on('error', () => {})
  }

  async ready(): Promise<void> {
    await this.#waitFor(() => this.lines.some((l) => l.event === 'ready'), 'ready')
  }

  /** Starts `calls` calls; `done` resolves with their reports once all have finished. */
  send(calls: number, concurrent = false): { op: number; done: Promise<CallLine[]> } {
    const op = ++this.#op
    this.child.stdin!.write(JSON.stringify({ op, calls, concurrent }) + '\n')
    const done = this.#waitFor(() => this.lines.some((l) => l.event === 'done' && l.op === op), `op ${op} done`).then(() => this.callsOf(op))
    return { op, done }
  }

  calls(n: number, concurrent = false): Promise<CallLine[]> {
    return this.send(n, concurrent).done
  }

  callsOf(op: number): CallLine[] {
    return this.lines.filter((l): l is Line & CallLine => l.event === 'call' && l.op === op)
  }

  get transitions(): (Line & Pick<TransitionEvent, 'from' | 'to' | 'reason' | 'observed' | 'backend' | 'failureRate'>)[] {
    return this.lines.filter((l) => l.event === 'transition') as never
  }

  get backendEvents(): (Line & Pick<BackendEvent, 'backend' | 'reason' | 'error' | 'seededFrom'>)[] {
    return this.lines.filter((l) => l.event === 'backend') as never
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = once(this.child, 'exit')
    this.child.stdin!.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }

  #waitFor(condition: () => boolean, what: string): Promise<true> {
    return waitFor(() => {
      if (condition()) return true
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`caller ${this.name} exited: ${this.stderr}`)
      return false
    }, { timeoutMs: 30_000, intervalMs: 5, what: `caller ${this.name}: ${what}` }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; stderr: ${this.stderr}`, { cause: err })
    })
  }
}

async function freePort(): Promise<number> {
  const server = createNetServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/** A redis-server of this test's own (never the shared one): no persistence, killed in after(). */
class PrivateRedis {
  readonly port: number
  child: ChildProcess | undefined

  private constructor(port: number) {
    this.port = port
  }

  static async start(t: { after: (fn: () => Promise<void> | void) => void }): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort())
    t.after(() => redis.kill9())
    await redis.restart()
    return redis
  }

  /** Starts redis-server on the same port (it may have been killed); resolves once it accepts connections. */
  async restart(): Promise<void> {
    const child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    const lifetime = setTimeout(() => child.kill('SIGKILL'), 110_000)
    lifetime.unref()
    child.once('exit', () => clearTimeout(lifetime))
    let output = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (err) => reject(new Error(`${REDIS_SERVER} does not start (${err.message}); install it with \`apt-get install redis-server\``)))
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output}`)))
    })
    failed.catch(() => {})
    await Promise.race([waitFor(() => output.includes('Ready to accept connections'), { timeoutMs: 10_000, what: 'redis-server to be ready' }), failed])
  }

  async kill9(): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }

  signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    this.child?.kill(signal)
  }
}

/** The outcome of one execute, as the scenarios compare them. */
async function attempt(b: CircuitBreaker, call: () => Promise<unknown>): Promise<'ok' | 'failed' | 'rejected'> {
  try {
    await b.execute(call)
    return 'ok'
  } catch (err) {
    return err instanceof CircuitOpenError ? 'rejected' : 'failed'
  }
}
const succeed = async () => 'fine'
const fail = async () => {
  throw new Error('callee down')
}

test('three processes share one breaker: it opens for all, lets exactly one probe through while half-open, and closes for all', { timeout: 120_000 }, async (t) => {
  const prefix = uniquePrefix()
  const redis = await sharedRedis(t, prefix)
  const service = await FlakyService.start(t)
  const key = `${prefix}checkout->billing`
  // 10 calls in the window, open at 6 calls with half of them failed: no caller reaches 6 alone.
  const policy: BreakerPolicyOptions = { window: { kind: 'count', size: 10 }, minimumCalls: 6, failureRateThreshold: 0.5, openDurationMs: 300, callTimeoutMs: 20_000 }
  // A generous Redis limit: this test is about sharing, and must not fall back on a busy machine.
  const config = { redisPort: REDIS_PORT, prefix, caller: 'checkout', callee: 'billing', url: service.url, policy, redisTimeoutMs: 2_000, retryMs: 500 }
  const callers = ['a', 'b', 'c'].map((name) => new CallerProcess(name, config))
  t.after(() => Promise.all(callers.map((c) => c.close())))
  await Promise.all(callers.map((c) => c.ready()))

  // (a) Two failures from each, in turn: the sixth opens it, and then every caller is rejected.
  service.mode = 'fail'
  for (let round = 0; round < 2; round++) {
    for (const caller of callers) assert.deepEqual((await caller.calls(1)).map((c) => c.outcome), ['failed'])
  }
  assert.equal(service.requests, 6)
  for (const caller of callers) {
    const [call] = await caller.calls(1)
    assert.equal(call!.outcome, 'rejected', `${caller.name} is rejected`)
    assert.equal(call!.breakerState, 'open')
    assert.ok(call!.retryAfterMs! <= 300)
    assert.ok(caller.transitions.some((e) => e.from === 'closed' && e.to === 'open' && e.reason === 'failure-rate' && e.failureRate === 1), `${caller.name} saw it open`)
  }
  assert.equal(service.requests, 6, 'an open breaker sends nothing to the service')
  assert.deepEqual(callers.map((c) => c.transitions.find((e) => e.to === 'open')!.observed), [true, true, false], 'c opened it; a and b saw it in Redis')

  // (b) Half-open: 5 concurrent calls from each of the three, 15 in all, while the service holds
  // its answers. Exactly one reaches it; the other 14 are rejected at once.
  async function probeRound(answer: 200 | 500): Promise<CallLine[]> {
    await waitUntilHalfOpenIsDue(redis, key)
    service.mode = 'hold'
    const before = service.requests
    const ops = callers.map((c) => ({ caller: c, ...c.send(5, true) }))
    const reported = () => ops.flatMap(({ caller, op }) => caller.callsOf(op))
    await waitFor(() => reported().filter((c) => c.outcome === 'rejected').length === 14 && service.held.length === 1, { timeoutMs: 30_000, what: '14 rejections and one held probe' })
    assert.equal(service.requests - before, 1, 'one probe across the three processes')
    service.release(answer)
    await Promise.all(ops.map((o) => o.done))
    const calls = reported()
    assert.equal(calls.length, 15)
    assert.equal(calls.filter((c) => c.outcome === 'rejected' && c.breakerState === 'half-open').length, 14)
    assert.equal(service.requests - before, 1)
    return calls
  }
  const failedProbe = await probeRound(500)
  assert.deepEqual(failedProbe.filter((c) => c.outcome !== 'rejected').map((c) => c.outcome), ['failed'])
  for (const caller of callers) {
    const [call] = await caller.calls(1)
    assert.equal(call!.breakerState, 'open', `the failed probe re-opened it for ${caller.name}`)
  }
  t.diagnostic(`half-open round 1: 15 attempts from 3 processes, 1 reached the service, 14 rejected; the probe failed and re-opened it`)

  // (c) The service recovers: the next probe succeeds and closes it for all three.
  const goodProbe = await probeRound(200)
  assert.deepEqual(goodProbe.filter((c) => c.outcome !== 'rejected').map((c) => c.outcome), ['ok'])
  const afterClose = service.requests
  for (const caller of callers) {
    const calls = await caller.calls(2)
    assert.deepEqual(calls.map((c) => [c.outcome, c.state]), [['ok', 'closed'], ['ok', 'closed']], `${caller.name} calls through again`)
    assert.equal(caller.transitions.at(-1)!.to, 'closed')
  }
  assert.equal(service.requests - afterClose, 6)
  assert.equal(await redis.hget(key, 'state'), 'closed')
  assert.deepEqual(callers.flatMap((c) => c.backendEvents), [], 'Redis answered every time: nobody fell back')
  t.diagnostic(`half-open round 2: 1 of 15 attempts reached the service and closed it; service requests in all: ${service.requests}`)
})

test('with its Redis killed the callers keep calling on local state, and go back to shared state when Redis is back', { timeout: 120_000 }, async (t) => {
  const privateRedis = await PrivateRedis.start(t)
  const service = await FlakyService.start(t)
  const prefix = uniquePrefix()
  const redisTimeoutMs = 200
  const policy: BreakerPolicyOptions = { window: { kind: 'count', size: 10 }, minimumCalls: 6, failureRateThreshold: 0.5, openDurationMs: 60_000, callTimeoutMs: 5_000 }
  const config = { redisPort: privateRedis.port, prefix, caller: 'checkout', callee: 'billing', url: service.url, policy, redisTimeoutMs, retryMs: 200 }
  const callers = ['a', 'b', 'c'].map((name) => new CallerProcess(name, config))
  t.after(() => Promise.all(callers.map((c) => c.close())))
  await Promise.all(callers.map((c) => c.ready()))

  for (const caller of callers) assert.deepEqual((await caller.calls(2)).map((c) => [c.outcome, c.backend]), [['ok', 'shared'], ['ok', 'shared']])

  const killedAt = Date.now()
  await privateRedis.kill9()
  service.mode = 'fail'
  const before = service.requests
  const outage = await Promise.all(callers.map((c) => c.calls(8)))
  const margin = 1_500 // a loaded 2-core CI machine; a hang would be the 5 s call timeout or forever
  for (const [i, calls] of outage.entries()) {
    const caller = callers[i]!
    assert.equal(calls.length, 8, `${caller.name} completed every call`)
    for (const call of calls) assert.ok(call.ms < redisTimeoutMs + margin, `${caller.name}: a call took ${call.ms} ms`)
    const [fallback] = caller.backendEvents
    assert.equal(fallback?.backend, 'local', `${caller.name} reported the fallback`)
    assert.equal(fallback.reason, 'redis-unavailable')
    assert.equal(fallback.seededFrom, 'closed')
    // Its own window now: it opens on its own failures, rejecting the rest locally.
    const opened = caller.transitions.find((e) => e.to === 'open')
    assert.equal(opened?.backend, 'local')
    assert.equal(opened.observed, false)
    const outcomes = calls.map((c) => c.outcome)
    const firstRejected = outcomes.indexOf('rejected')
    assert.ok(firstRejected >= 4, `${caller.name} opened after its own failures: ${outcomes.join(' ')}`)
    assert.deepEqual(outcomes.slice(0, firstRejected), Array(firstRejected).fill('failed'))
    assert.deepEqual(outcomes.slice(firstRejected), Array(8 - firstRejected).fill('rejected'))
  }
  const failedLocally = outage.flat().filter((c) => c.outcome === 'failed').length
  assert.equal(service.requests - before, failedLocally)
  const fallbackMs = callers.map((c) => c.backendEvents[0]!.t - killedAt)
  const slowest = Math.max(...outage.flat().map((c) => c.ms))
  t.diagnostic(`Redis killed: fallback reported ${fallbackMs.join(', ')} ms after SIGKILL (${callers[0]!.backendEvents[0]!.error}); slowest call during the outage ${slowest.toFixed(1)} ms (limit ${redisTimeoutMs} ms); ${failedLocally} calls reached the failing service before the 3 local breakers opened (each judged alone)`)

  // Redis again, empty, on the same port: each caller finds it within a few calls and follows
  // the shared state (closed) again, although its local breaker was open.
  await privateRedis.restart()
  const restartedAt = Date.now()
  service.mode = 'ok'
  for (const caller of callers) {
    await waitFor(async () => {
      await caller.calls(1)
      return caller.backendEvents.some((e) => e.backend === 'shared')
    }, { timeoutMs: 20_000, intervalMs: 50, what: `${caller.name} back on shared state` })
    const back = caller.backendEvents.find((e) => e.backend === 'shared')!
    assert.equal(back.reason, 'redis-answered')
    assert.deepEqual((await caller.calls(2)).map((c) => [c.outcome, c.state, c.backend]), [['ok', 'closed', 'shared'], ['ok', 'closed', 'shared']])
  }
  const check = new Redis({ host: '127.0.0.1', port: privateRedis.port, lazyConnect: true })
  await check.connect()
  t.after(() => check.disconnect())
  assert.equal(await check.hget(`${prefix}checkout->billing`, 'state'), 'closed')
  assert.ok(Number(await check.hget(`${prefix}checkout->billing`, 'wn')) >= 6)
  const backMs = callers.map((c) => c.backendEvents.find((e) => e.backend === 'shared')!.t - restartedAt)
  t.diagnostic(`Redis restarted: callers back on shared state ${backMs.join(', ')} ms after it was ready (retry every 200 ms, driven by calls)`)
})

test('a Redis that stops answering costs one call the timeout; the breaker goes on locally from the last shared state until Redis answers', { timeout: 60_000 }, async (t) => {
  const privateRedis = await PrivateRedis.start(t)
  t.after(() => privateRedis.signal('SIGCONT'))
  const redis = new Redis({ host: '127.0.0.1', port: privateRedis.port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100 })
  redis.on('error', () => {})
  await redis.connect()
  t.after(() => redis.disconnect())
  const backendEvents: BackendEvent[] = []
  const b = createCircuitBreaker({
    caller: 'checkout',
    callee: 'billing',
    window: { kind: 'count', size: 2 },
    minimumCalls: 2,
    openDurationMs: 60_000,
    state: sharedState({ redis, timeoutMs: 200, retryMs: 200 }),
  })
  b.on('backend', (e) => backendEvents.push(e))

  await redis.script('FLUSH') // the scripts are not cached: EVALSHA fails with NOSCRIPT, EVAL loads them
  assert.deepEqual([await attempt(b, fail), await attempt(b, fail)], ['failed', 'failed'])
  assert.equal(await redis.hget('tideway:breaker:checkout->billing', 'state'), 'open')
  assert.equal(backendEvents.length, 0)

  privateRedis.signal('SIGSTOP')
  const started = performance.now()
  const error = await b.execute(succeed).catch((e: unknown) => e)
  const firstCallMs = performance.now() - started
  assert.ok(error instanceof CircuitOpenError, 'the local state was seeded open from the shared state')
  assert.ok(error.retryAfterMs > 50_000)
  assert.equal(backendEvents.length, 1)
  assert.equal(backendEvents[0]!.backend, 'local')
  assert.equal(backendEvents[0]!.error, 'Redis did not answer within 200 ms')
  assert.equal(backendEvents[0]!.seededFrom, 'open')
  assert.ok(firstCallMs < 200 + 1_500, `the first call took ${firstCallMs} ms`)
  const next = performance.now()
  assert.equal(await attempt(b, succeed), 'rejected')
  const localCallMs = performance.now() - next
  assert.equal(b.snapshot().backend, 'local')

  privateRedis.signal('SIGCONT')
  await waitFor(async () => {
    await attempt(b, succeed)
    return backendEvents.some((e) => e.backend === 'shared')
  }, { timeoutMs: 10_000, intervalMs: 50, what: 'the breaker back on shared state' })
  assert.equal(await attempt(b, succeed), 'rejected', 'still open in Redis')
  assert.equal(b.snapshot().backend, 'shared')
  t.diagnostic(`Redis frozen (SIGSTOP): first call fell back in ${firstCallMs.toFixed(1)} ms (timeout 200 ms), the next one decided locally in ${localCallMs.toFixed(2)} ms`)
})

test('across many connections at once, half-open hands out exactly the probe budget', { timeout: 60_000 }, async (t) => {
  const connections = 8
  const perConnection = 25
  for (const budget of [1, 3]) {
    const prefix = uniquePrefix()
    const admin = await sharedRedis(t, prefix)
    const clients = Array.from({ length: connections }, () => new Redis({ host: '127.0.0.1', port: REDIS_PORT }))
    t.after(() => clients.forEach((c) => c.disconnect()))
    const breakers = clients.map((redis) =>
      createCircuitBreaker({ caller: 'orders', callee: 'stock', window: { kind: 'count', size: 2 }, minimumCalls: 2, openDurationMs: 300, halfOpenProbes: budget, callTimeoutMs: 0, state: sharedState({ redis, prefix, timeoutMs: 5_000 }) }),
    )
    await attempt(breakers[0]!, fail)
    await attempt(breakers[1]!, fail)
    await waitUntilHalfOpenIsDue(admin, `${prefix}orders->stock`)

    let release!: () => void
    const hold = new Promise<void>((resolve) => (release = resolve))
    let started = 0
    let rejected = 0
    const attempts = breakers.flatMap((b) =>
      Array.from({ length: perConnection }, () =>
        b.execute(() => {
          started++
          return hold
        }).then(
          () => 'ran',
          (err: unknown) => {
            if (!(err instanceof CircuitOpenError)) throw err
            rejected++
            return 'rejected'
          },
        ),
      ),
    )
    await waitFor(() => rejected === connections * perConnection - budget, { timeoutMs: 30_000, what: 'every attempt but the probes rejected' })
    assert.equal(started, budget)
    release()
    const results = await Promise.all(attempts)
    assert.equal(results.filter((r) => r === 'ran').length, budget)
    assert.equal(await admin.hget(`${prefix}orders->stock`, 'state'), 'closed')
    t.diagnostic(`budget ${budget}: ${connections * perConnection} concurrent attempts over ${connections} connections, ${started} probe token(s) granted`)
  }
})

test('shared state follows the same state machine as local state', { timeout: 60_000 }, async (t) => {
  const prefix = uniquePrefix()
  const redis = await sharedRedis(t, prefix)
  const policy = { window: { kind: 'count', size: 4 }, minimumCalls: 4, failureRateThreshold: 0.75, openDurationMs: 300, halfOpenProbes: 1, successesToClose: 2, callTimeoutMs: 0 } as const
  const steps = ['F', 'F', 'S', 'S', 'F', 'S', 'F', 'F', 'S', 'wait', 'F', 'S', 'wait', 'S', 'S', 'S', 'F', 'F', 'F'] as const

  async function play(options: Pick<CircuitBreakerOptions, 'state' | 'clock'>, elapseOpen: () => Promise<void>) {
    const b = createCircuitBreaker({ caller: 'web', callee: 'search', ...policy, ...options })
    const events: string[] = []
    b.on('transition', (e) => events.push(`${e.from}>${e.to} ${e.reason} ${e.failures}/${e.calls}${e.observed ? ' observed' : ''}`))
    const trace: string[] = []
    for (const step of steps) {
      if (step === 'wait') await elapseOpen()
      else trace.push(`${step}:${await attempt(b, step === 'S' ? succeed : fail)}:${b.snapshot().state}:${b.snapshot().window.failures}/${b.snapshot().window.calls}`)
    }
    return { trace, events, counters: b.snapshot().counters }
  }

  const clock = new ManualClock()
  const local = await play({ clock }, async () => clock.advance(300))
  const shared = await play({ state: sharedState({ redis, prefix, timeoutMs: 2_000 }) }, () => waitUntilHalfOpenIsDue(redis, `${prefix}web->search`))
  assert.deepEqual(shared, local)
  assert.equal(local.trace.at(-1), 'F:failed:open:0/0')
  t.diagnostic(`${steps.length} steps, ${local.events.length} transitions, identical on local and shared state`)
})

test('a shared time window forgets outcomes older than its duration, by Redis time', { timeout: 60_000 }, async (t) => {
  const prefix = uniquePrefix()
  const redis = await sharedRedis(t, prefix)
  const b = createCircuitBreaker({ caller: 'web', callee: 'search', window: { kind: 'time', durationMs: 2_000, buckets: 10 }, minimumCalls: 3, failureRateThreshold: 0.6, state: sharedState({ redis, prefix, timeoutMs: 2_000 }) })
  await attempt(b, fail)
  await attempt(b, fail)
  assert.deepEqual(b.snapshot().window, { calls: 2, failures: 2, failureRate: 1 })
  const recordedBy = await redisNowMs(redis)
  // A bucket leaves once `durationMs` plus at most one bucket (200 ms) has passed.
  await waitFor(async () => (await redisNowMs(redis)) >= recordedBy + 2_200, { timeoutMs: 10_000, what: 'the window to pass' })
  assert.deepEqual([await attempt(b, fail), await attempt(b, succeed), await attempt(b, succeed)], ['failed', 'ok', 'ok'])
  assert.deepEqual(b.snapshot().window, { calls: 3, failures: 1, failureRate: 1 / 3 })
  assert.equal(b.snapshot().state, 'closed')
  assert.deepEqual([await attempt(b, fail), await attempt(b, fail)], ['failed', 'failed'])
  assert.equal(b.snapshot().state, 'open', '3 failures of 5 within the window')
})

test('a breaker key expires once nobody writes it', { timeout: 30_000 }, async (t) => {
  const prefix = uniquePrefix()
  const redis = await sharedRedis(t, prefix)
  const key = `${prefix}web->search`
  const b = createCircuitBreaker({ caller: 'web', callee: 'search', state: sharedState({ redis, prefix, keyTtlMs: 500 }) })
  await attempt(b, succeed)
  const ttl = await redis.pttl(key)
  assert.ok(ttl > 0 && ttl <= 500, `PTTL ${ttl}`)
  await waitFor(async () => (await redis.exists(key)) === 0, { timeoutMs: 10_000, what: 'the key to expire' })
  assert.equal(await attempt(b, succeed), 'ok', 'a missing key is a fresh, closed breaker')
})

test('tideway breakers list shows every shared breaker under a prefix: state, failure rate, calls and when it goes half-open', { timeout: 60_000 }, async (t) => {
  const prefix = uniquePrefix()
  const redis = await sharedRedis(t, prefix)
  const state = sharedState({ redis, prefix, timeoutMs: 2_000 })
  const billing = createCircuitBreaker({ caller: 'checkout', callee: 'billing', window: { kind: 'count', size: 4 }, minimumCalls: 2, openDurationMs: 60_000, state })
  const ledger = createCircuitBreaker({ caller: 'checkout', callee: 'ledger', window: { kind: 'time', durationMs: 60_000, buckets: 10 }, minimumCalls: 5, state })
  await attempt(billing, fail)
  await attempt(billing, fail)
  for (const call of [fail, succeed, succeed]) await attempt(ledger, call)
  await redis.set(`${prefix}not-a-breaker`, 'x')

  const json = await run(process.execPath, [MAIN, 'breakers', 'list', '--redis', `redis://127.0.0.1:${REDIS_PORT}`, '--prefix', prefix, '--json'], { timeoutMs: 30_000 })
  assert.equal(json.code, 0, json.stderr)
  const rows = JSON.parse(json.stdout) as Record<string, unknown>[]
  assert.deepEqual(rows.map((r) => [r['breaker'], r['caller'], r['callee'], r['state'], r['calls'], r['failures'], r['failureRate'], r['window'], r['reason']]), [
    ['checkout->billing', 'checkout', 'billing', 'open', 2, 2, 1, 'count:4', 'failure-rate'],
    ['checkout->ledger', 'checkout', 'ledger', 'closed', 3, 1, 1 / 3, 'time:6000:10', 'initial'],
  ])
  const halfOpenInMs = rows[0]!['halfOpenInMs'] as number
  assert.ok(halfOpenInMs > 50_000 && halfOpenInMs <= 60_000, `half-open in ${halfOpenInMs} ms`)
  assert.equal(new Date(rows[0]!['halfOpenAt'] as string).getTime(), Number(await redis.hget(`${prefix}checkout->billing`, 'retryAt')))
  assert.equal(rows[1]!['halfOpenAt'], null)

  const table = await run(process.execPath, [MAIN, 'breakers', 'list', '--prefix', prefix], { timeoutMs: 30_000, env: { ...process.env, TIDEWAY_REDIS: `redis://127.0.0.1:${REDIS_PORT}` } })
  assert.equal(table.code, 0, table.stderr)
  const lines = table.stdout.trimEnd().split('\n')
  assert.match(lines[0]!, /^BREAKER\s+STATE\s+FAILURE RATE\s+CALLS\s+FAILURES\s+HALF-OPEN\s+REASON\s+WINDOW$/)
  assert.match(lines[1]!, /^checkout->billing\s+open\s+100\.0%\s+2\s+2\s+in \d+\.\ds\s+failure-rate\s+count:4$/)
  assert.match(lines[2]!, /^checkout->ledger\s+closed\s+33\.3%\s+3\s+1\s+-\s+initial\s+time:6000:10$/)
  assert.equal(lines.length, 3)

  const unreachable = await run(process.execPath, [MAIN, 'breakers', 'list', '--redis', `redis://127.0.0.1:${await freePort()}`], { timeoutMs: 30_000 })
  assert.equal(unreachable.code, 1)
  assert.match(unreachable.stderr, /^tideway: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ \(connect ECONNREFUSED/)
})
