// The circuit breaker on local state (src/patterns/circuit-breaker), on a manual clock: windows by
// count and by time, the minimum number of calls, classification, the half-open probe budget,
// call timeouts, events and counters. The Redis-backed state runs the same scenarios in
// test/integration/circuit-breaker-redis.test.ts.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ManualClock } from '../../../src/clock.ts'
import {
  breakerPolicy,
  CallTimeoutError,
  CircuitBreaker,
  CircuitOpenError,
  createCircuitBreaker,
  type CircuitBreakerOptions,
  type TransitionEvent,
} from '../../../src/patterns/index.ts'
import { ExpectedFailure } from '../../../src/sdk/failures.ts'
import { createWindow } from '../../../src/patterns/circuit-breaker/window.ts'

type Result = 'ok' | 'failed' | 'rejected' | 'timeout'

function breaker<T = unknown>(options: Partial<CircuitBreakerOptions<T>> = {}) {
  const clock = new ManualClock()
  const b = createCircuitBreaker<T>({ caller: 'checkout', callee: 'billing', clock, callTimeoutMs: 0, ...options })
  const events: TransitionEvent[] = []
  b.on('transition', (e) => events.push(e))
  return { b, clock, events }
}

async function attempt<T>(b: CircuitBreaker<T>, call: () => Promise<T>): Promise<Result> {
  try {
    await b.execute(call)
    return 'ok'
  } catch (err) {
    if (err instanceof CircuitOpenError) return 'rejected'
    if (err instanceof CallTimeoutError) return 'timeout'
    return 'failed'
  }
}

const succeed = async (): Promise<unknown> => 'fine'
const fail = async (): Promise<unknown> => {
  throw new Error('boom')
}

async function run<T>(b: CircuitBreaker<T>, calls: (() => Promise<T>)[]): Promise<Result[]> {
  const results: Result[] = []
  for (const call of calls) results.push(await attempt(b, call))
  return results
}

/** A call that stays in flight until the test settles it. */
function held<T>() {
  let settle!: { resolve: (v: T) => void; reject: (e: unknown) => void }
  let started = 0
  const promise = new Promise<T>((resolve, reject) => (settle = { resolve, reject }))
  return {
    call: () => {
      started++
      return promise
    },
    get started() {
      return started
    },
    ...settle,
  }
}

test('a count window judges the last N calls only: older failures fall out of it', async () => {
  const { b } = breaker({ window: { kind: 'count', size: 4 }, minimumCalls: 4, failureRateThreshold: 0.75 })
  // F F S S F S: the last four are S S F S, one failure; the first two have left the window.
  assert.deepEqual(await run(b, [fail, fail, succeed, succeed, fail, succeed]), ['failed', 'failed', 'ok', 'ok', 'failed', 'ok'])
  assert.equal(b.snapshot().state, 'closed')
  assert.deepEqual(b.snapshot().window, { calls: 4, failures: 1, failureRate: 0.25 })
  assert.deepEqual(await run(b, [fail, fail]), ['failed', 'failed']) // S F S F (2/4), then F S F F (3/4)
  assert.equal(b.snapshot().state, 'open')
  assert.deepEqual(await run(b, [succeed]), ['rejected'])
})

test('a time window forgets outcomes older than its duration', async () => {
  const { b, clock } = breaker({ window: { kind: 'time', durationMs: 1_000, buckets: 10 }, minimumCalls: 3, failureRateThreshold: 0.6 })
  await run(b, [fail, fail])
  clock.advance(1_000) // both failures are out of the window now
  assert.deepEqual(await run(b, [fail, succeed, succeed]), ['failed', 'ok', 'ok'])
  assert.equal(b.snapshot().state, 'closed')
  assert.deepEqual(b.snapshot().window, { calls: 3, failures: 1, failureRate: 1 / 3 })
  clock.advance(500) // still inside: 1 failure of 3; two more failures make 3 of 5
  assert.deepEqual(await run(b, [fail, fail]), ['failed', 'failed'])
  assert.equal(b.snapshot().state, 'open')
})

