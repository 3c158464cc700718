// What a breaker decides by, validated once, with its defaults beside each field. The same policy
// drives local state and the Redis scripts: every instance of one caller->callee breaker must be
// given the same policy (the shared window is reset if its shape changes, see redis-scripts.ts).
import { MAX_BUCKETS, MAX_COUNT_WINDOW, type WindowSpec } from './window.ts'

export type WindowOptions =
  | { readonly kind: 'count'; readonly size: number }
  /** `buckets` defaults to 10; `durationMs` must be a multiple of it. */
  | { readonly kind: 'time'; readonly durationMs: number; readonly buckets?: number }

export interface BreakerPolicy {
  /** Which outcomes a closed breaker judges by. Default: the last 20 calls. */
  readonly window: WindowSpec
  /** Calls the window must hold before it may open; default 10 (at most the count window's size). */
  readonly minimumCalls: number
  /** Opens when failures / calls in the window reach this, in (0, 1]. Default 0.5. */
  readonly failureRateThreshold: number
  /** How long it stays open before letting probes through (half-open). Default 30 s. */
  readonly openDurationMs: number
  /** Calls let through at once while half-open; others are rejected. Default 1. */
  readonly halfOpenProbes: number
  /** Probe successes that close it; one probe failure re-opens it. Default 1. */
  readonly successesToClose: number
  /** A call still running after this counts as a failure (its signal aborts); 0: no limit. Default 10 s. */
  readonly callTimeoutMs: number
  /**
   * How long a probe token is held for a call that never reports back (its process died, or the
   * call hangs without a timeout); then another probe may go. Default: callTimeoutMs + 5 s, or
   * 60 s without a call timeout.
   */
  readonly probeLeaseMs: number
}

export interface BreakerPolicyOptions extends Partial<Omit<BreakerPolicy, 'window'>> {
  readonly window?: WindowOptions
}

const DEFAULT_BUCKETS = 10

export function breakerPolicy(options: BreakerPolicyOptions = {}): BreakerPolicy {
  const window = windowSpec(options.window ?? { kind: 'count', size: 20 })
  const callTimeoutMs = options.callTimeoutMs ?? 10_000
  const policy: BreakerPolicy = {
    window,
    minimumCalls: options.minimumCalls ?? (window.kind === 'count' ? Math.min(10, window.size) : 10),
    failureRateThreshold: options.failureRateThreshold ?? 0.5,
    openDurationMs: options.openDurationMs ?? 30_000,
    halfOpenProbes: options.halfOpenProbes ?? 1,
    successesToClose: options.successesToClose ?? 1,
    callTimeoutMs,
    probeLeaseMs: options.probeLeaseMs ?? (callTimeoutMs > 0 ? callTimeoutMs + 5_000 : 60_000),
  }
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`circuit breaker policy: ${what}`)
  }
  const whole = (n: number, min: number) => Number.isSafeInteger(n) && n >= min
  check(whole(policy.minimumCalls, 1), `minimumCalls must be a whole number >= 1, got ${policy.minimumCalls}`)
  if (window.kind === 'count') {
    check(policy.minimumCalls <= window.size, `minimumCalls (${policy.minimumCalls}) cannot exceed the window size (${window.size}): it could never open`)
  }
  check(policy.failureRateThreshold > 0 && policy.failureRateThreshold <= 1, `failureRateThreshold must be in (0, 1], got ${policy.failureRateThreshold}`)
  check(whole(policy.openDurationMs, 1), `openDurationMs must be a whole number >= 1, got ${policy.openDurationMs}`)
  check(whole(policy.halfOpenProbes, 1), `halfOpenProbes must be a whole number >= 1, got ${policy.halfOpenProbes}`)
  check(whole(policy.successesToClose, 1), `successesToClose must be a whole number >= 1, got ${policy.successesToClose}`)
  check(whole(policy.callTimeoutMs, 0), `callTimeoutMs must be a whole number >= 0, got ${policy.callTimeoutMs}`)
  check(whole(policy.probeLeaseMs, 1), `probeLeaseMs must be a whole number >= 1, got ${policy.probeLeaseMs}`)
  return Object.freeze(policy)
}

function windowSpec(options: WindowOptions): WindowSpec {
  if (options.kind === 'count') {
    if (!Number.isSafeInteger(options.size) || options.size < 1 || options.size > MAX_COUNT_WINDOW) {
      throw new RangeError(`circuit breaker policy: a count window holds 1 to ${MAX_COUNT_WINDOW} calls, got ${options.size}`)
    }
    return Object.freeze({ kind: 'count', size: options.size })
  }
  const buckets = options.buckets ?? DEFAULT_BUCKETS
  if (!Number.isSafeInteger(buckets) || buckets < 1 || buckets > MAX_BUCKETS) {
    throw new RangeError(`circuit breaker policy: a time window has 1 to ${MAX_BUCKETS} buckets, got ${buckets}`)
  }
  // Whole-millisecond buckets, so Lua and JavaScript number the buckets identically.
  if (!Number.isSafeInteger(options.durationMs) || options.durationMs < buckets || options.durationMs % buckets !== 0) {
    throw new RangeError(`circuit breaker policy: a time window's durationMs must be a whole multiple of its ${buckets} buckets, got ${options.durationMs}`)
  }
  return Object.freeze({ kind: 'time', durationMs: options.durationMs, buckets })
}
