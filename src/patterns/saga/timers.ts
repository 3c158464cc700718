// Durable timers: rows in tideway_saga_timers with an id, a kind and a due time, fired by a loop
// in whichever process handles that kind (research frameworks.md finding 11: timers that can be
// cancelled and queried, not opaque delayed messages; §3.6: no stale timeout after completion).
//
// A timer fires at most once per claim and never after it was cancelled: firing first moves it
// pending -> firing in a transaction (cancel only takes a pending timer), then runs the kind's
// handler, then marks it fired. A process killed between the two finds it `firing` on restart
// and runs the handler again, so handlers must be idempotent (the deadline watcher sends its
// event with the timer id as idempotency key). Timers are re-armed from the store on start:
// nothing lives only in memory.
//
// The loop sleeps until the next due time it knows of, or `pollIntervalMs` at most, so a timer
// scheduled by another process (or another store handle) is seen within one interval; schedule()
// through this object wakes it at once.
import { systemClock, type Clock } from '../../clock.ts'
import { silentLogger, type Logger } from '../../logger.ts'
import type { Store, StoreTransaction } from '../../sdk/store.ts'
import type { TimerStatus } from './machine.ts'
import { SagaTables, type StoredTimer, type TimerSpec } from './saga-store.ts'

export type TimerHandler = (timer: StoredTimer) => Promise<void> | void

export interface SagaTimersOptions {
  readonly store: Store
  /** The longest the loop sleeps before looking for timers scheduled elsewhere. Default 500 ms. */
  readonly pollIntervalMs?: number
  /** Timers fired per round. Default 100. */
  readonly batchSize?: number
  readonly clock?: Clock
  readonly logger?: Logger
}

export class SagaTimers {
  readonly #tables: SagaTables
  readonly #store: Store
  readonly #handlers = new Map<string, TimerHandler>()
  readonly #pollIntervalMs: number
  readonly #batchSize: number
  readonly #clock: Clock
  readonly #logger: Logger
  #running: Promise<void> | null = null
  #stopping: AbortController | null = null
  #wake: (() => void) | null = null
  /** Set by a wake-up that came while a round was running: the next round starts without sleeping. */
  #woken = false

  constructor(options: SagaTimersOptions) {
    this.#store = options.store
    this.#tables = new SagaTables(options.store)
    this.#pollIntervalMs = options.pollIntervalMs ?? 500
    this.#batchSize = options.batchSize ?? 100
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? silentLogger
  }

  /** Handles timers of `kind` in this process (the loop fires only kinds with a handler). */
  on(kind: string, handler: TimerHandler): this {
    this.#handlers.set(kind, handler)
    this.wake()
    return this
  }

  /** Schedules a timer; one already stored with this id is left as it is. `tx`: inside the caller's transaction. */
  async schedule(timer: TimerSpec, tx?: StoreTransaction): Promise<boolean> {
    const created = tx
      ? await this.#tables.scheduleTimer(tx, timer, this.#clock.wallMs())
      : await this.#store.transaction((own) => this.#tables.scheduleTimer(own, timer, this.#clock.wallMs()))
    this.wake()
    return created
  }

  /** Makes the loop look again now: after scheduling in a transaction of your own, once it committed. */
  wake(): void {
    this.#woken = true
    this.#wake?.()
  }

  /** Cancels a pending timer: it will never fire. False when it was not pending. */
  async cancel(id: string, tx?: StoreTransaction): Promise<boolean> {
    const now = this.#clock.wallMs()
    return tx ? this.#tables.cancelTimer(tx, id, now) : this.#store.transaction((own) => this.#tables.cancelTimer(own, id, now))
  }

  /** Moves a pending timer's due time. False when it is not pending. */
  async reschedule(id: string, fireAtMs: number, tx?: StoreTransaction): Promise<boolean> {
    const moved = tx ? await this.#tables.rescheduleTimer(tx, id, fireAtMs) : await this.#store.transaction((own) => this.#tables.rescheduleTimer(own, id, fireAtMs))
    this.wake()
    return moved
  }

  get(id: string): Promise<StoredTimer | null> {
    return this.#store.transaction((tx) => this.#tables.timer(tx, id))
  }

  list(filter: { instanceId?: string; kind?: string; status?: TimerStatus } = {}): Promise<StoredTimer[]> {
    return this.#store.transaction((tx) => this.#tables.listTimers(tx, filter))
  }

  /** Starts firing due timers of the handled kinds, those left by earlier processes included. */
  start(): void {
    if (this.#running) return
    this.#stopping = new AbortController()
    this.#running = this.#loop(this.#stopping.signal)
  }

  async stop(): Promise<void> {
    this.#stopping?.abort()
    this.#wake?.()
    await this.#running
    this.#running = null
  }

  async #loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let sleepMs = this.#pollIntervalMs
      this.#woken = false
      try {
        const now = this.#clock.wallMs()
        const { due, nextAtMs } = await this.#store.transaction((tx) => this.#tables.dueTimers(tx, [...this.#handlers.keys()], now, this.#batchSize))
        for (const timer of due) {
          if (signal.aborted) return
          await this.#fire(timer)
        }
        if (due.length === this.#batchSize) continue
        if (nextAtMs !== null) sleepMs = Math.max(0, Math.min(sleepMs, nextAtMs - this.#clock.wallMs()))
      } catch (err) {
        if (signal.aborted) return
        this.#logger.warn('saga timer round failed; retrying', { err })
      }
      if (this.#woken || signal.aborted) continue
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => ((this.#wake = null), resolve()), sleepMs)
        this.#wake = () => (clearTimeout(timer), (this.#wake = null), resolve())
      })
    }
  }

  async #fire(timer: StoredTimer): Promise<void> {
    const handler = this.#handlers.get(timer.kind)
    if (!handler) return
    const claimed = await this.#store.transaction((tx) => this.#tables.claimTimer(tx, timer.id))
    if (!claimed) return // cancelled meanwhile
    try {
      await handler({ ...timer, status: 'firing' })
    } catch (err) {
      // Left `firing`: the next round (or the next process) runs the handler again.
      this.#logger.warn('saga timer handler failed; it will run again', { timer: timer.id, kind: timer.kind, err })
      return
    }
    await this.#store.transaction((tx) => this.#tables.timerFired(tx, timer.id, this.#clock.wallMs()))
  }
}