test('the time window sums its buckets: a failure leaves after the duration, not before', () => {
  const window = createWindow({ kind: 'time', durationMs: 1_000, buckets: 4 })
  window.add(10_000, true)
  window.add(10_260, false)
  assert.deepEqual(window.counts(10_999), { calls: 2, failures: 1 })
  assert.deepEqual(window.counts(11_000), { calls: 1, failures: 0 }) // bucket [10000, 10250) has left
  assert.deepEqual(window.counts(11_250), { calls: 0, failures: 0 })
})

test('it does not open before the window holds the minimum number of calls', async () => {
  const { b } = breaker({ window: { kind: 'count', size: 10 }, minimumCalls: 5, failureRateThreshold: 0.5 })
  assert.deepEqual(await run(b, [fail, fail, fail, fail]), ['failed', 'failed', 'failed', 'failed'])
  assert.equal(b.snapshot().state, 'closed', '4 failures out of 4, but fewer than 5 calls')
  await run(b, [fail])
  assert.equal(b.snapshot().state, 'open')
})

test('expected outcomes do not count as failures, and results and errors pass through unchanged', async () => {
  type Response = { status: number }
  const { b } = breaker<Response>({
    window: { kind: 'count', size: 4 },
    minimumCalls: 4,
    failureRateThreshold: 0.5,
    isFailure: (o) => (o.ok ? o.value.status >= 500 : !(o.error instanceof ExpectedFailure)),
  })
  const notFound = async () => ({ status: 404 })
  const declined = async (): Promise<Response> => {
    throw new ExpectedFailure('card declined')
  }
  assert.deepEqual(await b.execute(notFound), { status: 404 })
  await assert.rejects(b.execute(declined), { name: 'ExpectedFailure', message: 'card declined' })
  // A 500 is a failure although nothing was thrown; the caller still gets the response.
  assert.deepEqual(await b.execute(async () => ({ status: 503 })), { status: 503 })
  assert.deepEqual(await b.execute(notFound), { status: 404 })
  assert.equal(b.snapshot().state, 'closed')
  assert.deepEqual(b.snapshot().window, { calls: 4, failures: 1, failureRate: 0.25 })
  assert.equal(b.snapshot().counters.expected, 1)
  assert.equal(b.snapshot().counters.failures, 1)
})

test('by default an ExpectedFailure is a healthy answer and any other error a failure', async () => {
  const { b } = breaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2, failureRateThreshold: 1 })
  await run(b, [async () => Promise.reject(new ExpectedFailure('unknown account')), fail])
  assert.equal(b.snapshot().state, 'closed')
  await run(b, [fail])
  assert.equal(b.snapshot().state, 'open')
})

test('an open circuit rejects at once with CircuitOpenError naming the breaker and when to retry', async () => {
  const { b, clock } = breaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2, openDurationMs: 30_000 })
  await run(b, [fail, fail])
  clock.advance(10_000)
  let ran = false
  const error = await b.execute(async () => (ran = true)).catch((e: unknown) => e)
  assert.ok(error instanceof CircuitOpenError)
  assert.equal(ran, false)
  assert.equal(error.breaker, 'checkout->billing')
  assert.equal(error.state, 'open')
  assert.equal(error.retryAfterMs, 20_000)
  assert.equal(error.retryAt.getTime(), clock.wallMs() + 20_000)
  assert.equal(error.code, 'TIDEWAY_ERR_CIRCUIT_OPEN')
  assert.equal(error.retriable, true)
  assert.match(error.message, /circuit "checkout->billing" is open.*in 20\.0 s/)
  assert.equal(b.snapshot().retryAt?.getTime(), clock.wallMs() + 20_000)
})

