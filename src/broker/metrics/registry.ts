// Counters, gauges and histograms, rendered in the Prometheus text exposition format (0.0.4).
// Pure: no I/O, no timers. Updating a metric is a map lookup and an add, cheap enough for the
// produce path; values whose truth lives elsewhere (bytes on disk, group lag) are gauges read by
// a collector when /metrics is scraped, so the hot path never maintains them.

export type Labels = Readonly<Record<string, string | number>>

interface Family {
  readonly name: string
  readonly help: string
  readonly type: 'counter' | 'gauge' | 'histogram'
  render(out: string[]): void
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i]!)}"`)
  if (extra) parts.push(extra)
  return parts.length ? `{${parts.join(',')}}` : ''
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

/** Series of one family, keyed by their label values in declared order. */
class Series<T> {
  readonly #labelNames: readonly string[]
  readonly #byKey = new Map<string, { values: string[]; state: T }>()
  readonly #create: () => T

  constructor(labelNames: readonly string[], create: () => T) {
    for (const l of labelNames) if (!LABEL.test(l) || l.startsWith('__')) throw new Error(`bad label name ${l}`)
    this.#labelNames = labelNames
    this.#create = create
  }

  get(labels: Labels | undefined): T {
    const values = this.#labelNames.map((n) => {
      const v = labels?.[n]
      if (v === undefined) throw new Error(`metric label ${n} missing`)
      return String(v)
    })
    const key = values.join('\u0000')
    let entry = this.#byKey.get(key)
    if (!entry) {
      entry = { values, state: this.#create() }
      this.#byKey.set(key, entry)
    }
    return entry.state
  }

  *entries(): Iterable<[string[], T]> {
    for (const { values, state } of this.#byKey.values()) yield [values, state]
  }

  clear(): void {
    this.#byKey.clear()
  }

  get labelNames(): readonly string[] {
    return this.#labelNames
  }
}

export class Counter {
  readonly #series: Series<{ value: number }>
  constructor(labelNames: readonly string[]) {
    this.#series = new Series(labelNames, () => ({ value: 0 }))
  }
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new Error('a counter only goes up')
    this.#series.get(labels).value += by
  }
  value(labels?: Labels): number {
    return this.#series.get(labels).value
  }
  render(name: string, out: string[]): void {
    for (const [values, s] of this.#series.entries()) out.push(`${name}${labelText(this.#series.labelNames, values)} ${formatValue(s.value)}`)
  }
}

export class Gauge {
  readonly #series: Series<{ value: number }>
  constructor(labelNames: readonly string[]) {
    this.#series = new Series(labelNames, () => ({ value: 0 }))
  }
  set(value: number, labels?: Labels): void {
    this.#series.get(labels).value = value
  }
  inc(labels?: Labels, by = 1): void {
    this.#series.get(labels).value += by
  }
  dec(labels?: Labels, by = 1): void {
    this.#series.get(labels).value -= by
  }
  value(labels?: Labels): number {
    return this.#series.get(labels).value
  }
  /** Forgets every series: a collector that sets per-topic values starts from none, so a deleted topic disappears. */
  clear(): void {
    this.#series.clear()
  }
  render(name: string, out: string[]): void {
    for (const [values, s] of this.#series.entries()) out.push(`${name}${labelText(this.#series.labelNames, values)} ${formatValue(s.value)}`)
  }
}

interface HistogramState {
  readonly counts: number[]
  sum: number
  count: number
}

export class Histogram {
  readonly #series: Series<HistogramState>
  readonly buckets: readonly number[]
  constructor(labelNames: readonly string[], buckets: readonly number[]) {
    if (labelNames.includes('le')) throw new Error('le is reserved in a histogram')
    const sorted = [...buckets].sort((a, b) => a - b)
    this.buckets = sorted
    this.#series = new Series(labelNames, () => ({ counts: new Array<number>(sorted.length).fill(0), sum: 0, count: 0 }))
  }
  observe(value: number, labels?: Labels): void {
    const s = this.#series.get(labels)
    s.sum += value
    s.count++
    // Counts per bucket are stored non-cumulative and summed at render: one increment here.
    const i = this.buckets.findIndex((b) => value <= b)
    if (i >= 0) s.counts[i]!++
  }
  count(labels?: Labels): number {
    return this.#series.get(labels).count
  }
  render(name: string, out: string[]): void {
    const names = this.#series.labelNames
    for (const [values, s] of this.#series.entries()) {
      let cumulative = 0
      this.buckets.forEach((b, i) => {
        cumulative += s.counts[i]!
        out.push(`${name}_bucket${labelText(names, values, `le="${formatValue(b)}"`)} ${cumulative}`)
      })
      out.push(`${name}_bucket${labelText(names, values, 'le="+Inf"')} ${s.count}`)
      out.push(`${name}_sum${labelText(names, values)} ${formatValue(s.sum)}`)
      out.push(`${name}_count${labelText(names, values)} ${s.count}`)
    }
  }
}

/** Buckets in seconds from 50 µs to 10 s: fsyncs take 0.1-20 ms, long polls up to 30 s. */
export const LATENCY_BUCKETS_SECONDS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const

export class MetricsRegistry {
  readonly #families = new Map<string, Family>()
  readonly #collectors: Array<() => void> = []

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    const metric = new Counter(labelNames)
    this.#add({ name, help, type: 'counter', render: (out) => metric.render(name, out) })
    return metric
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    const metric = new Gauge(labelNames)
    this.#add({ name, help, type: 'gauge', render: (out) => metric.render(name, out) })
    return metric
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = LATENCY_BUCKETS_SECONDS): Histogram {
    const metric = new Histogram(labelNames, buckets)
    this.#add({ name, help, type: 'histogram', render: (out) => metric.render(name, out) })
    return metric
  }

  /** Runs before every render: sets gauges whose truth is held elsewhere. */
  collect(collector: () => void): void {
    this.#collectors.push(collector)
  }

  render(): string {
    for (const collect of this.#collectors) collect()
    const out: string[] = []
    for (const family of this.#families.values()) {
      out.push(`# HELP ${family.name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`)
      out.push(`# TYPE ${family.name} ${family.type}`)
      family.render(out)
    }
    return out.join('\n') + '\n'
  }

  #add(family: Family): void {
    if (!NAME.test(family.name)) throw new Error(`bad metric name ${family.name}`)
    if (this.#families.has(family.name)) throw new Error(`metric ${family.name} registered twice`)
    this.#families.set(family.name, family)
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
