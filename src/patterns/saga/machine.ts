// The saga state machine, pure: given a definition and an instance's stored snapshot, what happens
// next; given a failure, retry or give up. No I/O and no clock: the orchestrator loads the
// snapshot, asks, does the one thing, records it, and asks again. Because the answer depends only
// on what is stored, a process that crashed anywhere resumes by asking the same question.
//
//   running        step i = current_step: no record -> run attempt 1; started -> run it again with
//                  the same idempotency key (a crash interrupted it), unless its stored timeout
//                  already fired; waiting -> wait for the retry timer, then the next attempt.
//   compensating   the compensations of completed steps, in reverse order, each like a step. The
//                  step that failed is compensated too when its outcome is uncertain (it timed
//                  out or failed transiently: the service may have applied it); a step refused
//                  with an expected or permanent failure applied nothing and is not.
//   completed, compensated, failed-compensation   terminal.
import { backoffDelay, type RetryPolicy } from '../../sdk/retry.ts'
import { FailureKind } from '../../sdk/failures.ts'
import type { Json, Saga, StepPhase } from './definition.ts'

export const SagaStatus = {
  running: 'running',
  compensating: 'compensating',
  completed: 'completed',
  compensated: 'compensated',
  /** Compensations ran out of retries: the saga's dead-letter state, for an operator. */
  failedCompensation: 'failed-compensation',
} as const
export type SagaStatus = (typeof SagaStatus)[keyof typeof SagaStatus]

export const TERMINAL_STATUSES: readonly SagaStatus[] = [SagaStatus.completed, SagaStatus.compensated, SagaStatus.failedCompensation]

export const StepStatus = {
  /** Recorded before invoking; a crash leaves it so, and the resume invokes again with the same key. */
  started: 'started',
  /** An attempt failed; the next one waits for a stored retry timer. */
  waiting: 'waiting',
  done: 'done',
  /** Out of attempts, or a failure no retry can cure. */
  failed: 'failed',
} as const
export type StepStatus = (typeof StepStatus)[keyof typeof StepStatus]

export const TimerStatus = { pending: 'pending', firing: 'firing', fired: 'fired', cancelled: 'cancelled' } as const
export type TimerStatus = (typeof TimerStatus)[keyof typeof TimerStatus]

export interface StepRecord {
  readonly phase: StepPhase
  readonly index: number
  readonly name: string
  readonly status: StepStatus
  /** The attempt under the retry policy (a resume after a crash is the same attempt). */
  readonly attempt: number
  /** How many times invoke (or compensate) was called, resumes included. */
  readonly invocations: number
  readonly idempotencyKey: string
  /** The last failure was a timeout or transient: the effect may have happened. */
  readonly outcomeUncertain: boolean
  readonly result: Json
  readonly lastError: string | null
  readonly startedAtMs: number
  readonly finishedAtMs: number | null
}

export interface TimerView {
  readonly id: string
  readonly status: TimerStatus
}

export interface InstanceSnapshot {
  readonly instanceId: string
  readonly sagaName: string
  readonly sagaVersion: number
  readonly status: SagaStatus
  readonly currentStep: number
  readonly input: Json
  readonly traceparent: string | null
  readonly failedStep: string | null
  readonly lastError: string | null
  readonly createdAtMs: number
  readonly updatedAtMs: number
  readonly finishedAtMs: number | null
  readonly steps: readonly StepRecord[]
  readonly timers: readonly TimerView[]
}

export type NextAction =
  | { readonly kind: 'run'; readonly phase: StepPhase; readonly step: number; readonly attempt: number; readonly resume: boolean }
  /** A started attempt whose stored timeout fired while no process was watching it. */
  | { readonly kind: 'timed-out'; readonly phase: StepPhase; readonly step: number; readonly attempt: number }
  /** Blocked until the timer fires (a retry delay). */
  | { readonly kind: 'wait'; readonly timerId: string }
  | { readonly kind: 'finish'; readonly status: typeof SagaStatus.completed | typeof SagaStatus.compensated }
  | { readonly kind: 'idle' }

/** The stored timer that bounds one attempt. */
export function timeoutTimerId(instanceId: string, phase: StepPhase, step: string, attempt: number): string {
  return `timeout:${instanceId}:${step}:${phase}:${attempt}`
}