test('half-open lets only the probe budget through; others are rejected while the probe is out', async () => {
  const { b, clock } = breaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2, openDurationMs: 300 })
  await run(b, [fail, fail])
  clock.advance(300)
  const probe = held<unknown>()
  const probing = attempt(b, probe.call)
  const others = await Promise.all([attempt(b, succeed), attempt(b, succeed), attempt(b, succeed)])
  assert.deepEqual(others, ['rejected', 'rejected', 'rejected'])
  assert.equal(probe.started, 1)
  const error = await b.execute(succeed).catch((e: unknown) => e)
  assert.ok(error instanceof CircuitOpenError)
  assert.equal(error.state, 'half-open')
  assert.match(error.message, /half-open and its probe calls are in flight/)
  probe.resolve('fine')
  assert.equal(await probing, 'ok')
  assert.equal(b.snapshot().state, 'closed')
  assert.deepEqual(await run(b, [succeed, succeed]), ['ok', 'ok'])
})

test('a probe failure re-opens it for another open duration', async () => {
  const { b, clock } = breaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2, openDurationMs: 300 })
  await run(b, [fail, fail])
  clock.advance(300)
  assert.deepEqual(await run(b, [fail]), ['failed'])
  assert.equal(b.snapshot().state, 'open')
  clock.advance(299)
  assert.deepEqual(await run(b, [succeed]), ['rejected'])
  clock.advance(1)
  assert.deepEqual(await run(b, [succeed]), ['ok'])
  assert.equal(b.snapshot().state, 'closed')
})

test('with successesToClose N it closes after N probe successes, a budget of probes at a time', async () => {
  const { b, clock } = breaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2, openDurationMs: 300, halfOpenProbes: 2, successesToClose: 3 })
  await run(b, [fail, fail])
  clock.advance(300)
  const [p1, p2] = [held<unknown>(), held<unknown>()]
  const probes = [attempt(b, p1.call), attempt(b, p2.call)]
  assert.deepEqual(await run(b, [succeed]), ['rejected'], 'the third concurrent call is over the budget of 2')
  p1.resolve('fine')
  p2.resolve('fine')
  assert.deepEqual(await Promise.all(probes), ['ok', 'ok'])
  assert.equal(b.snapshot().state, 'half-open', '2 successes of 3')
  assert.deepEqual(await run(b, [succeed]), ['ok'])
  assert.equal(b.snapshot().state, 'closed')
})

test('a probe that never reports back frees its token once its lease runs out', async () => {
  const { b, clock } = breaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2, openDurationMs: 300, probeLeaseMs: 1_000 })
  await run(b, [fail, fail])
  clock.advance(300)
  const lost = held<unknown>()
  void attempt(b, lost.call)
  clock.advance(999)
  assert.deepEqual(await run(b, [succeed]), ['rejected'])
  clock.advance(1)
  assert.deepEqual(await run(b, [succeed]), ['ok'])
  assert.equal(b.snapshot().state, 'closed')
})

test('an outcome from an earlier state is ignored: a slow call let through while closed cannot close a half-open circuit', async () => {
  const { b, clock } = breaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2, openDurationMs: 300 })
  const slow = held<unknown>()
  const slowCall = attempt(b, slow.call)
  await run(b, [fail, fail])
  clock.advance(300)
  const probe = held<unknown>()
  const probing = attempt(b, probe.call)
  slow.resolve('fine')
  assert.equal(await slowCall, 'ok')
  assert.equal(b.snapshot().state, 'half-open')
  probe.reject(new Error('still down'))
  assert.equal(await probing, 'failed')
  assert.equal(b.snapshot().state, 'open')
})

test('a call past callTimeoutMs counts as a failure, throws CallTimeoutError and aborts its signal', async () => {
  const { b } = breaker({ window: { kind: 'count', size: 2 }, minimumCalls: 2, callTimeoutMs: 20 })
  const signals: AbortSignal[] = []
  const hang = (signal: AbortSignal) => {
    signals.push(signal)
    return new Promise<unknown>(() => {})
  }
  const error = await b.execute(hang).catch((e: unknown) => e)
  assert.ok(error instanceof CallTimeoutError)
  assert.equal(error.timeoutMs, 20)
  assert.equal(signals[0]!.aborted, true)
  assert.equal(signals[0]!.reason, error)
  await b.execute(hang).catch(() => {})
  assert.equal(b.snapshot().state, 'open')
  assert.equal(b.snapshot().counters.timeouts, 2)
  assert.equal(b.snapshot().counters.failures, 2)
})

