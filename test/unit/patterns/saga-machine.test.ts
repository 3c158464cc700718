// The saga state machine (src/patterns/saga/machine.ts) on hand-built snapshots: what runs next
// in each stored state, including every state a crash can leave behind, the order of
// compensations, and which failures are retried. Pure: no database, no clock.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { defineSaga, stepIdempotencyKey } from '../../../src/patterns/saga/definition.ts'
import { afterFailure, compensationPlan, nextAction, retryTimerId, timeoutTimerId, type InstanceSnapshot, type StepRecord, type TimerView } from '../../../src/patterns/saga/machine.ts'
import { FailureKind } from '../../../src/sdk/failures.ts'
import { retryPolicy } from '../../../src/sdk/retry.ts'

const noop = async () => null
const saga = defineSaga({
  name: 'subscribe',
  version: 1,
  steps: [
    { name: 'subscription', invoke: noop, compensate: async () => {} },
    { name: 'payment', invoke: noop, compensate: async () => {} },
    { name: 'notification', invoke: noop },
  ],
})

function snapshot(overrides: Partial<InstanceSnapshot> = {}): InstanceSnapshot {
  return {
    instanceId: 'i',
    sagaName: 'subscribe',
    sagaVersion: 1,
    status: 'running',
    currentStep: 0,
    input: null,
    traceparent: null,
    failedStep: null,
    lastError: null,
    createdAtMs: 0,
    updatedAtMs: 0,
    finishedAtMs: null,
    steps: [],
    timers: [],
    ...overrides,
  }
}

function step(index: number, status: StepRecord['status'], extra: Partial<StepRecord> = {}): StepRecord {
  const name = saga.steps[index]!.name
  const phase = extra.phase ?? 'invoke'
  return { phase, index, name, status, attempt: 1, invocations: 1, idempotencyKey: stepIdempotencyKey('i', name, phase), outcomeUncertain: false, result: null, lastError: null, startedAtMs: 0, finishedAtMs: null, ...extra }
}

const timer = (id: string, status: TimerView['status']): TimerView => ({ id, status })

test('a new instance runs its first step, attempt 1', () => {
  assert.deepEqual(nextAction(saga, snapshot()), { kind: 'run', phase: 'invoke', step: 0, attempt: 1, resume: false })
})

test('a step left started by a crash runs again as the same attempt, unless its stored timeout fired', () => {
  const started = snapshot({ currentStep: 1, steps: [step(0, 'done'), step(1, 'started', { attempt: 2 })] })
  assert.deepEqual(nextAction(saga, started), { kind: 'run', phase: 'invoke', step: 1, attempt: 2, resume: true })
  const timedOut = { ...started, timers: [timer(timeoutTimerId('i', 'invoke', 'payment', 2), 'fired')] }
  assert.deepEqual(nextAction(saga, timedOut), { kind: 'timed-out', phase: 'invoke', step: 1, attempt: 2 })
  const firing = { ...started, timers: [timer(timeoutTimerId('i', 'invoke', 'payment', 2), 'firing')] }
  assert.equal(nextAction(saga, firing).kind, 'timed-out', 'a timer a crash left firing counts as fired')
})

test('a failed attempt waits for its retry timer, then runs the next attempt', () => {
  const waiting = snapshot({ steps: [step(0, 'waiting', { attempt: 1 })] })
  const id = retryTimerId('i', 'invoke', 'subscription', 2)
  assert.deepEqual(nextAction(saga, { ...waiting, timers: [timer(id, 'pending')] }), { kind: 'wait', timerId: id })
  assert.deepEqual(nextAction(saga, { ...waiting, timers: [timer(id, 'fired')] }), { kind: 'run', phase: 'invoke', step: 0, attempt: 2, resume: false })
  assert.deepEqual(nextAction(saga, { ...waiting, timers: [timer(id, 'cancelled')] }), { kind: 'run', phase: 'invoke', step: 0, attempt: 2, resume: false }, 'a cancelled delay does not strand the instance')
})

