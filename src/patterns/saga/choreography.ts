// Choreographed sagas: no orchestrator, services react to each other's events. What the SDK adds:
//
//   - every event carries the saga's correlation id (the `saga-correlation-id` header) and its
//     trace context (traceparent), so one saga's events are one trace and can be found together:
//     `sagaEvent` builds such a message, `correlationIdOf` reads it back;
//   - a deadline watcher: a stored deadline per correlation id (a timer in tideway_saga_timers,
//     so it is cancellable, queryable, and fires after a restart too) that emits the saga's
//     failure event when the saga stalls (a service never answers). Arm it when the saga starts,
//     clear it when it completes, both optionally inside the service's own transaction;
//   - compensation handlers: an exactly-once consumer of failure events, so each service undoes
//     its part once per failed saga, in the same transaction as the undo.
//
// A failure event is JSON {saga, correlationId, reason, detail, at}, keyed by the correlation id,
// with idempotency key `failure:<saga>:<correlationId>`: the watcher that fires twice (killed
// between sending and marking the timer fired) sends a repeat that the compensation consumers'
// inbox drops.
import { silentLogger, type Logger } from '../../logger.ts'
import { createConsumer, type IncomingMessage, type TidewayConsumer } from '../../sdk/consumer.ts'
import { createProducer, type OutgoingMessage, type TidewayProducer } from '../../sdk/producer.ts'
import type { Store, StoreTransaction } from '../../sdk/store.ts'
import { childContext, formatTraceparent, parseTraceparent, type TraceContext } from '../../sdk/trace.ts'
import { systemClock, type Clock } from '../../clock.ts'
import { SagaHeader } from './commands.ts'
import type { Json } from './definition.ts'
import { migrateSagaTables, type StoredTimer } from './saga-store.ts'
import { SagaTimers } from './timers.ts'

export const DEADLINE_TIMER_KIND = 'saga-deadline'

/** An event of a choreographed saga: the correlation id and trace context ride in its headers. */
export function sagaEvent(correlationId: string, value: Json, options: { traceparent?: string; saga?: string; key?: string; idempotencyKey?: string } = {}): OutgoingMessage {
  return {
    key: options.key ?? correlationId,
    value: JSON.stringify(value),
    headers: { [SagaHeader.correlationId]: correlationId, ...(options.saga ? { [SagaHeader.saga]: options.saga } : {}) },
    traceparent: options.traceparent ?? formatTraceparent(childContext(null)),
    ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
  }
}

export function correlationIdOf(message: IncomingMessage<unknown>): string | null {
  const value = message.headers.get(SagaHeader.correlationId)
  return value && value.length > 0 ? value.toString() : null
}

export interface FailureEvent {
  readonly saga: string
  readonly correlationId: string
  /** `deadline` when the watcher emitted it; otherwise what the emitting service says. */
  readonly reason: string
  readonly detail: Json
  readonly at: number
}

export function failureIdempotencyKey(saga: string, correlationId: string): string {
  return `failure:${saga}:${correlationId}`
}

/** A failure event, as the watcher sends it and as a service that fails its part should. */
export function failureEvent(event: FailureEvent, traceparent?: string): OutgoingMessage {
  return sagaEvent(event.correlationId, event as unknown as Json, {
    saga: event.saga,
    idempotencyKey: failureIdempotencyKey(event.saga, event.correlationId),
    ...(traceparent ? { traceparent } : {}),
  })
}

export interface DeadlineWatcherOptions {
  readonly store: Store
  readonly bootstrap: string | readonly string[]
  readonly saga: string
  /** Where the failure event goes. */
  readonly failureTopic: string
  /** The timer loop's longest sleep. Default 500 ms. */
  readonly pollIntervalMs?: number
  readonly clock?: Clock
  readonly clientId?: string
  readonly logger?: Logger
}

export interface ArmedDeadline {
  readonly timerId: string
  readonly fireAtMs: number
}

export class DeadlineWatcher {
  readonly timers: SagaTimers
  readonly #options: DeadlineWatcherOptions
  readonly #clock: Clock
  #producer: TidewayProducer | null = null
  /** Failure events sent since start (a repeat after a crash counts again). */
  fired = 0

  constructor(options: DeadlineWatcherOptions) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.timers = new SagaTimers({
      store: options.store,
      clock: this.#clock,
      ...(options.pollIntervalMs ? { pollIntervalMs: options.pollIntervalMs } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    })
  }

