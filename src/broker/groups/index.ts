// Wiring for the broker: the group coordinator with its offsets in
// `<dataDir>/__consumer_offsets/` and real timers driving its `tick()`. The coordinator itself
// stays pure (coordinator.ts); this is the one place that owns timers for it.

import { join } from 'node:path'
import type { Clock } from '../../clock.ts'
import type { Logger } from '../../logger.ts'
import type { FileIO } from '../../storage/file-io.ts'
import type { BrokerConfig } from '../config.ts'
import { GroupCoordinator, type WakeScheduler } from './coordinator.ts'
import { FileOffsetStore } from './offset-store.ts'

export { GroupCoordinator } from './coordinator.ts'

/** Catches any deadline a missed wake-up would leave behind; cheap (one scan of the groups). */
const SAFETY_TICK_MS = 1000

/**
 * One timer armed at the earliest requested deadline, plus a slow safety tick. Both are
 * unref'd: they never keep the process alive on their own.
 */
export class DeadlineTimer implements WakeScheduler {
  readonly #clock: Clock
  readonly #onDue: () => void
  readonly #safety: NodeJS.Timeout
  #timer: NodeJS.Timeout | undefined
  #armedAt = Number.POSITIVE_INFINITY
  #stopped = false

  constructor(clock: Clock, onDue: () => void, safetyTickMs = SAFETY_TICK_MS) {
    this.#clock = clock
    this.#onDue = onDue
    this.#safety = setInterval(onDue, safetyTickMs)
    this.#safety.unref()
  }

  wakeAt(monotonicMs: number): void {
    if (this.#stopped || monotonicMs >= this.#armedAt) return
    if (this.#timer) clearTimeout(this.#timer)
    this.#armedAt = monotonicMs
    // At least 1 ms: a deadline that is somehow not handled when due cannot spin the loop.
    const delay = Math.max(1, Math.ceil(monotonicMs - this.#clock.monotonicMs()))
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#armedAt = Number.POSITIVE_INFINITY
      this.#onDue()
    }, delay)
    this.#timer.unref()
  }

  stop(): void {
    this.#stopped = true
    clearInterval(this.#safety)
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

export interface OpenGroupCoordinatorOptions {
  readonly config: BrokerConfig
  readonly clock: Clock
  readonly logger: Logger
  /** The broker's file layer (tests swap in a faulty or simulated disk). */
  readonly io?: FileIO
}

/** Opens the offset log, loads every committed offset and starts the timers. */
export async function openGroupCoordinator(options: OpenGroupCoordinatorOptions): Promise<GroupCoordinator> {
  const { config, clock, logger, io } = options
  const store = new FileOffsetStore({
    dir: join(config.dataDir, '__consumer_offsets'),
    logger: logger.child({ component: 'offsets' }),
    ...(io ? { io } : {}),
  })
  let coordinator: GroupCoordinator | undefined
  const timer = new DeadlineTimer(clock, () => coordinator?.tick())
  coordinator = new GroupCoordinator({
    clock,
    store,
    logger: logger.child({ component: 'groups' }),
    initialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
    minSessionTimeoutMs: config.groupMinSessionTimeoutMs,
    maxSessionTimeoutMs: config.groupMaxSessionTimeoutMs,
    maxGroupSize: config.groupMaxSize,
    offsetsRetentionMs: config.groupOffsetsRetentionMs,
    offsetsRetentionCheckIntervalMs: config.groupOffsetsRetentionCheckIntervalMs,
    scheduler: timer,
  })
  try {
    await coordinator.load()
  } catch (err) {
    await coordinator.close().catch(() => {})
    throw err
  }
  return coordinator
}
