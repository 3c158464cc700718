// The measuring loops the peers (JetStream, Redis Streams) share, so both are timed by the same
// code: each peer passes in the one call that sends a record, and counts what its consumers read.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Measured } from './types.ts'

/** A consumer that receives nothing for this long fails: no wait of the bench is unbounded. */
export const STALL_MS = 15_000

/**
 * How long an end-to-end send may wait for its acknowledgement. A system slower than the rate
 * queues the sends and acknowledges them late: that is the latency being measured, not a failure
 * (the consumer's tally still fails a run that stops making progress).
 */
export const END_TO_END_ACK_TIMEOUT_MS = 120_000

export function payload(recordBytes: number): Buffer {
  return Buffer.alloc(recordBytes, 'x')
}

/** A record whose first 8 bytes carry the time it is sent, for end-to-end latency in this process. */
export function stampedPayload(recordBytes: number): Buffer {
  if (recordBytes < 8) throw new Error(`end to end needs records of at least 8 bytes for the send time, got ${recordBytes}`)
  const record = payload(recordBytes)
  record.writeDoubleLE(performance.timeOrigin + performance.now(), 0)
  return record
}

/** Milliseconds since `stampedPayload` made `record`. */
export function ageMs(record: Uint8Array): number {
  const sentAt = Buffer.from(record.buffer, record.byteOffset, 8).readDoubleLE(0)
  return performance.timeOrigin + performance.now() - sentAt
}

/**
 * Sends for `seconds` from `lanes` loops, each awaiting its acknowledgement before sending again,
 * so at most `lanes` records are unacknowledged; one latency per record. A first send outside the
 * window warms up the connection.
 */
export async function produceFor(seconds: number, recordBytes: number, lanes: number, send: () => Promise<unknown>): Promise<Measured> {
  await send()
  const latenciesMs: number[] = []
  const start = performance.now()
  const end = start + seconds * 1000
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (performance.now() < end) {
        const sentAt = performance.now()
        await send()
        latenciesMs.push(performance.now() - sentAt)
      }
    }),
  )
  const elapsedMs = performance.now() - start
  return { records: latenciesMs.length, bytes: latenciesMs.length * recordBytes, elapsedMs, latenciesMs }
}

/** Writes exactly `records` records with up to `lanes` unacknowledged: the unmeasured fill of a consume scenario. */
export async function fill(records: number, lanes: number, send: () => Promise<unknown>): Promise<void> {
  let sent = 0
  await Promise.all(
    Array.from({ length: Math.min(lanes, records) }, async () => {
      while (sent < records) {
        sent++
        await send()
      }
    }),
  )
}

/**
 * Calls `send` ratePerSec × seconds times on an open-loop schedule: the i-th send is due at
 * start + i / rate, whatever happened to earlier ones, and sends that fall behind go out at once
 * rather than shifting the rest. `send` must not wait for an acknowledgement.
 */
export async function sendOnSchedule(ratePerSec: number, seconds: number, send: () => void): Promise<void> {
  const total = Math.round(ratePerSec * seconds)
  const start = performance.now()
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / ratePerSec - performance.now()
    if (wait > 0) await sleep(wait)
    send()
  }
}

/**
 * Counts records read by any number of consumers until `expected` have arrived. `settled`
 * resolves then, and rejects when a consumer reports a failure or nothing arrives for STALL_MS.
 */
export class Tally {
  readonly expected: number
  readonly settled: Promise<void>
  received = 0
  #open = true
  #resolve!: () => void
  #reject!: (err: unknown) => void
  readonly #watchdog: NodeJS.Timeout

  constructor(what: string, expected: number) {
    this.expected = expected
    this.settled = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // Whoever awaits `settled` sees the rejection; this keeps one nobody awaits yet from crashing the run.
    this.settled.catch(() => {})
    let seen = 0
    let lastProgress = performance.now()
    this.#watchdog = setInterval(() => {
      if (this.received !== seen) {
        seen = this.received
        lastProgress = performance.now()
      } else if (performance.now() - lastProgress > STALL_MS) {
        this.fail(new Error(`${what}: ${this.received} of ${expected} records read, then none for ${STALL_MS / 1000} s`))
      }
    }, 1_000)
    // A watchdog keeps nothing alive: a tally abandoned after an error must not hold the process.
    this.#watchdog.unref()
    if (expected === 0) this.add(0)
  }

  /** Still waiting for records: neither complete nor failed. */
  get open(): boolean {
    return this.#open
  }

  add(records = 1): void {
    this.received += records
    if (this.#open && this.received >= this.expected) {
      this.#settle()
      this.#resolve()
    }
  }

  fail(err: unknown): void {
    if (!this.#open) return
    this.#settle()
    this.#reject(err)
  }

  #settle(): void {
    this.#open = false
    clearInterval(this.#watchdog)
  }
}
