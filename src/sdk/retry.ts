// Retries with backoff, pure apart from the scheduler it is given (time is an input: tests pass a
// manual one). A policy bounds everything: attempts, each attempt's time, and an overall deadline;
// the delay before attempt n+1 is exponential with full jitter (a random delay in [0, cap]),
// which spreads the retries of many clients that failed together (AWS Architecture Blog,
// "Exponential Backoff And Jitter").
//
// Only transient failures are retried (failures.ts): an expected or permanent one ends the loop at
// once, as does running out of attempts or of deadline; the last failure is then rethrown inside a
// RetriesExhausted, with the attempt count and the classification.

import { AttemptTimeout, classifyFailure, FailureKind, messageOf, type Classifier } from './failures.ts'

export interface RetryPolicy {
  /** Attempts in all, the first included (1: no retry). */
  readonly attempts: number
  /** The delay cap after the first failure; it doubles (multiplier) per failure up to maxDelayMs. */
  readonly initialDelayMs: number
  readonly maxDelayMs: number
  readonly multiplier: number
  /** `full`: the delay is random in [0, cap]; `none`: exactly the cap. */
  readonly jitter: 'full' | 'none'
  /** An attempt still running after this fails as an AttemptTimeout (transient); 0: no limit. */
  readonly attemptTimeoutMs: number
  /** No attempt starts later than this after the first one; 0: no deadline. */
  readonly deadlineMs: number
}

export const defaultRetryPolicy: RetryPolicy = {
  attempts: 5,
  initialDelayMs: 100,
  maxDelayMs: 10_000,
  multiplier: 2,
  jitter: 'full',
  attemptTimeoutMs: 30_000,
  deadlineMs: 120_000,
}

export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...defaultRetryPolicy, ...overrides }
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`retry policy: ${what}`)
  }
  check(Number.isInteger(policy.attempts) && policy.attempts >= 1, `attempts must be a whole number >= 1, got ${policy.attempts}`)
  check(policy.initialDelayMs >= 0 && policy.maxDelayMs >= policy.initialDelayMs, 'need 0 <= initialDelayMs <= maxDelayMs')
  check(policy.multiplier >= 1, `multiplier must be >= 1, got ${policy.multiplier}`)
  check(policy.attemptTimeoutMs >= 0 && policy.deadlineMs >= 0, 'timeouts must be >= 0')
  return policy
}

/** The delay after the `failures`-th failure (1-based); `random` returns [0, 1). */
export function backoffDelay(policy: RetryPolicy, failures: number, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (failures - 1))
  return policy.jitter === 'full' ? Math.floor(random() * cap) : cap
}

/** Time, as the retry loop needs it. */
export interface Scheduler {
  now(): number
  /** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const realScheduler: Scheduler = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      const onAbort = () => {
        clearTimeout(timer)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
    }),
}

export class RetriesExhausted extends Error {
  readonly attempts: number
  readonly kind: FailureKind
  readonly firstFailureAt: number
  readonly lastFailureAt: number
  constructor(cause: unknown, details: { attempts: number; kind: FailureKind; firstFailureAt: number; lastFailureAt: number }) {
    super(`${details.kind} failure after ${details.attempts} attempt(s): ${messageOf(cause)}`, { cause })
    this.name = 'RetriesExhausted'
    this.attempts = details.attempts
    this.kind = details.kind
    this.firstFailureAt = details.firstFailureAt
    this.lastFailureAt = details.lastFailureAt
  }
}

export interface RetryOptions {
  readonly scheduler?: Scheduler
  readonly random?: () => number
  readonly classify?: Classifier
  /** Aborts the waits between attempts and the current attempt's signal (shutting down). */
  readonly signal?: AbortSignal
  /** Called before each retry with the failure that caused it and the delay chosen. */
  readonly onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void
}

/**
 * Runs `attempt` (1-based number, a signal that aborts when the attempt times out or `signal`
 * aborts) until it succeeds, or throws RetriesExhausted. `wallClock` stamps the failure times.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  attempt: (n: number, signal: AbortSignal) => Promise<T>,
  options: RetryOptions = {},
  wallClock: () => number = Date.now,
): Promise<T> {
  const scheduler = options.scheduler ?? realScheduler
  const start = scheduler.now()
  let firstFailureAt = 0
  for (let n = 1; ; n++) {
    try {
      return await runAttempt(policy, n, attempt, scheduler, options.signal)
    } catch (err) {
      const now = wallClock()
      if (n === 1) firstFailureAt = now
      if (options.signal?.aborted) throw err
      const kind = classifyFailure(err, options.classify)
      const delayMs = backoffDelay(policy, n, options.random)
      const pastDeadline = policy.deadlineMs > 0 && scheduler.now() + delayMs - start > policy.deadlineMs
      if (kind !== FailureKind.transient || n >= policy.attempts || pastDeadline) {
        throw new RetriesExhausted(err, { attempts: n, kind, firstFailureAt, lastFailureAt: now })
      }
      options.onRetry?.({ attempt: n, delayMs, error: err })
      await scheduler.sleep(delayMs, options.signal)
    }
  }
}

async function runAttempt<T>(
  policy: RetryPolicy,
  n: number,
  attempt: (n: number, signal: AbortSignal) => Promise<T>,
  scheduler: Scheduler,
  outer: AbortSignal | undefined,
): Promise<T> {
  const controller = new AbortController()
  const abort = () => controller.abort(outer!.reason)
  outer?.addEventListener('abort', abort, { once: true })
  const timeout = new AbortController()
  try {
    const running = attempt(n, controller.signal)
    if (policy.attemptTimeoutMs <= 0) return await running
    const timedOut = scheduler.sleep(policy.attemptTimeoutMs, timeout.signal).then(() => {
      controller.abort(new AttemptTimeout(policy.attemptTimeoutMs))
      throw new AttemptTimeout(policy.attemptTimeoutMs)
    })
    timedOut.catch(() => {})
    return await Promise.race([running, timedOut])
  } finally {
    timeout.abort()
    outer?.removeEventListener('abort', abort)
  }
}
