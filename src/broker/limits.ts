// Broker-wide limits shared by every connection.

/**
 * Bytes of request frames received and not yet answered, across all connections (Kafka:
 * queued.max.request.bytes). Past the limit, connections stop reading until requests finish,
 * so memory stays bounded however many clients pipeline large requests at once.
 */
export class RequestBytesBudget {
  readonly limit: number
  #inUse = 0
  readonly #waiters = new Set<() => void>()

  constructor(limit: number) {
    this.limit = limit
  }

  get inUse(): number {
    return this.#inUse
  }

  get exhausted(): boolean {
    return this.#inUse >= this.limit
  }

  take(bytes: number): void {
    this.#inUse += bytes
  }

  release(bytes: number): void {
    this.#inUse -= bytes
    if (!this.exhausted) for (const wake of [...this.#waiters]) wake()
  }

  /** Calls `wake` once the budget has room again; returns a cancel function. */
  whenAvailable(wake: () => void): () => void {
    const once = () => {
      this.#waiters.delete(once)
      wake()
    }
    this.#waiters.add(once)
    return () => this.#waiters.delete(once)
  }
}

/**
 * At most `perSecond` warnings per second for client misbehaviour; the rest are counted and the
 * count is reported with the next warning that gets through, so a flood of bad connections
 * cannot flood the log.
 */
export class WarningLimiter {
  readonly perSecond: number
  readonly #now: () => number
  #windowStart = 0
  #inWindow = 0
  #suppressed = 0

  constructor(perSecond: number, now: () => number) {
    this.perSecond = perSecond
    this.#now = now
  }

  /** Returns undefined when the warning must be dropped, else how many were dropped before it. */
  admit(): { suppressed: number } | undefined {
    const now = this.#now()
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now
      this.#inWindow = 0
    }
    if (this.#inWindow >= this.perSecond) {
      this.#suppressed++
      return undefined
    }
    this.#inWindow++
    const suppressed = this.#suppressed
    this.#suppressed = 0
    return { suppressed }
  }
}
