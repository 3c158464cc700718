// The breaker's two failures. Both are transient (src/sdk/failures.ts): a consumer handler that
// meets an open circuit is retried with backoff, then goes to its retry topic, as for any other
// outage of the callee. Each carries a stable code and `retriable`, as TidewayError does.
import type { TidewayErrorCode } from '../../errors.ts'
import { TransientFailure } from '../../sdk/failures.ts'
import type { BreakerState } from './core.ts'

export class CircuitOpenError extends TransientFailure {
  readonly code: TidewayErrorCode = 'TIDEWAY_ERR_CIRCUIT_OPEN'
  readonly retriable = true
  /** The breaker, `caller->callee`. */
  readonly breaker: string
  readonly state: Exclude<BreakerState, 'closed'>
  /** When a call may pass again (open: when it goes half-open; half-open: when a probe lease ends at the latest). */
  readonly retryAt: Date
  readonly retryAfterMs: number

  constructor(breaker: string, state: Exclude<BreakerState, 'closed'>, retryAfterMs: number, nowMs: number) {
    const retryAt = new Date(nowMs + retryAfterMs)
    const when = `${retryAt.toISOString()} (in ${(retryAfterMs / 1000).toFixed(1)} s)`
    super(
      state === 'open'
        ? `circuit "${breaker}" is open: calls are rejected until it lets a probe through at ${when}`
        : `circuit "${breaker}" is half-open and its probe calls are in flight: retry once they report, at the latest at ${when}`,
    )
    this.breaker = breaker
    this.state = state
    this.retryAt = retryAt
    this.retryAfterMs = retryAfterMs
  }
}

/** A call that ran past the breaker's callTimeoutMs: it counts as a failure, and its signal was aborted. */
export class CallTimeoutError extends TransientFailure {
  readonly code: TidewayErrorCode = 'TIDEWAY_ERR_CALL_TIMEOUT'
  readonly retriable = true
  readonly breaker: string
  readonly timeoutMs: number

  constructor(breaker: string, timeoutMs: number) {
    super(`call through circuit "${breaker}" did not finish within ${timeoutMs} ms`)
    this.breaker = breaker
    this.timeoutMs = timeoutMs
  }
}
