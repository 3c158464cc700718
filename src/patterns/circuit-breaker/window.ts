// The sliding windows a closed breaker judges the callee by: the last N outcomes (count), or the
// outcomes of the last T ms in B buckets (time). Pure: time comes in as `now` (ms on any
// monotonic timeline). The Redis scripts (redis-scripts.ts) keep the same two windows with the
// same arithmetic, so a breaker behaves alike on local and shared state.
//
// A time window of T ms in B buckets covers the current bucket and the B-1 before it: bucket
// `floor(now / (T / B))`. An outcome therefore leaves the window between T - T/B and T ms after
// it was recorded; more buckets make that edge sharper and cost more per outcome.

export type WindowSpec =
  | { readonly kind: 'count'; readonly size: number }
  | { readonly kind: 'time'; readonly durationMs: number; readonly buckets: number }

export interface WindowCounts {
  readonly calls: number
  readonly failures: number
}

export interface OutcomeWindow {
  add(now: number, failed: boolean): void
  counts(now: number): WindowCounts
  clear(): void
}

/** Bounds that keep one Redis script run short (a count window is one hash field per slot). */
export const MAX_COUNT_WINDOW = 1_000
export const MAX_BUCKETS = 100

export function bucketMsOf(spec: Extract<WindowSpec, { kind: 'time' }>): number {
  return spec.durationMs / spec.buckets
}

/** Failures over calls, 0 for an empty window. */
export function failureRateOf(counts: WindowCounts): number {
  return counts.calls === 0 ? 0 : counts.failures / counts.calls
}

/**
 * Whether a closed breaker opens on these counts. Written as `failures >= threshold * calls` on
 * purpose: the Lua script computes exactly this product, so both agree on the boundary.
 */
export function exceedsThreshold(counts: WindowCounts, minimumCalls: number, threshold: number): boolean {
  return counts.calls >= minimumCalls && counts.failures >= threshold * counts.calls
}

export function createWindow(spec: WindowSpec): OutcomeWindow {
  return spec.kind === 'count' ? new CountWindow(spec.size) : new TimeWindow(bucketMsOf(spec), spec.buckets)
}

const EMPTY = 0
const SUCCESS = 1
const FAILURE = 2

/** A ring of the last `size` outcomes, with running totals so each add is O(1). */
class CountWindow implements OutcomeWindow {
  readonly #slots: Uint8Array
  #next = 0
  #calls = 0
  #failures = 0

  constructor(size: number) {
    this.#slots = new Uint8Array(size)
  }

  add(_now: number, failed: boolean): void {
    const evicted = this.#slots[this.#next]!
    if (evicted !== EMPTY) this.#calls--
    if (evicted === FAILURE) this.#failures--
    this.#slots[this.#next] = failed ? FAILURE : SUCCESS
    this.#calls++
    if (failed) this.#failures++
    this.#next = (this.#next + 1) % this.#slots.length
  }

  counts(): WindowCounts {
    return { calls: this.#calls, failures: this.#failures }
  }

  clear(): void {
    this.#slots.fill(EMPTY)
    this.#next = 0
    this.#calls = 0
    this.#failures = 0
  }
}

/** B buckets reused round-robin; each remembers which bucket number it holds, so stale ones are skipped. */
class TimeWindow implements OutcomeWindow {
  readonly #bucketMs: number
  readonly #epochs: Float64Array
  readonly #calls: Uint32Array
  readonly #failures: Uint32Array

  constructor(bucketMs: number, buckets: number) {
    this.#bucketMs = bucketMs
    this.#epochs = new Float64Array(buckets).fill(-1)
    this.#calls = new Uint32Array(buckets)
    this.#failures = new Uint32Array(buckets)
  }

  add(now: number, failed: boolean): void {
    const epoch = Math.floor(now / this.#bucketMs)
    const slot = epoch % this.#epochs.length
    if (this.#epochs[slot] !== epoch) {
      this.#epochs[slot] = epoch
      this.#calls[slot] = 0
      this.#failures[slot] = 0
    }
    this.#calls[slot]!++
    if (failed) this.#failures[slot]!++
  }

  counts(now: number): WindowCounts {
    const oldest = Math.floor(now / this.#bucketMs) - this.#epochs.length
    let calls = 0
    let failures = 0
    for (let slot = 0; slot < this.#epochs.length; slot++) {
      if (this.#epochs[slot]! > oldest) {
        calls += this.#calls[slot]!
        failures += this.#failures[slot]!
      }
    }
    return { calls, failures }
  }

  clear(): void {
    this.#epochs.fill(-1)
    this.#calls.fill(0)
    this.#failures.fill(0)
  }
}
