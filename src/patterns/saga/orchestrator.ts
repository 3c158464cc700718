// The saga orchestrator: drives stored instances through their steps with the pure state machine
// (machine.ts) and records every move in the store (saga-store.ts) before and after it happens:
//
//   1. "step N started" (attempt, idempotency key) and its timeout timer, in one transaction
//   2. invoke(ctx), racing the timeout; the key is derived from instance id + step name only
//   3. "step N done (result)" and the timer cancelled, in one transaction; or the failure, with
//      a retry timer or the switch to compensating
//
// A process killed anywhere resumes each instance from what was stored: before 1 the step starts
// afresh; between 1 and 3 it is invoked again with the same idempotency key, so the service (its
// inbox, handleIdempotently, or a unique key) applies it once; after 3 it is never invoked
// again. The timeout is a stored timer, so time spent crashed counts against the attempt.
// Compensations run in reverse order and retry (their own policy) until they succeed or the
// instance lands in failed-compensation, which `tideway sagas list` shows.
//
// Several orchestrators may share a store (replicas of one service on PostgreSQL): an instance
// is driven by the one holding its lease (tideway_saga_leases), taken when a drive begins,
// renewed by a heartbeat every third of `leaseMs` and given up when the drive ends. Every write
// for the instance renews the lease first in the same transaction (the fence), so an
// orchestrator that stalled past its lease (a GC pause, SIGSTOP, a partition from the
// database) and was taken over records nothing more; the new holder invokes the started step
// again, with the same idempotency key. A lease is taken over when it expires, or at once when
// its holder is known dead: an orchestrator of this process that stopped or was dropped, or
// one of a process on this host that no longer exists (the default owner id is
// host:pid:random; set `owner` yourself and only expiry frees it).
//
// Every boundary is published on the `tideway:saga` diagnostics channel, synchronously and at no
// cost unless someone subscribes (the crash tests kill the process from a subscriber).
import { randomBytes } from 'node:crypto'
import { channel } from 'node:diagnostics_channel'
import { hostname } from 'node:os'
import { systemClock, type Clock } from '../../clock.ts'
import { silentLogger, type Logger } from '../../logger.ts'
import { classifyFailure, FailureKind, messageOf, TransientFailure } from '../../sdk/failures.ts'
import type { Store, StoreTransaction } from '../../sdk/store.ts'
import { childContext, formatTraceparent, parseTraceparent } from '../../sdk/trace.ts'
import { stepCorrelationId, stepIdempotencyKey, type CompensationContext, type Json, type Saga, type StepContext, type StepPhase } from './definition.ts'
import { afterFailure, nextAction, recordOf, retryTimerId, SagaStatus, StepStatus, TERMINAL_STATUSES, timeoutTimerId, type InstanceSnapshot, type NextAction } from './machine.ts'
import { migrateSagaTables, SagaTables, type StoredInstance } from './saga-store.ts'
import { SagaTimers } from './timers.ts'

export const SagaTimerKind = { stepTimeout: 'saga-step-timeout', retry: 'saga-retry' } as const

export type SagaBoundary =
  | 'step-recording'
  | 'step-recorded'
  | 'command-sent'
  | 'step-invoked'
  | 'step-done'
  | 'step-failed'
  | 'instance-finished'

export interface SagaBoundaryEvent {
  readonly boundary: SagaBoundary
  readonly instanceId: string
  readonly saga: string
  readonly step: string | null
  readonly phase: StepPhase | null
  readonly attempt: number | null
  readonly status?: string
}

/** Published at every boundary of a step's life, before the orchestrator goes on. */
export const sagaChannel = channel('tideway:saga')

export function publishBoundary(event: SagaBoundaryEvent): void {
  if (sagaChannel.hasSubscribers) sagaChannel.publish(event)
}

/** The failure recorded when a step's stored timeout fires. */
export class StepTimeout extends TransientFailure {
  constructor(step: string, timeoutMs: number) {
    super(`step ${step} did not finish within ${timeoutMs} ms`)
  }
}