test('every transition emits an event with from, to, the key, the reason and the failure rate', async () => {
  const { b, clock, events } = breaker({ window: { kind: 'count', size: 4 }, minimumCalls: 4, failureRateThreshold: 0.5, openDurationMs: 300 })
  await run(b, [succeed, fail, succeed, fail])
  clock.advance(300)
  await run(b, [fail])
  clock.advance(300)
  await run(b, [succeed])
  const seen = events.map(({ from, to, reason, failureRate, calls, failures, key, observed, backend }) => ({ from, to, reason, failureRate, calls, failures, key, observed, backend }))
  const common = { key: 'checkout->billing', observed: false, backend: 'local' }
  assert.deepEqual(seen, [
    { ...common, from: 'closed', to: 'open', reason: 'failure-rate', failureRate: 0.5, calls: 4, failures: 2 },
    { ...common, from: 'open', to: 'half-open', reason: 'open-elapsed', failureRate: 0.5, calls: 4, failures: 2 },
    { ...common, from: 'half-open', to: 'open', reason: 'probe-failed', failureRate: 1, calls: 1, failures: 1 },
    { ...common, from: 'open', to: 'half-open', reason: 'open-elapsed', failureRate: 1, calls: 1, failures: 1 },
    { ...common, from: 'half-open', to: 'closed', reason: 'probe-succeeded', failureRate: 0, calls: 1, failures: 0 },
  ])
  assert.equal(events[0]!.at, clock.wallMs() - 600)
})

test('the snapshot counts calls, successes, failures, rejections and transitions', async () => {
  const { b, clock } = breaker({ window: { kind: 'count', size: 3 }, minimumCalls: 3, openDurationMs: 300 })
  await run(b, [succeed, fail, fail, succeed, succeed])
  clock.advance(300)
  await run(b, [succeed, succeed])
  assert.deepEqual(b.snapshot(), {
    key: 'checkout->billing',
    state: 'closed',
    backend: 'local',
    window: { calls: 1, failures: 0, failureRate: 0 },
    retryAt: undefined,
    counters: { calls: 5, successes: 3, failures: 2, timeouts: 0, expected: 0, rejections: 2, transitions: 3, fallbacks: 0 },
  })
})

test('a classifier that throws counts the call as a failure', async () => {
  const { b } = breaker({ window: { kind: 'count', size: 1 }, minimumCalls: 1, isFailure: () => {
    throw new Error('classifier bug')
  } })
  assert.equal(await b.execute(async () => 'fine'), 'fine')
  assert.equal(b.snapshot().state, 'open')
})

test('a policy that could never work is refused when the breaker is made', () => {
  assert.throws(() => breakerPolicy({ window: { kind: 'count', size: 5 }, minimumCalls: 6 }), /could never open/)
  assert.throws(() => breakerPolicy({ failureRateThreshold: 0 }), RangeError)
  assert.throws(() => breakerPolicy({ failureRateThreshold: 1.5 }), RangeError)
  assert.throws(() => breakerPolicy({ window: { kind: 'time', durationMs: 1_005, buckets: 10 } }), /whole multiple/)
  assert.throws(() => breakerPolicy({ halfOpenProbes: 0 }), RangeError)
  assert.throws(() => new CircuitBreaker({ caller: 'a->b', callee: 'c' }), /may not contain "->"/)
  assert.deepEqual(breakerPolicy(), {
    window: { kind: 'count', size: 20 },
    minimumCalls: 10,
    failureRateThreshold: 0.5,
    openDurationMs: 30_000,
    halfOpenProbes: 1,
    successesToClose: 1,
    callTimeoutMs: 10_000,
    probeLeaseMs: 15_000,
  })
})
