// `npm run bench`: Tideway side by side with what a user would pick instead, on this machine, in
// this run, as ratios (absolute figures on a shared machine are noise; ratios measured minutes
// apart on the same disk are not). Systems, each started privately on a free port and stopped
// before the next starts, so no two compete for the disk:
//   tideway flush=always (the default: fsync before ack) and flush=1s
//   NATS JetStream, sync_interval: always and its default (bench/systems/jetstream.ts)
//   Redis Streams, appendfsync always and everysec (bench/systems/redis-streams.ts)
// and the disk itself: one fdatasync per 1 KiB record, and one per 64 KiB.
// Scenarios (bench/systems/types.ts), 1 KiB records unless said:
//   1 produce, one record per request, waiting for each ack (1 KiB and 100 B)
//   2 produce pipelined, up to 256 records unacknowledged (1 KiB and 100 B)
//   3 end to end at a fixed rate (1,000 and 10,000 records/s), send to receipt
//   4 replay of 1,000,000 records from the first
//   5 a consumer group of 3 members
//   6 an exactly-once consumer: effect and dedup row in one transaction, SQLite and PostgreSQL
// Scenarios 1-3 run on every system; 4-6 read, and the read path does not depend on the flush
// setting, so they run once per system on its relaxed variant (which fills the log faster).
// kcat (librdkafka) also produces to and replays from Tideway, and a raw client that decodes no
// record replays, to show what the broker does when the client is not the bottleneck. Then Tideway's own features against plain produce, the SDK's
// delivery modes end to end, the embedded broker's cold start, and produce p99 while the log cleaner runs as a ratio to without.
// Flags: --json (machine-readable), --markdown (the tables as the README shows them), --save FILE
// (keep the report as JSON), --from FILE (print or chart a saved report instead of measuring), --quick (a short smoke run, what CI executes: it checks the
// bench runs, never its speed), --chart (writes docs/bench.svg from this run), --only a,b
// (systems whose name contains a or b).

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BrokerProcess } from '../test/helpers/broker-process.ts'
import { renderChart } from './chart.ts'
import { fdatasyncLoop } from './disk.ts'
import { batchedProduce, cleanerImpact, coldStart, createDedupTopic, type CleanerImpact } from './features.ts'
import { ratio, round, summarise, type Summary } from './measure.ts'
import { deliveryModeRun, type ModeResult } from './sdk-modes.ts'
import { jetstream } from './systems/jetstream.ts'
import { redisStreams } from './systems/redis-streams.ts'
import { tideway, type TidewayUnderTest } from './systems/tideway.ts'
import type { SystemUnderTest } from './systems/types.ts'

const USAGE = `Usage: npm run bench -- [options]

Tideway beside NATS JetStream, Redis Streams and the disk itself, in one run, as ratios.

Options:
  --quick        a short smoke run (what CI executes: it checks the bench runs, never its speed)
  --json         the report as JSON on stdout
  --markdown     the tables as the README shows them
  --save FILE    also keep the report as JSON in FILE
  --from FILE    print (or --chart) a saved report instead of measuring
  --chart        write docs/bench.svg from this run
  --only a,b     only the systems whose name contains a or b
  -h, --help     this help
`

