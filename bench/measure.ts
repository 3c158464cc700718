// The figures every scenario reports, computed the same way for every system: throughput from
// the measured window, latency percentiles from the samples (nearest rank), and ratios rounded
// for tables. Pure functions, so the numbers in the table and in --json cannot disagree.
import type { Measured } from './systems/types.ts'

export interface Summary {
  readonly records: number
  readonly seconds: number
  readonly recordsPerSec: number
  readonly mbPerSec: number
  readonly p50Ms?: number
  readonly p99Ms?: number
  readonly p999Ms?: number
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

export function round(n: number, digits = 2): number {
  const scale = 10 ** digits
  return Math.round(n * scale) / scale
}

export function summarise(measured: Measured): Summary {
  const seconds = measured.elapsedMs / 1000
  const summary = {
    records: measured.records,
    seconds: round(seconds),
    recordsPerSec: seconds > 0 ? Math.round(measured.records / seconds) : 0,
    mbPerSec: seconds > 0 ? round(measured.bytes / seconds / (1024 * 1024)) : 0,
  }
  if (measured.latenciesMs.length === 0) return summary
  const sorted = Float64Array.from(measured.latenciesMs).sort()
  const of = (p: number) => round(percentile(sorted as unknown as number[], p), 3)
  return { ...summary, p50Ms: of(50), p99Ms: of(99), p999Ms: of(99.9) }
}

/** a / b for tables: null when either side is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null
  return round(a / b)
}

/**
 * Open-loop send times: the i-th of `ratePerSec` records a second is due at start + i/rate,
 * whatever the previous send took, so a slow answer shows as latency, not as a lower rate.
 */
export function dueAtMs(startMs: number, i: number, ratePerSec: number): number {
  return startMs + (i * 1000) / ratePerSec
}