test('the last step done finishes the saga as completed; terminal instances do nothing', () => {
  assert.deepEqual(nextAction(saga, snapshot({ currentStep: 3 })), { kind: 'finish', status: 'completed' })
  for (const status of ['completed', 'compensated', 'failed-compensation'] as const) assert.deepEqual(nextAction(saga, snapshot({ status })), { kind: 'idle' })
})

test('compensations run in reverse order over the done steps, skipping steps without compensate', () => {
  const failedAtNotification = snapshot({ status: 'compensating', currentStep: 2, steps: [step(0, 'done'), step(1, 'done'), step(2, 'failed')] })
  assert.deepEqual(compensationPlan(saga, failedAtNotification), [1, 0])
  assert.deepEqual(nextAction(saga, failedAtNotification), { kind: 'run', phase: 'compensate', step: 1, attempt: 1, resume: false })
  const paymentUndone = { ...failedAtNotification, steps: [...failedAtNotification.steps, step(1, 'done', { phase: 'compensate' })] }
  assert.deepEqual(nextAction(saga, paymentUndone), { kind: 'run', phase: 'compensate', step: 0, attempt: 1, resume: false })
  const allUndone = { ...paymentUndone, steps: [...paymentUndone.steps, step(0, 'done', { phase: 'compensate' })] }
  assert.deepEqual(nextAction(saga, allUndone), { kind: 'finish', status: 'compensated' })
})

test('a failed step is compensated only when its outcome is uncertain', () => {
  const refused = snapshot({ status: 'compensating', currentStep: 1, steps: [step(0, 'done'), step(1, 'failed', { outcomeUncertain: false })] })
  assert.deepEqual(compensationPlan(saga, refused), [0])
  const timedOut = snapshot({ status: 'compensating', currentStep: 1, steps: [step(0, 'done'), step(1, 'failed', { outcomeUncertain: true })] })
  assert.deepEqual(compensationPlan(saga, timedOut), [1, 0])
})

test('a compensation left started by a crash runs again with the same key', () => {
  const s = snapshot({ status: 'compensating', currentStep: 1, steps: [step(0, 'done'), step(1, 'failed'), step(0, 'started', { phase: 'compensate' })] })
  assert.deepEqual(nextAction(saga, s), { kind: 'run', phase: 'compensate', step: 0, attempt: 1, resume: true })
})

test('only transient failures are retried, within the attempts; the rest give up', () => {
  const policy = retryPolicy({ attempts: 3, initialDelayMs: 100, maxDelayMs: 1_000, jitter: 'none' })
  assert.deepEqual(afterFailure(policy, 1, FailureKind.transient), { kind: 'retry', delayMs: 100, nextAttempt: 2 })
  assert.deepEqual(afterFailure(policy, 2, FailureKind.transient), { kind: 'retry', delayMs: 200, nextAttempt: 3 })
  assert.deepEqual(afterFailure(policy, 3, FailureKind.transient), { kind: 'give-up', outcomeUncertain: true })
  assert.deepEqual(afterFailure(policy, 1, FailureKind.expected), { kind: 'give-up', outcomeUncertain: false })
  assert.deepEqual(afterFailure(policy, 1, FailureKind.permanent), { kind: 'give-up', outcomeUncertain: false })
})

test('a definition is refused when names repeat, are empty, or the version is not a whole number', () => {
  assert.throws(() => defineSaga({ name: 's', version: 1, steps: [{ name: 'a', invoke: noop }, { name: 'a', invoke: noop }] }), /two steps are named "a"/)
  assert.throws(() => defineSaga({ name: 's', version: 0, steps: [{ name: 'a', invoke: noop }] }), /version must be/)
  assert.throws(() => defineSaga({ name: 's', version: 1, steps: [] }), /at least one step/)
  assert.throws(() => defineSaga({ name: '', version: 1, steps: [{ name: 'a', invoke: noop }] }), /name must be/)
  assert.equal(stepIdempotencyKey('order-7', 'payment', 'invoke'), 'saga:order-7:payment')
  assert.equal(stepIdempotencyKey('order-7', 'payment', 'compensate'), 'saga:order-7:payment:compensate')
})
