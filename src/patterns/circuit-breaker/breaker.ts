// A circuit breaker in front of one callee, for one caller: `execute` asks the state (local or
// shared through Redis) whether the call may go, runs it within callTimeoutMs, classifies the
// outcome and reports it back. A rejected call throws CircuitOpenError at once, without running.
//
// Classification: `isFailure` sees what the call returned or threw and says whether it speaks
// against the callee's health. An expected outcome (an HTTP 404, a declined card, an
// ExpectedFailure) is a healthy answer and counts as a success; the call's own result or error
// is passed on to the caller unchanged either way. A call past its time limit always counts as
// a failure and throws CallTimeoutError.
//
// Events: `transition` for every state change this instance sees, made here or (shared state)
// by another instance and seen in Redis (`observed: true`); `backend` when the state moves
// between Redis and local (redis-state.ts). Counters are in `snapshot()`, for metrics.
import { EventEmitter } from 'node:events'
import { systemClock, type Clock } from '../../clock.ts'
import { ExpectedFailure } from '../../sdk/failures.ts'
import { BreakerState, INITIAL, TransitionReason, type StateView, type Transition } from './core.ts'
import { CallTimeoutError, CircuitOpenError } from './errors.ts'
import { breakerPolicy, type BreakerPolicy, type BreakerPolicyOptions } from './policy.ts'
import { breakerKey } from './redis-layout.ts'
import { localState, type Backend, type BackendEvent, type BreakerStateStore, type StateBackend } from './state.ts'
import { failureRateOf, type WindowCounts } from './window.ts'

export type CallOutcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown }

export interface CircuitBreakerOptions<T = unknown> extends BreakerPolicyOptions {
  /** The calling service, e.g. `checkout`. With `callee` it names the breaker: `checkout->billing`. */
  readonly caller: string
  readonly callee: string
  /**
   * Whether an outcome counts against the callee. Default: a thrown error does, except an
   * ExpectedFailure; a returned value never does.
   */
  readonly isFailure?: (outcome: CallOutcome<T>) => boolean
  /** Where the state lives. Default: localState(); sharedState({ redis }) for all instances. */
  readonly state?: StateBackend
  readonly clock?: Clock
}

export interface TransitionEvent {
  /** `caller->callee`. */
  readonly key: string
  readonly from: BreakerState
  readonly to: BreakerState
  readonly reason: TransitionReason | typeof INITIAL
  /** Failures / calls at the transition (the window leaving closed, the probes leaving half-open). */
  readonly failureRate: number
  readonly calls: number
  readonly failures: number
  /** True when another instance made it (shared state) or it was adopted from Redis after local state. */
  readonly observed: boolean
  readonly backend: Backend
  /** Wall-clock ms. */
  readonly at: number
}

export interface CircuitBreakerEvents {
  transition: [TransitionEvent]
  backend: [BackendEvent]
}

export interface BreakerCounters {
  /** Calls that ran (admitted). */
  calls: number
  successes: number
  failures: number
  /** Of the failures, calls that ran past callTimeoutMs. */
  timeouts: number
  /** Of the successes, calls that threw an outcome classified as expected (not a failure). */
  expected: number
  /** Calls rejected because the circuit was open or half-open with its probes out. */
  rejections: number
  /** Transition events emitted. */
  transitions: number
  /** Switches from shared to local state (Redis unavailable). */
  fallbacks: number
}

export interface BreakerSnapshot {
  readonly key: string
  readonly state: BreakerState
  readonly backend: Backend
  /** The closed window as last seen (after this instance's latest outcome). */
  readonly window: WindowCounts & { readonly failureRate: number }
  /** When a call may pass again, if it is open or has every probe out. */
  readonly retryAt: Date | undefined
  readonly counters: Readonly<BreakerCounters>
}

/** The one reason for a single step of the state machine; undefined for a jump over a state. */
function directReason(from: BreakerState, to: BreakerState): TransitionReason | undefined {
  if (to === BreakerState.open) return from === BreakerState.closed ? TransitionReason.failureRate : TransitionReason.probeFailed
  if (from === BreakerState.open) return to === BreakerState.halfOpen ? TransitionReason.openElapsed : undefined
  return from === BreakerState.halfOpen && to === BreakerState.closed ? TransitionReason.probeSucceeded : undefined
}

const defaultIsFailure = (outcome: CallOutcome<unknown>): boolean => !outcome.ok && !(outcome.error instanceof ExpectedFailure)

export class CircuitBreaker<T = unknown> extends EventEmitter<CircuitBreakerEvents> {
  readonly key: string
  readonly policy: BreakerPolicy
  readonly #store: BreakerStateStore
  readonly #isFailure: (outcome: CallOutcome<T>) => boolean
  readonly #clock: Clock
  readonly #counters: BreakerCounters = { calls: 0, successes: 0, failures: 0, timeouts: 0, expected: 0, rejections: 0, transitions: 0, fallbacks: 0 }
  #seen: StateView = { state: BreakerState.closed, generation: 0, retryInMs: 0, reason: INITIAL, reasonCounts: { calls: 0, failures: 0 } }
  #seenAt = 0
  #window: WindowCounts = { calls: 0, failures: 0 }