  timerIdOf(correlationId: string): string {
    return `deadline:${this.#options.saga}:${correlationId}`
  }

  /**
   * Stores a deadline `withinMs` from now for the saga with this correlation id (a second arm
   * moves a pending one). `traceparent`: the saga's trace, which the failure event joins.
   */
  async arm(correlationId: string, withinMs: number, options: { traceparent?: string; tx?: StoreTransaction } = {}): Promise<ArmedDeadline> {
    const timerId = this.timerIdOf(correlationId)
    const fireAtMs = this.#clock.wallMs() + withinMs
    const spec = { id: timerId, kind: DEADLINE_TIMER_KIND, instanceId: correlationId, fireAtMs, payload: { saga: this.#options.saga, correlationId, traceparent: options.traceparent ?? null } }
    const created = await this.timers.schedule(spec, options.tx)
    if (!created) await this.timers.reschedule(timerId, fireAtMs, options.tx)
    return { timerId, fireAtMs }
  }

  /** The saga finished: its deadline never fires. False when it had none pending. */
  clear(correlationId: string, tx?: StoreTransaction): Promise<boolean> {
    return this.timers.cancel(this.timerIdOf(correlationId), tx)
  }

  deadline(correlationId: string): Promise<StoredTimer | null> {
    return this.timers.get(this.timerIdOf(correlationId))
  }

  /** Fires stored deadlines, those that fell due while no watcher ran included. */
  async start(): Promise<void> {
    await migrateSagaTables(this.#options.store)
    this.#producer = createProducer({ bootstrap: this.#options.bootstrap, delivery: 'exactly-once', clientId: this.#options.clientId ?? `tideway-saga-deadlines-${this.#options.saga}` })
    this.timers.on(DEADLINE_TIMER_KIND, (timer) => this.#fire(timer))
    this.timers.start()
  }

  async stop(): Promise<void> {
    await this.timers.stop()
    await this.#producer?.close()
  }

  async #fire(timer: StoredTimer): Promise<void> {
    const payload = timer.payload as { saga?: string; correlationId?: string; traceparent?: string | null } | null
    if (payload?.saga !== this.#options.saga || !payload.correlationId) return
    const trace = childContext(parseTraceparent(payload.traceparent ?? null))
    const event: FailureEvent = { saga: payload.saga, correlationId: payload.correlationId, reason: 'deadline', detail: { deadlineAt: timer.fireAtMs }, at: this.#clock.wallMs() }
    await this.#producer!.send(this.#options.failureTopic, failureEvent(event, formatTraceparent(trace)))
    this.fired++
  }
}

export function createDeadlineWatcher(options: DeadlineWatcherOptions): DeadlineWatcher {
  return new DeadlineWatcher(options)
}

export interface CompensationHandlerOptions {
  readonly bootstrap: string | readonly string[]
  readonly groupId: string
  readonly failureTopics: readonly string[]
  /** The service's database: the undo, the inbox row and the offset commit together. */
  readonly store: Store
  /** Undoes this service's part of the failed saga (a no-op when it had none). */
  readonly compensate: (event: FailureEvent, context: { tx: StoreTransaction; trace: TraceContext; traceparent: string }) => Promise<void>
  readonly sessionTimeoutMs?: number
  readonly clientId?: string
  readonly logger?: Logger
}

/** Starts an exactly-once consumer of failure events that runs `compensate` once per failed saga. */
export async function startCompensationHandler(options: CompensationHandlerOptions): Promise<TidewayConsumer<FailureEvent>> {
  const consumer = createConsumer<FailureEvent>({
    bootstrap: options.bootstrap,
    groupId: options.groupId,
    topics: options.failureTopics,
    delivery: 'exactly-once',
    store: options.store,
    logger: options.logger ?? silentLogger,
    ...(options.clientId ? { clientId: options.clientId } : {}),
    ...(options.sessionTimeoutMs ? { sessionTimeoutMs: options.sessionTimeoutMs } : {}),
    decode: (value) => JSON.parse(value?.toString() ?? 'null') as FailureEvent,
    handler: (message, ctx) => options.compensate(message.body, { tx: ctx.tx!, trace: ctx.trace, traceparent: ctx.traceparent }),
  })
  await consumer.start()
  return consumer
}
