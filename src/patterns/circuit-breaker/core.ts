// The breaker's state machine, pure: outcomes and `now` (ms, monotonic) in, decisions out. Local
// state runs it in process; the Redis scripts are the same machine in Lua, and
// test/integration/circuit-breaker-redis.test.ts runs one scenario against both.
//
//   closed     calls pass; each outcome enters the window. Once the window holds minimumCalls
//              and failures/calls >= failureRateThreshold, it opens (reason `failure-rate`).
//   open       calls are rejected until openDurationMs has passed; the first call after that
//              turns it half-open (`open-elapsed`). Nothing runs on a timer: time is only read.
//   half-open  up to halfOpenProbes calls hold a probe token at once; the rest are rejected.
//              A probe failure re-opens it (`probe-failed`); successesToClose probe successes
//              close it with an empty window (`probe-succeeded`).
//
// Every transition bumps `generation`. A permit carries the generation it was granted in, and an
// outcome from an older one is ignored: a slow call let through while closed must not close a
// half-open breaker, nor count in the fresh window of a re-closed one.
//
// A probe token is a lease (probeLeaseMs): a probe that never reports back (its process died,
// the call hangs) stops holding the half-open breaker once the lease has run out. With budget
// B > 1 one lease time covers all B tokens (the latest grant's), which may hold a lost token a
// little longer; it never lets more than B probes start within one lease.
import type { BreakerPolicy } from './policy.ts'
import { createWindow, exceedsThreshold, type OutcomeWindow, type WindowCounts } from './window.ts'

export const BreakerState = { closed: 'closed', open: 'open', halfOpen: 'half-open' } as const
export type BreakerState = (typeof BreakerState)[keyof typeof BreakerState]

export const TransitionReason = {
  /** closed -> open: the window's failure rate reached the threshold. */
  failureRate: 'failure-rate',
  /** open -> half-open: the open duration has passed. */
  openElapsed: 'open-elapsed',
  /** half-open -> open. */
  probeFailed: 'probe-failed',
  /** half-open -> closed. */
  probeSucceeded: 'probe-succeeded',
} as const
export type TransitionReason = (typeof TransitionReason)[keyof typeof TransitionReason]

/** The reason a breaker that never changed state gives for being closed. */
export const INITIAL = 'initial'

export interface Transition {
  readonly from: BreakerState
  readonly to: BreakerState
  readonly reason: TransitionReason
  /** The window (or, leaving half-open, the probes) when it happened. */
  readonly counts: WindowCounts
}

/** What one operation on the state saw. */
export interface StateView {
  readonly state: BreakerState
  readonly generation: number
  /** ms until a call may pass: open, until half-open; half-open with every token out, until a lease ends; else 0. */
  readonly retryInMs: number
  /** Why it is in this state, and the counts at that transition. */
  readonly reason: TransitionReason | typeof INITIAL
  readonly reasonCounts: WindowCounts
  /** The closed window after a recorded outcome; absent when the operation did not read it. */
  readonly window?: WindowCounts
}

export type Verdict = 'allowed' | 'probe' | 'rejected'

export interface Admission {
  readonly verdict: Verdict
  readonly view: StateView
  /** Set when this admission turned an open breaker half-open. */
  readonly transition?: Transition
}

export interface Recorded {
  /** False for an outcome of an older generation, which changed nothing. */
  readonly applied: boolean
  readonly view: StateView
  readonly transition?: Transition
}

const NO_COUNTS: WindowCounts = { calls: 0, failures: 0 }

export class BreakerCore {
  readonly #policy: BreakerPolicy
  readonly #window: OutcomeWindow
  #state: BreakerState = BreakerState.closed
  #generation = 0
  #retryAt = 0
  #probes = 0
  #leaseUntil = 0
  #probeSuccesses = 0
  #reason: TransitionReason | typeof INITIAL = INITIAL
  #reasonCounts: WindowCounts = NO_COUNTS

  constructor(policy: BreakerPolicy) {
    this.#policy = policy
    this.#window = createWindow(policy.window)
  }