let parsed
try {
  parsed = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      chart: { type: 'boolean', default: false },
      markdown: { type: 'boolean', default: false },
      save: { type: 'string' },
      from: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`)
  process.exit(2)
}
if (parsed.values.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}
const flags = parsed.values

const SIZES = flags.quick
  ? { seconds: 0.5, e2eSeconds: 1, rates: [200], replayRecords: 5_000, groupRecords: 5_000, eosRecords: 300, kcatRecords: 5_000, sdkRecords: 300, coldRuns: 1, inFlight: 256, cleanerFillBytes: 4 * 2 ** 20 }
  : { seconds: 3, e2eSeconds: 5, rates: [1_000, 10_000], replayRecords: 1_000_000, groupRecords: 200_000, eosRecords: 5_000, kcatRecords: 300_000, sdkRecords: 5_000, coldRuns: 5, inFlight: 256, cleanerFillBytes: 24 * 2 ** 20 }
const RECORD_SIZES = [1024, 100] as const
const GROUP_MEMBERS = 3

/** One system's row in one scenario. */
interface Row extends Summary {
  readonly system: string
}

interface Scenario {
  readonly id: string
  readonly title: string
  readonly rows: Row[]
}

interface Plan {
  readonly system: SystemUnderTest
  /** Also runs the read scenarios (4-6): one variant per product. */
  readonly reads: boolean
}

function plans(): Plan[] {
  const all: Plan[] = [
    { system: tideway({ flush: 'always' }), reads: false },
    { system: tideway({ flush: 'interval' }), reads: true },
    { system: jetstream({ sync: 'always' }), reads: false },
    { system: jetstream({ sync: 'default' }), reads: true },
    { system: redisStreams({ appendfsync: 'always' }), reads: false },
    { system: redisStreams({ appendfsync: 'everysec' }), reads: true },
  ]
  if (!flags.only) return all
  const wanted = flags.only.split(',')
  return all.filter((p) => wanted.some((w) => p.system.name.includes(w)))
}

const scenarios = new Map<string, Scenario>()
function record(id: string, title: string, system: string, summary: Summary): void {
  let scenario = scenarios.get(id)
  if (!scenario) scenarios.set(id, (scenario = { id, title, rows: [] }))
  scenario.rows.push({ system, ...summary })
}

function progress(text: string): void {
  if (!flags.json) process.stderr.write(`… ${text}\n`)
}

async function runSystem({ system, reads }: Plan, described: { name: string; setup: string }[]): Promise<void> {
  progress(`${system.name}: starting`)
  await system.start()
  try {
    described.push({ name: system.name, setup: system.describe() })
    const { seconds, inFlight } = SIZES
    for (const recordBytes of RECORD_SIZES) {
      const size = recordBytes === 1024 ? '1 KiB' : `${recordBytes} B`
      progress(`${system.name}: produce ${size}`)
      record(`produce-one-${recordBytes}`, `1. produce, one ${size} record per request, waiting for each ack`, system.name, summarise(await system.produceOneAtATime({ recordBytes, seconds })))
      record(`produce-pipelined-${recordBytes}`, `2. produce, ${size} records, up to ${inFlight} unacknowledged`, system.name, summarise(await system.producePipelined({ recordBytes, seconds, inFlight })))
    }
    for (const ratePerSec of SIZES.rates) {
      progress(`${system.name}: end to end at ${ratePerSec}/s`)
      record(`e2e-${ratePerSec}`, `3. end to end at ${ratePerSec.toLocaleString('en')} records/s (send to receipt)`, system.name, summarise(await system.endToEnd({ recordBytes: 1024, ratePerSec, seconds: SIZES.e2eSeconds })))
    }
    if (!reads) return
    const product = system.name.split(' ')[0]!
    progress(`${system.name}: replay of ${SIZES.replayRecords}`)
    record('replay', `4. replay of ${SIZES.replayRecords.toLocaleString('en')} records from the first`, product, summarise(await system.replay({ recordBytes: 1024, records: SIZES.replayRecords })))
    progress(`${system.name}: group of ${GROUP_MEMBERS}`)
    record('group', `5. consumer group of ${GROUP_MEMBERS} members, ${SIZES.groupRecords.toLocaleString('en')} records`, product, summarise(await system.groupConsume({ recordBytes: 1024, records: SIZES.groupRecords, members: GROUP_MEMBERS })))
    for (const store of ['sqlite', 'postgres'] as const) {
      progress(`${system.name}: exactly-once consumer on ${store}`)
      record(`eos-${store}`, `6. exactly-once consumer, ${store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, ${SIZES.eosRecords.toLocaleString('en')} records`, product, summarise(await system.exactlyOnceConsume({ recordBytes: 1024, records: SIZES.eosRecords, store })))
    }
    if (system.name.startsWith('tideway')) await otherClientRows(system as TidewayUnderTest)
  } finally {
    await system.stop()
  }
}

/** Other clients against Tideway: librdkafka (kcat), and a client that decodes no record. */
async function otherClientRows(system: TidewayUnderTest): Promise<void> {
  progress('tideway: kcat and raw fetch')
  const title = `Tideway with other clients, ${SIZES.kcatRecords.toLocaleString('en')} 1 KiB records`
  record('clients', title, 'kcat produce, acks=all', summarise(await system.kcatProduce(1024, SIZES.kcatRecords)))
  record('clients', title, 'kcat replay (prints each offset)', summarise(await system.kcatReplay(1024, SIZES.kcatRecords)))
  record('clients', title, 'raw fetch replay (batch headers only)', summarise(await system.rawReplay(1024, SIZES.kcatRecords)))
}

interface Features {
  readonly rows: Row[]
  readonly coldStart: { medianMs: number; samplesMs: number[] }
  readonly modes: ModeResult[]
  readonly cleaner: CleanerImpact
}

/** Tideway's own features against plain batched produce, the SDK's modes, and cold start. */
async function tidewayFeatures(dir: string): Promise<Features> {
  const broker = new BrokerProcess(join(dir, 'features'))
  await broker.start()
  const rows: Row[] = []
  try {
    const seconds = SIZES.seconds
    progress('tideway features')
    const row = async (system: string, run: Promise<Parameters<typeof summarise>[0]>) => rows.push({ system, ...summarise(await run) })
    await row('plain batched (4 producers, 64 per request)', batchedProduce(broker.bootstrap, 'bench-plain', { seconds }))
    await row('idempotent producers', batchedProduce(broker.bootstrap, 'bench-plain', { seconds, idempotent: true }))
    await row('key headers, ordinary topic', batchedProduce(broker.bootstrap, 'bench-headers', { seconds, idempotent: true, keys: 'new' }))
    await createDedupTopic(broker.bootstrap, 'bench-keyed')
    await row('key headers, dedup topic, new keys', batchedProduce(broker.bootstrap, 'bench-keyed', { seconds, idempotent: true, keys: 'new' }))
    await row('the same keys sent again', batchedProduce(broker.bootstrap, 'bench-keyed', { seconds, idempotent: true, keys: 'again' }))
    const modes: ModeResult[] = []
    for (const [delivery, db] of [['at-most-once', 'sqlite'], ['at-least-once', 'sqlite'], ['exactly-once', 'sqlite'], ['at-least-once', 'postgres'], ['exactly-once', 'postgres']] as const) {
      progress(`sdk ${delivery} on ${db}`)
      modes.push(await deliveryModeRun(broker.bootstrap, dir, delivery, db, SIZES.sdkRecords))
    }
    await broker.stop()
    progress('cold start')
    const cold = await coldStart(SIZES.coldRuns)
    progress('produce while the log cleaner runs')
    return { rows, modes, coldStart: cold, cleaner: await cleanerImpact(dir, seconds, SIZES.cleanerFillBytes) }
  } finally {
    await broker.kill9()
  }
}

const find = (id: string, system: string) => scenarios.get(id)?.rows.find((r) => r.system === system)

function ratios(disk: { perRecord: Summary; per64KiB: Summary }) {
  const t = 'tideway flush=always'
  const tRelaxed = 'tideway flush=1s'
  const through = (id: string, a: string, b: string) => ratio(find(id, a)?.recordsPerSec, find(id, b)?.recordsPerSec)
  const replay = find('replay', 'tideway')
  return {
    durable: {
      pipelinedVsJetStreamAlways: through('produce-pipelined-1024', t, 'jetstream sync=always'),
      pipelinedVsRedisAlways: through('produce-pipelined-1024', t, 'redis appendfsync=always'),
      oneAtATimeVsJetStreamAlways: through('produce-one-1024', t, 'jetstream sync=always'),
      oneAtATimeVsRedisAlways: through('produce-one-1024', t, 'redis appendfsync=always'),
      pipelined100BVsJetStreamAlways: through('produce-pipelined-100', t, 'jetstream sync=always'),
      pipelinedMBVsDisk64KiB: ratio(find('produce-pipelined-1024', t)?.mbPerSec, disk.per64KiB.mbPerSec),
      oneAtATimeP99VsDiskP99: ratio(find('produce-one-1024', t)?.p99Ms, disk.perRecord.p99Ms),
      oneAtATimeVsDiskPerRecord: ratio(find('produce-one-1024', t)?.recordsPerSec, disk.perRecord.recordsPerSec),
    },
    relaxed: {
      pipelinedVsJetStreamDefault: through('produce-pipelined-1024', tRelaxed, 'jetstream sync=default'),
      pipelinedVsRedisEverysec: through('produce-pipelined-1024', tRelaxed, 'redis appendfsync=everysec'),
    },
    reads: {
      replayVsJetStream: through('replay', 'tideway', 'jetstream'),
      replayVsRedis: through('replay', 'tideway', 'redis'),
      groupVsJetStream: through('group', 'tideway', 'jetstream'),
      groupVsRedis: through('group', 'tideway', 'redis'),
      replayMBPerSec: replay?.mbPerSec ?? null,
      kcatReplayMBPerSec: find('clients', 'kcat replay (prints each offset)')?.mbPerSec ?? null,
      rawReplayMBPerSec: find('clients', 'raw fetch replay (batch headers only)')?.mbPerSec ?? null,
    },
  }
}

/** The issue's targets, measured here and never asserted: a miss is reported with its ratio. */
function targets(r: ReturnType<typeof ratios>) {
  const bestReplay = Math.max(r.reads.replayMBPerSec ?? 0, r.reads.kcatReplayMBPerSec ?? 0, r.reads.rawReplayMBPerSec ?? 0)
  return [
    { target: 'durable produce >= 1.5x JetStream sync=always (pipelined, 1 KiB)', value: r.durable.pipelinedVsJetStreamAlways, met: (r.durable.pipelinedVsJetStreamAlways ?? 0) >= 1.5 },
    { target: "durable produce >= 0.7 of the disk's 64 KiB-per-fdatasync MB/s", value: r.durable.pipelinedMBVsDisk64KiB, met: (r.durable.pipelinedMBVsDisk64KiB ?? 0) >= 0.7 },
    { target: "single-record durable produce p99 <= 2x the disk's fdatasync p99", value: r.durable.oneAtATimeP99VsDiskP99, met: r.durable.oneAtATimeP99VsDiskP99 !== null && r.durable.oneAtATimeP99VsDiskP99 <= 2 },
    { target: 'replay >= 1 GB/s (MB/s, best of @platformatic/kafka, kcat and raw fetch)', value: round(bestReplay), met: bestReplay >= 1024 },
  ]
}

/** A scenario's rows; with `baseline`, a last column of the baseline's records/s over each row's. */
function table(scenario: Scenario, baseline?: { system: string; label: string; invert?: boolean }): string[] {
  const base = baseline ? scenario.rows.find((r) => r.system === baseline.system) : undefined
  const cell = (n: number | undefined, width: number, digits = 2) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits)).padStart(width)
  return [
    scenario.title,
    `  ${'system'.padEnd(42)} ${'rec/s'.padStart(10)} ${'MB/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'p999 ms'.padStart(8)}${base ? `  ${baseline!.label.padStart(14)}` : ''}`,
    ...scenario.rows.map((r) => {
      const vs = base && r !== base ? (baseline!.invert ? ratio(r.recordsPerSec, base.recordsPerSec) : ratio(base.recordsPerSec, r.recordsPerSec)) : null
      return `  ${r.system.padEnd(42)} ${String(r.recordsPerSec).padStart(10)} ${cell(r.mbPerSec, 8)} ${cell(r.p50Ms, 8)} ${cell(r.p99Ms, 8)} ${cell(r.p999Ms, 8)}${base ? `  ${(vs === null ? '' : vs.toFixed(2)).padStart(14)}` : ''}`
    }),
    '',
  ]
}

/** The scenario tables in Markdown, each row's last column Tideway's records/s over that row's. */
function markdown(all: readonly Scenario[], disk: { perRecord: Summary; per64KiB: Summary }): string {
  const n = (v: number | undefined, digits = 2) => (v === undefined || Number.isNaN(v) ? '' : v.toLocaleString('en', { maximumFractionDigits: digits }))
  const out = ['| disk | records/s | MB/s | p50 ms | p99 ms | p999 ms |', '|---|---|---|---|---|---|']
  for (const [name, row] of [['fdatasync per 1 KiB', disk.perRecord], ['fdatasync per 64 KiB', disk.per64KiB]] as const) {
    out.push(`| ${name} | ${n(row.recordsPerSec)} | ${n(row.mbPerSec)} | ${n(row.p50Ms)} | ${n(row.p99Ms)} | ${n(row.p999Ms)} |`)
  }
  for (const scenario of all) {
    const isRead = ['replay', 'group', 'eos-sqlite', 'eos-postgres'].includes(scenario.id)
    const base = scenario.rows.find((r) => r.system === (isRead ? 'tideway' : 'tideway flush=always'))
    out.push('', `**${scenario.title}**`, '', '| system | records/s | MB/s | p50 ms | p99 ms | p999 ms | Tideway ÷ this |', '|---|---|---|---|---|---|---|')
    for (const r of scenario.rows) {
      const vs = base && r !== base && scenario.id !== 'clients' ? ratio(base.recordsPerSec, r.recordsPerSec) : null
      out.push(`| ${r.system} | ${n(r.recordsPerSec)} | ${n(r.mbPerSec)} | ${n(r.p50Ms)} | ${n(r.p99Ms)} | ${n(r.p999Ms)} | ${vs === null ? '' : vs.toFixed(2)} |`)
    }
  }
  return out.join('\n')
}

type Report = Awaited<ReturnType<typeof measureAll>>

/** Runs every system and scenario; the report the outputs below are made from. */
async function measureAll() {
  const dir = await mkdtemp(join(tmpdir(), 'tideway-bench-'))
  try {
    progress('disk limits')
    const disk = {
      perRecord: summarise(await fdatasyncLoop(dir, 1024, SIZES.seconds)),
      per64KiB: summarise(await fdatasyncLoop(dir, 64 * 1024, SIZES.seconds)),
    }
    const systems: { name: string; setup: string }[] = []
    for (const plan of plans()) await runSystem(plan, systems)
    const features = flags.only ? undefined : await tidewayFeatures(dir)
    const measured = ratios(disk)
    return {
      date: new Date().toISOString(),
      quick: flags.quick,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version },
      systems,
      disk,
      scenarios: [...scenarios.values()],
      ratios: measured,
      targets: targets(measured),
      features,
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function text(report: Report): string {
  const { systems, disk, features } = report
  const lines = [
    `Tideway bench${report.quick ? ' (--quick: smoke sizes, figures mean nothing)' : ''}, ${report.date}; ${report.machine.cpus} cores, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}`,
    ...systems.map((s) => `  ${s.name}: ${s.setup}`),
    '',
    'disk limits (1 KiB records)',
    ...table({ id: 'disk', title: '', rows: [{ system: 'fdatasync per 1 KiB', ...disk.perRecord }, { system: 'fdatasync per 64 KiB', ...disk.per64KiB }] }).slice(1),
  ]
  for (const scenario of report.scenarios) {
    const isRead = ['replay', 'group', 'eos-sqlite', 'eos-postgres'].includes(scenario.id)
    if (scenario.id === 'clients') lines.push(...table(scenario))
    else lines.push(...table(scenario, { system: isRead ? 'tideway' : 'tideway flush=always', label: 'tideway ÷ this' }))
  }
  lines.push('ratios', ...Object.entries(report.ratios).flatMap(([group, values]) => Object.entries(values).map(([k, v]) => `  ${group}.${k}: ${v ?? '-'}`)), '')
  lines.push('targets (measured, not asserted)', ...report.targets.map((t) => `  ${t.met ? 'met   ' : 'missed'} ${t.target}: ${t.value ?? '-'}`), '')
  if (features) {
    const plain = features.rows[0]!
    lines.push(...table({ id: 'features', title: 'Tideway features, 1 KiB records, against plain batched produce', rows: features.rows }, { system: plain.system, label: 'this ÷ plain', invert: true }))
    lines.push('sdk end to end per delivery mode, handled into a database balance', ...features.modes.map((m) => `  ${m.name.padEnd(44)} ${String(m.recordsPerSec).padStart(9)} rec/s (${m.seconds} s)`))
    lines.push(`embedded cold start to first acknowledged produce: median ${features.coldStart.medianMs} ms (${features.coldStart.samplesMs.join(', ')})`)
    const c = features.cleaner
    lines.push(`produce p99 while the log cleaner runs (${c.cleanerIoBytesPerSecond} B/s): ${c.withP99Ms} ms vs ${c.withoutP99Ms} ms idle, ratio ${c.p99Ratio ?? '-'}; compacted topic ${c.compactedBytes[0]} -> ${c.compactedBytes[1]} bytes`, '')
  }
  return lines.join('\n') + '\n'
}

async function main(): Promise<void> {
  const report: Report = flags.from ? JSON.parse(await readFile(flags.from, 'utf8')) : await measureAll()
  if (flags.save) await writeFile(flags.save, JSON.stringify(report, null, 2) + '\n')
  if (flags.chart) {
    const path = fileURLToPath(new URL('../docs/bench.svg', import.meta.url))
    await writeFile(path, renderChart(report))
    progress(`chart written to ${path}`)
  }
  if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  else if (flags.markdown) process.stdout.write(markdown(report.scenarios, report.disk) + '\n')
  else process.stdout.write(text(report))
}

await main()