/** The stored timer that ends the delay before `attempt`. */
export function retryTimerId(instanceId: string, phase: StepPhase, step: string, attempt: number): string {
  return `retry:${instanceId}:${step}:${phase}:${attempt}`
}

export function recordOf(snapshot: InstanceSnapshot, phase: StepPhase, index: number): StepRecord | undefined {
  return snapshot.steps.find((s) => s.phase === phase && s.index === index)
}

/** Step indexes to compensate, in the order to run them (last done step first). */
export function compensationPlan(saga: Saga<never>, snapshot: InstanceSnapshot): number[] {
  const plan: number[] = []
  for (let index = Math.min(snapshot.currentStep, saga.steps.length - 1); index >= 0; index--) {
    if (!saga.steps[index]!.compensate) continue
    const invoked = recordOf(snapshot, 'invoke', index)
    if (!invoked) continue
    const mayHaveApplied = invoked.status === StepStatus.done || invoked.outcomeUncertain
    if (mayHaveApplied) plan.push(index)
  }
  return plan
}

export function nextAction(saga: Saga<never>, snapshot: InstanceSnapshot): NextAction {
  if (TERMINAL_STATUSES.includes(snapshot.status)) return { kind: 'idle' }
  if (snapshot.status === SagaStatus.running) {
    const index = snapshot.currentStep
    if (index >= saga.steps.length) return { kind: 'finish', status: SagaStatus.completed }
    const action = stepAction(saga, snapshot, 'invoke', index)
    if (action === 'done') throw new Error(`saga instance ${snapshot.instanceId}: step ${index} is done but current_step was not advanced`)
    if (action === 'failed') throw new Error(`saga instance ${snapshot.instanceId}: step ${index} failed but the instance is still running`)
    return action
  }
  for (const index of compensationPlan(saga, snapshot)) {
    const action = stepAction(saga, snapshot, 'compensate', index)
    if (action === 'done') continue
    // A compensation out of attempts turns the instance to failed-compensation in the same
    // transaction, so this is only reached from a snapshot that was already terminal.
    if (action === 'failed') return { kind: 'idle' }
    return action
  }
  return { kind: 'finish', status: SagaStatus.compensated }
}

function stepAction(saga: Saga<never>, snapshot: InstanceSnapshot, phase: StepPhase, index: number): NextAction | 'done' | 'failed' {
  const name = saga.steps[index]!.name
  const record = recordOf(snapshot, phase, index)
  if (!record) return { kind: 'run', phase, step: index, attempt: 1, resume: false }
  switch (record.status) {
    case StepStatus.done:
      return 'done'
    case StepStatus.failed:
      return 'failed'
    case StepStatus.started: {
      const timeout = timerStatus(snapshot, timeoutTimerId(snapshot.instanceId, phase, name, record.attempt))
      if (timeout === TimerStatus.firing || timeout === TimerStatus.fired) return { kind: 'timed-out', phase, step: index, attempt: record.attempt }
      return { kind: 'run', phase, step: index, attempt: record.attempt, resume: true }
    }
    case StepStatus.waiting: {
      const next = record.attempt + 1
      const timerId = retryTimerId(snapshot.instanceId, phase, name, next)
      // A retry delay an operator cancelled (or one lost) must not leave the instance stuck: it ends the wait.
      if (timerStatus(snapshot, timerId) === TimerStatus.pending) return { kind: 'wait', timerId }
      return { kind: 'run', phase, step: index, attempt: next, resume: false }
    }
  }
}

function timerStatus(snapshot: InstanceSnapshot, id: string): TimerStatus | undefined {
  return snapshot.timers.find((t) => t.id === id)?.status
}

export type FailureVerdict =
  | { readonly kind: 'retry'; readonly delayMs: number; readonly nextAttempt: number }
  | { readonly kind: 'give-up'; readonly outcomeUncertain: boolean }

/**
 * After attempt `attempt` failed with a failure of `kind`: only transient failures (timeouts
 * included) are retried, within the policy's attempts. `random` feeds the backoff's jitter.
 */
export function afterFailure(policy: RetryPolicy, attempt: number, kind: FailureKind, random: () => number = Math.random): FailureVerdict {
  const uncertain = kind === FailureKind.transient
  if (!uncertain || attempt >= policy.attempts) return { kind: 'give-up', outcomeUncertain: uncertain }
  return { kind: 'retry', delayMs: backoffDelay(policy, attempt, random), nextAttempt: attempt + 1 }
}