  /** May a call go now? `take: false` only looks, changing nothing. */
  admit(now: number, take = true): Admission {
    if (!take) return { verdict: this.#state === BreakerState.closed ? 'allowed' : 'rejected', view: this.view(now) }
    let transition: Transition | undefined
    if (this.#state === BreakerState.open && now >= this.#retryAt) {
      transition = this.#moveTo(now, BreakerState.halfOpen, TransitionReason.openElapsed, this.#reasonCounts)
    }
    let verdict: Verdict = 'rejected'
    if (this.#state === BreakerState.closed) verdict = 'allowed'
    else if (this.#state === BreakerState.halfOpen) {
      if (this.#probes > 0 && now >= this.#leaseUntil) this.#probes = 0
      if (this.#probes < this.#policy.halfOpenProbes) {
        this.#probes++
        this.#leaseUntil = now + this.#policy.probeLeaseMs
        verdict = 'probe'
      }
    }
    return { verdict, view: this.view(now), ...(transition ? { transition } : {}) }
  }

  /** The outcome of a call admitted in `generation`. */
  record(now: number, generation: number, failed: boolean): Recorded {
    if (generation !== this.#generation || this.#state === BreakerState.open) {
      return { applied: false, view: this.view(now) }
    }
    let transition: Transition | undefined
    if (this.#state === BreakerState.closed) {
      this.#window.add(now, failed)
      const counts = this.#window.counts(now)
      if (exceedsThreshold(counts, this.#policy.minimumCalls, this.#policy.failureRateThreshold)) {
        transition = this.#moveTo(now, BreakerState.open, TransitionReason.failureRate, counts)
      }
    } else {
      this.#probes = Math.max(0, this.#probes - 1)
      if (failed) {
        transition = this.#moveTo(now, BreakerState.open, TransitionReason.probeFailed, { calls: this.#probeSuccesses + 1, failures: 1 })
      } else if (++this.#probeSuccesses >= this.#policy.successesToClose) {
        transition = this.#moveTo(now, BreakerState.closed, TransitionReason.probeSucceeded, { calls: this.#probeSuccesses, failures: 0 })
      }
    }
    return { applied: true, view: this.view(now, this.#state === BreakerState.closed ? this.#window.counts(now) : NO_COUNTS), ...(transition ? { transition } : {}) }
  }

  view(now: number, window?: WindowCounts): StateView {
    let retryInMs = 0
    if (this.#state === BreakerState.open) retryInMs = Math.max(0, this.#retryAt - now)
    else if (this.#state === BreakerState.halfOpen && this.#probes >= this.#policy.halfOpenProbes) retryInMs = Math.max(0, this.#leaseUntil - now)
    return {
      state: this.#state,
      generation: this.#generation,
      retryInMs,
      reason: this.#reason,
      reasonCounts: this.#reasonCounts,
      ...(window ? { window } : {}),
    }
  }

  /**
   * Takes over a state seen elsewhere (the last shared state, when Redis stops answering): its
   * state, generation (so permits granted there still count here) and time left open. A window
   * it saw is replayed as outcomes in the current instant; probe tokens are not carried over.
   */
  seed(now: number, seen: StateView): void {
    this.#window.clear()
    this.#state = seen.state
    this.#generation = seen.generation
    this.#retryAt = seen.state === BreakerState.open ? now + seen.retryInMs : 0
    this.#probes = 0
    this.#leaseUntil = 0
    this.#probeSuccesses = 0
    this.#reason = seen.reason
    this.#reasonCounts = seen.reasonCounts
    if (seen.state === BreakerState.closed && seen.window) {
      for (let i = 0; i < seen.window.calls; i++) this.#window.add(now, i < seen.window.failures)
    }
  }

  #moveTo(now: number, to: BreakerState, reason: TransitionReason, counts: WindowCounts): Transition {
    const from = this.#state
    this.#state = to
    this.#generation++
    this.#reason = reason
    this.#reasonCounts = counts
    this.#probes = 0
    this.#probeSuccesses = 0
    this.#window.clear()
    this.#retryAt = to === BreakerState.open ? now + this.#policy.openDurationMs : 0
    return { from, to, reason, counts }
  }
}