/** Thrown inside a write for an instance whose lease this orchestrator no longer holds. */
export class SagaLeaseLost extends Error {
  constructor(instanceId: string, owner: string) {
    super(`orchestrator ${owner} no longer holds the lease on saga instance ${instanceId}: another orchestrator drives it`)
    this.name = 'SagaLeaseLost'
  }
}

export interface SagaOrchestratorOptions {
  readonly store: Store
  /** This orchestrator's id in the leases table. Default host:pid:random, which lets a restart on the same host take over a dead process's leases at once. */
  readonly owner?: string
  /** How long an instance's lease lasts without renewal: how soon another orchestrator takes over a stalled or partitioned one. Default 15000 ms. */
  readonly leaseMs?: number
  /** Every version that may still have live instances; new instances use each name's highest. */
  readonly sagas: readonly Saga<never>[]
  /** How often instances nobody is driving are looked for (created in another transaction or process). Default 2000 ms. */
  readonly sweepIntervalMs?: number
  /** The timer loop's longest sleep (see timers.ts). Default 500 ms. */
  readonly timerPollIntervalMs?: number
  /** Steps (and compensations) running at once, across instances. Default 64. */
  readonly maxConcurrentSteps?: number
  readonly clock?: Clock
  readonly logger?: Logger
  /** The retry backoff's jitter source (tests). */
  readonly random?: () => number
}

export interface StartSagaOptions {
  /** A version other than the highest registered one. */
  readonly version?: number
  /** The caller's trace, so the saga's steps join it. */
  readonly traceparent?: string
  /** Creates the instance inside the caller's transaction; it is picked up after commit by the next sweep. */
  readonly tx?: StoreTransaction
}

export class SagaOrchestrator {
  readonly timers: SagaTimers
  readonly #store: Store
  readonly #tables: SagaTables
  readonly #sagas = new Map<string, Saga<never>>()
  readonly #latest = new Map<string, Saga<never>>()
  readonly #options: SagaOrchestratorOptions
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #driving = new Map<string, Promise<void>>()
  readonly #again = new Set<string>()
  /** In-flight attempts by their timeout timer id: the timer aborts them. */
  readonly #inflight = new Map<string, { controller: AbortController; instanceId: string }>()
  readonly #slots: Semaphore
  readonly owner: string
  readonly #leaseMs: number
  #stopping = new AbortController()
  #sweeper: NodeJS.Timeout | null = null
  #heartbeat: NodeJS.Timeout | null = null
  #started = false

