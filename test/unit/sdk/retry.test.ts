// The retry policy (src/sdk/retry.ts) on virtual time: exponential backoff with full jitter,
// attempts, per-attempt timeouts and the overall deadline, and which failures are retried.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ExpectedFailure, PermanentFailure, TransientFailure } from '../../../src/sdk/failures.ts'
import { backoffDelay, RetriesExhausted, retryPolicy, withRetry, type Scheduler } from '../../../src/sdk/retry.ts'

/**
 * Virtual time: a sleep registers a timer, and once everything else has run (setImmediate, after
 * the microtasks of the attempts) time jumps to the earliest timer and fires it. Aborted sleeps
 * are removed. `slept` lists the sleeps that fired, in order.
 */
function virtualTime(): Scheduler & { slept: number[] } {
  let now = 0
  const slept: number[] = []
  const timers = new Set<{ at: number; ms: number; fire: () => void }>()
  let driving = false
  const drive = () => {
    if (driving) return
    driving = true
    setImmediate(() => {
      driving = false
      const next = [...timers].sort((a, b) => a.at - b.at)[0]
      if (!next) return
      timers.delete(next)
      now = next.at
      slept.push(next.ms)
      next.fire()
      if (timers.size > 0) drive()
    })
  }
  return {
    slept,
    now: () => now,
    sleep: (ms, signal) =>
      new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason)
        const timer = { at: now + ms, ms, fire: () => resolve() }
        timers.add(timer)
        signal?.addEventListener('abort', () => {
          timers.delete(timer)
          reject(signal.reason)
        }, { once: true })
        drive()
      }),
  }
}

test('the delay cap doubles per failure up to maxDelayMs; full jitter draws inside it', () => {
  const policy = retryPolicy({ initialDelayMs: 100, maxDelayMs: 1_000, multiplier: 2, jitter: 'none' })
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(policy, n)), [100, 200, 400, 800, 1_000, 1_000])
  const jittered = retryPolicy({ initialDelayMs: 100, maxDelayMs: 1_000 })
  assert.equal(backoffDelay(jittered, 3, () => 0.5), 200)
  assert.equal(backoffDelay(jittered, 3, () => 0), 0)
  assert.equal(backoffDelay(jittered, 3, () => 0.999), 399)
})

test('a bad policy is refused', () => {
  assert.throws(() => retryPolicy({ attempts: 0 }), RangeError)
  assert.throws(() => retryPolicy({ initialDelayMs: 500, maxDelayMs: 100 }), RangeError)
  assert.throws(() => retryPolicy({ multiplier: 0.5 }), RangeError)
})

test('transient failures are retried until success, with the policy\'s delays', async () => {
  const scheduler = virtualTime()
  let calls = 0
  const result = await withRetry(
    retryPolicy({ attempts: 5, initialDelayMs: 10, maxDelayMs: 100, jitter: 'none' }),
    async (n) => {
      calls++
      if (n < 4) throw new TransientFailure(`attempt ${n}`)
      return 'ok'
    },
    { scheduler },
  )
  assert.equal(result, 'ok')
  assert.equal(calls, 4)
  assert.deepEqual(scheduler.slept, [10, 20, 40], 'the attempt timeouts never fired')
})

test('attempts run out: RetriesExhausted carries the last failure, the count and the class', async () => {
  const scheduler = virtualTime()
  const err = await withRetry(retryPolicy({ attempts: 3, jitter: 'none' }), async (n) => {
    throw new Error(`boom ${n}`)
  }, { scheduler }).catch((e: unknown) => e)
  assert.ok(err instanceof RetriesExhausted)
  assert.equal(err.attempts, 3)
  assert.equal(err.kind, 'transient', 'an unknown error is transient by default')
  assert.equal((err.cause as Error).message, 'boom 3')
})

test('expected and permanent failures end the loop at once', async () => {
  for (const [failure, kind] of [[new ExpectedFailure('no such account'), 'expected'], [new PermanentFailure('bad payload'), 'permanent']] as const) {
    let calls = 0
    const err = await withRetry(retryPolicy({ attempts: 5 }), async () => {
      calls++
      throw failure
    }, { scheduler: virtualTime() }).catch((e: unknown) => e as RetriesExhausted)
    assert.equal(calls, 1, kind)
    assert.equal(err.kind, kind)
  }
  const classified = await withRetry(retryPolicy({ attempts: 5 }), async () => {
    throw new SyntaxError('bad json')
  }, { scheduler: virtualTime(), classify: (e) => (e instanceof SyntaxError ? 'permanent' : 'transient') }).catch((e: unknown) => e as RetriesExhausted)
  assert.deepEqual([classified.attempts, classified.kind], [1, 'permanent'], 'classify decides for foreign errors')
})

test('an attempt past attemptTimeoutMs fails as a transient timeout, and its signal aborts', async () => {
  const scheduler = virtualTime()
  const signals: AbortSignal[] = []
  const err = await withRetry(
    retryPolicy({ attempts: 2, attemptTimeoutMs: 50, jitter: 'none', initialDelayMs: 5 }),
    (_n, signal) => {
      signals.push(signal)
      return new Promise<never>(() => {})
    },
    { scheduler },
  ).catch((e: unknown) => e as RetriesExhausted)
  assert.equal(err.attempts, 2)
  assert.equal((err.cause as Error).name, 'AttemptTimeout')
  assert.ok(signals.every((s) => s.aborted), 'each timed-out attempt was told to stop')
})

test('no attempt starts after the deadline', async () => {
  const scheduler = virtualTime()
  let calls = 0
  const err = await withRetry(retryPolicy({ attempts: 100, initialDelayMs: 100, maxDelayMs: 100, jitter: 'none', deadlineMs: 350 }), async () => {
    calls++
    throw new TransientFailure('down')
  }, { scheduler }).catch((e: unknown) => e as RetriesExhausted)
  assert.equal(calls, 4, 'attempts at 0, 100, 200 and 300 ms; the next would start at 400')
  assert.equal(err.attempts, 4)
})

test('aborting the outer signal stops the waits between attempts', async () => {
  const controller = new AbortController()
  const scheduler = virtualTime()
  const err = await withRetry(retryPolicy({ attempts: 10 }), async (n) => {
    if (n === 2) controller.abort(new Error('stopping'))
    throw new TransientFailure('down')
  }, { scheduler, signal: controller.signal }).catch((e: unknown) => e as Error)
  assert.equal(err.message, 'down', 'the failure of the attempt under way, not RetriesExhausted')
})
