// Keeping the SDK's tables small (research frameworks.md finding 6: idempotency keys need a
// retention window and a cleanup story). A schedule deletes, every intervalMs, the inbox keys,
// published outbox rows and completed request answers older than their retention. The
// retentions bound how long a repeat is still recognised: an inbox key must outlive any resend of
// its message, so keep it at least as long as the longest a producer may retry or a relay may be
// down (the offsets check needs no key: redelivered offsets are skipped whatever their age).
import { silentLogger, type Logger } from '../logger.ts'
import type { CleanupAges, CleanupCounts, Store } from './store.ts'

export interface CleanupSchedule extends CleanupAges {
  /** How often to clean (default 1 hour). */
  readonly intervalMs?: number
  readonly logger?: Logger
  /** Called after each run (for tests and metrics). */
  readonly onCleaned?: (counts: CleanupCounts) => void
}

export const defaultRetention: Required<CleanupAges> = {
  inboxMs: 7 * 86_400_000,
  publishedOutboxMs: 86_400_000,
  requestsMs: 7 * 86_400_000,
}

/** Starts the schedule (a first run at once); returns a function that stops it and waits for a run under way. */
export function scheduleCleanup(store: Store, schedule: CleanupSchedule = {}): () => Promise<void> {
  const ages: CleanupAges = {
    inboxMs: schedule.inboxMs ?? defaultRetention.inboxMs,
    publishedOutboxMs: schedule.publishedOutboxMs ?? defaultRetention.publishedOutboxMs,
    requestsMs: schedule.requestsMs ?? defaultRetention.requestsMs,
  }
  const logger = schedule.logger ?? silentLogger
  let running: Promise<void> = Promise.resolve()
  const runOnce = () => {
    running = running.then(async () => {
      try {
        const counts = await store.cleanup(ages, Date.now())
        if (counts.inbox + counts.outbox + counts.requests > 0) logger.info('store cleaned', { ...counts })
        schedule.onCleaned?.(counts)
      } catch (err) {
        logger.warn('store cleanup failed; trying again at the next interval', { err })
      }
    })
  }
  runOnce()
  const timer = setInterval(runOnce, schedule.intervalMs ?? 3_600_000)
  timer.unref()
  return async () => {
    clearInterval(timer)
    await running
  }
}