  constructor(options: CircuitBreakerOptions<T>) {
    super()
    this.key = breakerKey(options.caller, options.callee)
    this.policy = breakerPolicy(options)
    this.#isFailure = options.isFailure ?? defaultIsFailure
    this.#clock = options.clock ?? systemClock
    this.#store = (options.state ?? localState())({
      key: this.key,
      policy: this.policy,
      clock: this.#clock,
      notify: (event) => {
        if (event.backend === 'local') this.#counters.fallbacks++
        this.emit('backend', event)
      },
    })
  }

  /**
   * Runs `call` if the circuit lets it, or throws CircuitOpenError. `signal` aborts when the call
   * times out; pass it on (fetch, a client's request options) so the work stops too.
   */
  async execute(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const admission = await this.#store.admit()
    this.#observe(admission.view, admission.transition, admission.backend)
    if (!admission.permit) {
      this.#counters.rejections++
      const state = admission.view.state === BreakerState.closed ? BreakerState.open : admission.view.state
      throw new CircuitOpenError(this.key, state, admission.view.retryInMs, this.#clock.wallMs())
    }
    this.#counters.calls++
    const outcome = await this.#run(call)
    let failed: boolean
    if (outcome.timedOut) failed = true
    else {
      try {
        failed = this.#isFailure(outcome)
      } catch {
        failed = true // a classifier that throws cannot vouch for the callee
      }
    }
    if (failed) {
      this.#counters.failures++
      if (outcome.timedOut) this.#counters.timeouts++
    } else {
      this.#counters.successes++
      if (!outcome.ok) this.#counters.expected++
    }
    const recorded = await this.#store.record(admission.permit, failed)
    this.#observe(recorded.view, recorded.transition, recorded.backend)
    if (recorded.view.window) this.#window = recorded.view.window
    if (outcome.ok) return outcome.value
    throw outcome.error
  }

  snapshot(): BreakerSnapshot {
    const left = this.#seen.retryInMs - (this.#clock.monotonicMs() - this.#seenAt)
    return {
      key: this.key,
      state: this.#seen.state,
      backend: this.#store.backend,
      window: { ...this.#window, failureRate: failureRateOf(this.#window) },
      retryAt: this.#seen.retryInMs > 0 && left > 0 ? new Date(this.#clock.wallMs() + left) : undefined,
      counters: { ...this.#counters },
    }
  }

  async #run(call: (signal: AbortSignal) => Promise<T>): Promise<CallOutcome<T> & { timedOut?: true }> {
    const controller = new AbortController()
    const timeoutMs = this.policy.callTimeoutMs
    const running = Promise.resolve()
      .then(() => call(controller.signal))
      .then(
        (value): CallOutcome<T> => ({ ok: true, value }),
        (error: unknown): CallOutcome<T> => ({ ok: false, error }),
      )
    if (timeoutMs === 0) return running
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<CallOutcome<T> & { timedOut: true }>((resolve) => {
      timer = setTimeout(() => {
        const error = new CallTimeoutError(this.key, timeoutMs)
        controller.abort(error)
        resolve({ ok: false, error, timedOut: true })
      }, timeoutMs)
    })
    try {
      return await Promise.race([running, expired])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Emits the state changes between what this instance saw last and `view`. */
  #observe(view: StateView, transition: Transition | undefined, backend: Backend): void {
    // A change made elsewhere (another instance, or Redis adopted again after local state). With
    // a transition of our own after it (another instance opened it, this admission turned it
    // half-open), the counts this transition carries are the ones it opened with.
    const before = transition ? transition.from : view.state
    if (before !== this.#seen.state) {
      const reason = transition ? (directReason(this.#seen.state, before) ?? INITIAL) : view.reason
      this.#emitTransition(this.#seen.state, before, reason, transition ? transition.counts : view.reasonCounts, true, backend)
    }
    if (transition) this.#emitTransition(transition.from, transition.to, transition.reason, transition.counts, false, backend)
    this.#seen = view
    this.#seenAt = this.#clock.monotonicMs()
  }

  #emitTransition(from: BreakerState, to: BreakerState, reason: TransitionEvent['reason'], counts: WindowCounts, observed: boolean, backend: Backend): void {
    this.#counters.transitions++
    const event: TransitionEvent = { key: this.key, from, to, reason, failureRate: failureRateOf(counts), calls: counts.calls, failures: counts.failures, observed, backend, at: this.#clock.wallMs() }
    this.emit('transition', event)
  }
}

export function createCircuitBreaker<T = unknown>(options: CircuitBreakerOptions<T>): CircuitBreaker<T> {
  return new CircuitBreaker(options)
}
