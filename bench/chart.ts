// The README's chart of a bench run, as a self-contained SVG (no fonts or scripts to fetch):
// one panel per headline scenario, one bar per system, each bar's length its records/s as a
// share of the panel's best, the figure printed beside it; and a panel of end-to-end p99s.
// Pure: a report in, a string out.

interface ChartRow {
  readonly system: string
  readonly recordsPerSec: number
  readonly mbPerSec: number
  readonly p99Ms?: number
}

interface ChartReport {
  readonly date: string
  readonly quick: boolean
  readonly machine: { readonly cpus: number; readonly memoryGiB: number }
  readonly scenarios: readonly { readonly id: string; readonly title: string; readonly rows: readonly ChartRow[] }[]
}

const PANELS: readonly { id: string; title: string; metric: 'throughput' | 'p99' }[] = [
  { id: 'produce-one-1024', title: 'Durable produce, one 1 KiB record per request (records/s)', metric: 'throughput' },
  { id: 'produce-pipelined-1024', title: 'Produce, 1 KiB records, 256 unacknowledged (records/s)', metric: 'throughput' },
  { id: 'produce-pipelined-100', title: 'Produce, 100 B records, 256 unacknowledged (records/s)', metric: 'throughput' },
  { id: 'e2e-1000', title: 'End to end at 1,000 records/s: p99 latency (ms, shorter is better)', metric: 'p99' },
  { id: 'replay', title: 'Replay of 1 KiB records from the first (records/s)', metric: 'throughput' },
  { id: 'group', title: 'Consumer group of 3 members (records/s)', metric: 'throughput' },
]

const WIDTH = 860
const LABEL = 230
const BAR = 18
const GAP = 6
const FIGURE = 110

function colour(system: string): string {
  const durable = !/flush=1s|sync=default|everysec/.test(system)
  if (system.startsWith('tideway')) return durable ? '#0f766e' : '#5eead4'
  if (system.startsWith('jetstream')) return durable ? '#6d28d9' : '#c4b5fd'
  if (system.startsWith('redis')) return durable ? '#b91c1c' : '#fca5a5'
  return '#6b7280'
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function figure(value: number, metric: 'throughput' | 'p99'): string {
  if (metric === 'p99') return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`
  return value >= 1e6 ? `${(value / 1e6).toFixed(2)}M` : value >= 1e3 ? `${(value / 1e3).toFixed(1)}k` : String(value)
}

export function renderChart(report: ChartReport): string {
  const parts: string[] = []
  let y = 58
  parts.push(
    `<text x="16" y="24" font-size="15" font-weight="bold">Tideway, NATS JetStream and Redis Streams: same machine, same run</text>`,
    `<text x="16" y="42" font-size="12" fill="#4b5563">${escape(report.date.slice(0, 10))}, ${report.machine.cpus} cores, ${report.machine.memoryGiB} GiB${report.quick ? ', --quick sizes (figures mean nothing)' : ''}; npm run bench -- --chart</text>`,
  )
  for (const panel of PANELS) {
    const scenario = report.scenarios.find((s) => s.id === panel.id)
    if (!scenario || scenario.rows.length === 0) continue
    const value = (r: ChartRow) => (panel.metric === 'p99' ? (r.p99Ms ?? 0) : r.recordsPerSec)
    const best = Math.max(...scenario.rows.map(value), 1e-9)
    y += 14
    parts.push(`<text x="16" y="${y}" font-size="13" font-weight="bold">${escape(panel.title)}</text>`)
    y += 8
    for (const row of scenario.rows) {
      const length = Math.max(1, ((WIDTH - LABEL - FIGURE - 16) * value(row)) / best)
      parts.push(
        `<text x="${LABEL - 8}" y="${y + BAR - 5}" font-size="12" text-anchor="end">${escape(row.system)}</text>`,
        `<rect x="${LABEL}" y="${y}" width="${length.toFixed(1)}" height="${BAR}" fill="${colour(row.system)}"/>`,
        `<text x="${(LABEL + length + 6).toFixed(1)}" y="${y + BAR - 5}" font-size="12">${escape(figure(value(row), panel.metric))}</text>`,
      )
      y += BAR + GAP
    }
    y += 10
  }
  parts.push(
    `<text x="16" y="${y + 6}" font-size="11" fill="#4b5563">Dark bars: fsync before acknowledging (Tideway's default, JetStream sync_interval: always, Redis appendfsync always).</text>`,
    `<text x="16" y="${y + 22}" font-size="11" fill="#4b5563">Light bars: relaxed (Tideway and Redis fsync every second, JetStream every 2 minutes). Reads run once per product.</text>`,
  )
  const height = y + 36
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}