  constructor(options: SagaOrchestratorOptions) {
    this.#options = options
    this.#store = options.store
    this.#tables = new SagaTables(options.store)
    this.#clock = options.clock ?? systemClock
    this.#logger = (options.logger ?? silentLogger).child({ component: 'saga-orchestrator' })
    this.#slots = new Semaphore(options.maxConcurrentSteps ?? 64)
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
    this.#leaseMs = options.leaseMs ?? 15_000
    if (!Number.isSafeInteger(this.#leaseMs) || this.#leaseMs < 100) throw new RangeError(`leaseMs must be a whole number of milliseconds >= 100, got ${this.#leaseMs}`)
    for (const saga of options.sagas) {
      const key = `${saga.name}@${saga.version}`
      if (this.#sagas.has(key)) throw new TypeError(`saga ${key} is registered twice`)
      this.#sagas.set(key, saga)
      if ((this.#latest.get(saga.name)?.version ?? 0) < saga.version) this.#latest.set(saga.name, saga)
    }
    this.timers = new SagaTimers({
      store: options.store,
      clock: this.#clock,
      logger: this.#logger,
      ...(options.timerPollIntervalMs ? { pollIntervalMs: options.timerPollIntervalMs } : {}),
    })
    this.timers.on(SagaTimerKind.stepTimeout, (timer) => {
      const inflight = this.#inflight.get(timer.id)?.controller
      const payload = timer.payload as { step?: string; timeoutMs?: number } | null
      if (inflight) inflight.abort(new StepTimeout(payload?.step ?? '?', payload?.timeoutMs ?? 0))
      else if (timer.instanceId) this.#kick(timer.instanceId)
    })
    this.timers.on(SagaTimerKind.retry, (timer) => {
      // The machine reads a firing retry timer as the delay being over.
      if (timer.instanceId) this.#kick(timer.instanceId)
    })
  }

  /** Creates the tables, re-arms the stored timers and resumes every unfinished instance. */
  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    this.#stopping = new AbortController()
    await migrateSagaTables(this.#store)
    liveOwners.add(this.owner)
    this.#heartbeat = setInterval(() => void this.#renewLeases().catch((err: unknown) => this.#logger.warn('renewing saga leases failed', { err })), Math.max(50, Math.floor(this.#leaseMs / 3)))
    this.#heartbeat.unref()
    this.timers.start()
    await this.#sweep()
    this.#sweeper = setInterval(() => void this.#sweep().catch((err: unknown) => this.#logger.warn('saga sweep failed', { err })), this.#options.sweepIntervalMs ?? 2_000)
    this.#sweeper.unref()
  }

  /**
   * Starts an instance of `sagaName` with this id, unless one exists (starting is idempotent by
   * id: a caller that retries after a crash starts nothing twice). Resolves once it is stored.
   */
  async startSaga(sagaName: string, instanceId: string, input: Json, options: StartSagaOptions = {}): Promise<{ created: boolean }> {
    const saga = options.version === undefined ? this.#latest.get(sagaName) : this.#sagas.get(`${sagaName}@${options.version}`)
    if (!saga) throw new TypeError(`no saga ${sagaName}${options.version === undefined ? '' : `@${options.version}`} is registered`)
    if (!instanceId) throw new TypeError('a saga instance needs a non-empty id')
    const traceparent = options.traceparent ?? formatTraceparent(childContext(null))
    const instance = { instanceId, sagaName: saga.name, sagaVersion: saga.version, input, traceparent }
    if (options.tx) return { created: await this.#tables.createInstance(options.tx, instance, this.#clock.wallMs()) }
    const created = await this.#store.transaction((tx) => this.#tables.createInstance(tx, instance, this.#clock.wallMs()))
    if (this.#started) this.#kick(instanceId)
    return { created }
  }

  /** The instance as stored: steps, attempts, timers, last error. */
  instance(instanceId: string): Promise<StoredInstance | null> {
    return this.#store.transaction((tx) => this.#tables.snapshot(tx, instanceId))
  }

  /** Resolves with the instance once it is completed, compensated or failed-compensation. */
  async settled(instanceId: string, { timeoutMs = 30_000, pollMs = 25 } = {}): Promise<StoredInstance> {
    const deadline = this.#clock.monotonicMs() + timeoutMs
    for (;;) {
      const snapshot = await this.instance(instanceId)
      if (snapshot && TERMINAL_STATUSES.includes(snapshot.status)) return snapshot
      if (this.#clock.monotonicMs() > deadline) throw new Error(`saga instance ${instanceId} did not settle within ${timeoutMs} ms (status ${snapshot?.status ?? 'missing'})`)
      await new Promise((resolve) => setTimeout(resolve, pollMs))
    }
  }

  /**
   * An operator's second chance for an instance in failed-compensation (after fixing what made
   * the compensation fail): the failed compensation starts again at attempt 1.
   */
  async retryCompensation(instanceId: string): Promise<boolean> {
    const resumed = await this.#store.transaction(async (tx) => {
      const snapshot = await this.#tables.snapshot(tx, instanceId)
      if (snapshot?.status !== SagaStatus.failedCompensation) return false
      await this.#tables.query(tx, `DELETE FROM tideway_saga_steps WHERE instance_id = ? AND phase = 'compensate' AND status = 'failed'`, [instanceId])
      await this.#tables.setStatus(tx, instanceId, SagaStatus.compensating, this.#clock.wallMs())
      return true
    })
    if (resumed) this.#kick(instanceId)
    return resumed
  }

  /**
   * Stops driving: in-flight steps are abandoned without recording anything (they stay
   * `started`, and the next start invokes them again with the same key), timers stop firing.
   */
  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#stopping.abort(new Error('the saga orchestrator is stopping'))
    if (this.#sweeper) clearInterval(this.#sweeper)
    for (const { controller } of this.#inflight.values()) controller.abort(this.#stopping.signal.reason)
    await this.timers.stop()
    await Promise.allSettled([...this.#driving.values()])
    if (this.#heartbeat) clearInterval(this.#heartbeat)
    liveOwners.delete(this.owner)
    // Hands the instances over at once rather than when the leases expire.
    await this.#store.transaction((tx) => this.#tables.releaseLeases(tx, this.owner)).catch((err: unknown) => this.#logger.warn('releasing saga leases failed; they expire', { err }))
  }

  /** The heartbeat: renews this orchestrator's leases; an in-flight step whose lease was lost is abandoned. */
  async #renewLeases(): Promise<void> {
    if (this.#driving.size === 0) return
    const renewed = new Set(await this.#store.transaction((tx) => this.#tables.renewLeasesOf(tx, this.owner, this.#leaseUntil())))
    for (const { controller, instanceId } of this.#inflight.values()) {
      if (!renewed.has(instanceId)) controller.abort(new SagaLeaseLost(instanceId, this.owner))
    }
  }

  #leaseUntil(): number {
    return Math.round(this.#clock.wallMs()) + this.#leaseMs
  }

  /** Whether a lease holder is known dead: stopped in this process, or its process on this host is gone. */
  #holderIsDead(holder: string): boolean {
    const [host, pidText] = holder.split(':')
    const pid = Number(pidText)
    if (host !== hostname() || !Number.isSafeInteger(pid) || pid <= 0) return false
    if (pid === process.pid) return !liveOwners.has(holder)
    try {
      process.kill(pid, 0)
      return false
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH'
    }
  }

  /** One transaction of writes for an instance, fenced by its lease (which it renews). */
  #fenced<T>(instanceId: string, work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    return this.#store.transaction(async (tx) => {
      if (!(await this.#tables.renewLease(tx, instanceId, this.owner, this.#leaseUntil()))) throw new SagaLeaseLost(instanceId, this.owner)
      return work(tx)
    })
  }

  async #sweep(): Promise<void> {
    const ids = await this.#store.transaction((tx) => this.#tables.activeInstanceIds(tx))
    for (const id of ids) if (!this.#driving.has(id)) this.#kick(id)
  }

  /** Drives the instance now, or once more after the drive under way. */
  #kick(instanceId: string): void {
    if (this.#stopping.signal.aborted) return
    if (this.#driving.has(instanceId)) {
      this.#again.add(instanceId)
      return
    }
    const drive = (async () => {
      try {
        do {
          this.#again.delete(instanceId)
          await this.#drive(instanceId)
        } while (this.#again.has(instanceId) && !this.#stopping.signal.aborted)
      } catch (err) {
        if (err instanceof SagaLeaseLost) this.#logger.warn('saga lease lost: another orchestrator took the instance over; stopped driving it', { instanceId, owner: this.owner })
        else if (!this.#stopping.signal.aborted) this.#logger.error('driving a saga instance failed; the next sweep tries again', { instanceId, err })
      } finally {
        this.#driving.delete(instanceId)
      }
    })()
    this.#driving.set(instanceId, drive)
  }

  /** Runs the instance, holding its lease, until it waits for a timer or ends. */
  async #drive(instanceId: string): Promise<void> {
    const now = Math.round(this.#clock.wallMs())
    const claim = { instanceId, owner: this.owner, nowMs: now, expiresAtMs: now + this.#leaseMs, canTakeOver: (holder: string) => this.#holderIsDead(holder) }
    if (!(await this.#store.transaction((tx) => this.#tables.claimLease(tx, claim)))) return // another orchestrator drives it
    try {
      await this.#driveLeased(instanceId)
    } finally {
      if (!this.#stopping.signal.aborted) await this.#store.transaction((tx) => this.#tables.releaseLeases(tx, this.owner, instanceId))
    }
  }

  async #driveLeased(instanceId: string): Promise<void> {
    while (!this.#stopping.signal.aborted) {
      const snapshot = await this.instance(instanceId)
      if (!snapshot) return
      const saga = this.#sagas.get(`${snapshot.sagaName}@${snapshot.sagaVersion}`)
      if (!saga) {
        this.#logger.warn('no definition registered for a stored saga instance; left for an orchestrator that has it', { instanceId, saga: snapshot.sagaName, version: snapshot.sagaVersion })
        return
      }
      const action = nextAction(saga, snapshot)
      switch (action.kind) {
        case 'idle':
        case 'wait':
          return
        case 'finish':
          await this.#fenced(instanceId, async (tx) => {
            const now = this.#clock.wallMs()
            await this.#tables.setStatus(tx, instanceId, action.status, now)
            // No stale timer may outlive its saga (MassTransit issue 525).
            await this.#tables.cancelInstanceTimers(tx, instanceId, now)
          })
          publishBoundary({ boundary: 'instance-finished', instanceId, saga: saga.name, step: null, phase: null, attempt: null, status: action.status })
          this.#logger.info('saga instance finished', { instanceId, saga: saga.name, status: action.status })
          return
        case 'timed-out': {
          const step = saga.steps[action.step]!
          await this.#recordFailure(saga, snapshot, action, new StepTimeout(step.name, step.timeoutMs))
          break
        }
        case 'run':
          await this.#slots.run(() => this.#run(saga, snapshot, action))
          break
      }
    }
  }

  async #run(saga: Saga<never>, snapshot: InstanceSnapshot, action: Extract<NextAction, { kind: 'run' }>): Promise<void> {
    const { instanceId } = snapshot
    const step = saga.steps[action.step]!
    const { phase, attempt } = action
    const boundary = (name: SagaBoundary) => publishBoundary({ boundary: name, instanceId, saga: saga.name, step: step.name, phase, attempt })
    const timerId = timeoutTimerId(instanceId, phase, step.name, attempt)
    const idempotencyKey = stepIdempotencyKey(instanceId, step.name, phase)
    boundary('step-recording')
    const timeoutAtMs = await this.#fenced(instanceId, async (tx) => {
      const now = this.#clock.wallMs()
      await this.#tables.stepStarted(tx, { instanceId, phase, index: action.step, name: step.name, attempt, idempotencyKey }, now)
      // A resumed attempt keeps the timer stored when it first started (scheduling is idempotent).
      await this.#tables.scheduleTimer(tx, { id: timerId, kind: SagaTimerKind.stepTimeout, instanceId, fireAtMs: now + step.timeoutMs, payload: { step: step.name, phase, attempt, timeoutMs: step.timeoutMs } }, now)
      return (await this.#tables.timer(tx, timerId))?.fireAtMs ?? now + step.timeoutMs
    })
    boundary('step-recorded')
    this.timers.wake()

    const controller = new AbortController()
    this.#inflight.set(timerId, { controller, instanceId })
    // The stored timer normally aborts the attempt (through the timer loop of this process), but
    // another orchestrator's loop may claim it: then this backstop, a little later, does.
    const backstopMs = Math.max(0, timeoutAtMs - this.#clock.wallMs()) + 2 * (this.#options.timerPollIntervalMs ?? 500) + 250
    const timeout = setTimeout(() => controller.abort(new StepTimeout(step.name, step.timeoutMs)), backstopMs)
    const trace = childContext(parseTraceparent(snapshot.traceparent))
    const results: Record<string, Json> = {}
    for (const record of snapshot.steps) if (record.phase === 'invoke' && record.status === StepStatus.done) results[record.name] = record.result
    const base: StepContext<never> = {
      instanceId,
      saga: { name: saga.name, version: saga.version },
      step: step.name,
      attempt,
      idempotencyKey,
      correlationId: stepCorrelationId(instanceId, step.name, phase),
      input: snapshot.input as never,
      results,
      signal: controller.signal,
      deadlineMs: timeoutAtMs,
      trace,
      traceparent: formatTraceparent(trace),
    }
    let outcome: { ok: true; result: Json } | { ok: false; error: unknown }
    try {
      const work =
        phase === 'invoke'
          ? step.invoke(base)
          : step.compensate!({ ...base, result: recordOf(snapshot, 'invoke', action.step)?.result ?? null, failure: { step: snapshot.failedStep ?? '', error: snapshot.lastError ?? '' } } satisfies CompensationContext<never>).then(() => null)
      outcome = { ok: true, result: (await untilAborted(work, controller.signal)) ?? null }
    } catch (error) {
      outcome = { ok: false, error }
    } finally {
      clearTimeout(timeout)
      this.#inflight.delete(timerId)
    }
    // Stopping: record nothing; the step stays started and is invoked again on the next start.
    if (this.#stopping.signal.aborted) return
    boundary('step-invoked')
    if (!outcome.ok && !(phase === 'compensate' && classifyFailure(outcome.error) === FailureKind.expected)) {
      await this.#recordFailure(saga, snapshot, action, outcome.error)
      return
    }
    // A compensation refused as an expected failure ("nothing to refund") has done its job.
    const result = outcome.ok ? outcome.result : null
    await this.#fenced(instanceId, async (tx) => {
      const now = this.#clock.wallMs()
      await this.#tables.stepDone(tx, { instanceId, phase, index: action.step, result }, now)
      await this.#tables.cancelTimer(tx, timerId, now)
    })
    boundary('step-done')
  }

  async #recordFailure(saga: Saga<never>, snapshot: InstanceSnapshot, action: { phase: StepPhase; step: number; attempt: number }, error: unknown): Promise<void> {
    const { instanceId } = snapshot
    const step = saga.steps[action.step]!
    const { phase, attempt } = action
    const kind = classifyFailure(error)
    const verdict = afterFailure(phase === 'invoke' ? step.retry : step.compensationRetry, attempt, kind, this.#options.random)
    if (error instanceof SagaLeaseLost) throw error // the heartbeat abandoned the attempt: nothing to record
    const message = messageOf(error)
    await this.#fenced(instanceId, async (tx) => {
      const now = this.#clock.wallMs()
      await this.#tables.cancelTimer(tx, timeoutTimerId(instanceId, phase, step.name, attempt), now)
      if (verdict.kind === 'retry') {
        await this.#tables.stepFailed(tx, { instanceId, phase, index: action.step, status: StepStatus.waiting, error: message, outcomeUncertain: true }, now)
        await this.#tables.scheduleTimer(tx, { id: retryTimerId(instanceId, phase, step.name, verdict.nextAttempt), kind: SagaTimerKind.retry, instanceId, fireAtMs: now + verdict.delayMs, payload: { step: step.name, phase, attempt: verdict.nextAttempt } }, now)
        return
      }
      await this.#tables.stepFailed(tx, { instanceId, phase, index: action.step, status: StepStatus.failed, error: message, outcomeUncertain: verdict.outcomeUncertain }, now)
      if (phase === 'invoke') await this.#tables.setStatus(tx, instanceId, SagaStatus.compensating, now, { step: step.name, error: message })
      else {
        await this.#tables.setStatus(tx, instanceId, SagaStatus.failedCompensation, now, { step: step.name, error: `compensation failed: ${message}` })
        await this.#tables.cancelInstanceTimers(tx, instanceId, now)
      }
    })
    publishBoundary({ boundary: 'step-failed', instanceId, saga: saga.name, step: step.name, phase, attempt, status: verdict.kind })
    this.#logger.warn(verdict.kind === 'retry' ? 'saga step failed; retrying' : 'saga step failed', { instanceId, saga: saga.name, step: step.name, phase, attempt, err: message })
    if (verdict.kind === 'retry') this.timers.wake()
  }
}

/** Owner ids of the orchestrators started and not stopped in this process. */
const liveOwners = new Set<string>()

/** Resolves or rejects with `work`, or rejects with the signal's reason once it aborts. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(
      (value) => (signal.removeEventListener('abort', onAbort), resolve(value)),
      (err: unknown) => (signal.removeEventListener('abort', onAbort), reject(err)),
    )
  })
}

/** At most `limit` tasks at once; the rest wait in order. */
class Semaphore {
  readonly #limit: number
  #active = 0
  readonly #waiting: (() => void)[] = []

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`maxConcurrentSteps must be a positive whole number, got ${limit}`)
    this.#limit = limit
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    this.#active++
    try {
      return await task()
    } finally {
      this.#active--
      this.#waiting.shift()?.()
    }
  }
}
