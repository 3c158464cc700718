// `npm run bench -- --quick --json` runs end to end: every system starts on its own port, every
// scenario produces a row for every system it runs on, the ratios and targets are computed, and
// the chart renders. This checks that the bench works, never how fast anything is (speed is
// the bench's to measure, not a test's to assert).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { renderChart } from '../../bench/chart.ts'
import { requireKcat, run } from '../helpers/tools.ts'

const BENCH = fileURLToPath(new URL('../../bench/run.ts', import.meta.url))

interface Report {
  systems: { name: string; setup: string }[]
  scenarios: { id: string; title: string; rows: { system: string; records: number; recordsPerSec: number; mbPerSec: number; p99Ms?: number }[] }[]
  ratios: Record<string, Record<string, number | null>>
  targets: { target: string; value: number | null; met: boolean }[]
  features: { rows: { system: string; records: number }[]; modes: { name: string; records: number }[]; coldStart: { medianMs: number } }
}

test('npm run bench -- --quick --json: every system, scenario, ratio and target', { timeout: 400_000 }, async () => {
  requireKcat()
  const result = await run(process.execPath, [BENCH, '--quick', '--json'], { timeoutMs: 360_000 })
  assert.equal(result.code, 0, `bench exited ${result.code ?? result.signal}: ${result.stderr.slice(-3000)}`)
  const report = JSON.parse(result.stdout) as Report

  const names = report.systems.map((s) => s.name)
  assert.deepEqual(names, ['tideway flush=always', 'tideway flush=1s', 'jetstream sync=always', 'jetstream sync=default', 'redis appendfsync=always', 'redis appendfsync=everysec'])
  // Each says which binary, port and durability setting it ran with.
  for (const s of report.systems) assert.match(s.setup, /127\.0\.0\.1:\d+/, `${s.name} says where it ran: ${s.setup}`)

  const rowsOf = (id: string) => report.scenarios.find((s) => s.id === id)?.rows.map((r) => r.system) ?? []
  for (const id of ['produce-one-1024', 'produce-pipelined-1024', 'produce-one-100', 'produce-pipelined-100', 'e2e-200']) {
    assert.deepEqual(rowsOf(id), names, `scenario ${id} ran on every system`)
  }
  for (const id of ['replay', 'group', 'eos-sqlite', 'eos-postgres']) assert.deepEqual(rowsOf(id), ['tideway', 'jetstream', 'redis'], `scenario ${id}`)
  assert.deepEqual(rowsOf('clients'), ['kcat produce, acks=all', 'kcat replay (prints each offset)', 'raw fetch replay (batch headers only)'])
  for (const scenario of report.scenarios) {
    for (const row of scenario.rows) {
      assert.ok(row.records > 0 && row.recordsPerSec > 0, `${scenario.id} on ${row.system} measured something`)
      if (scenario.id.startsWith('produce') || scenario.id.startsWith('e2e')) assert.ok(row.p99Ms !== undefined && row.p99Ms > 0, `${scenario.id} on ${row.system} has latencies`)
    }
  }
  // Consumers read exactly what was written: a replay or group row counts each record once.
  for (const id of ['replay', 'group']) for (const row of report.scenarios.find((s) => s.id === id)!.rows) assert.equal(row.records, 5_000, `${id} on ${row.system}`)

  for (const [group, values] of Object.entries(report.ratios)) {
    for (const [name, value] of Object.entries(values)) assert.ok(typeof value === 'number' && value > 0, `ratio ${group}.${name} computed (${value})`)
  }
  assert.equal(report.targets.length, 4)
  assert.ok(report.features.rows.length === 5 && report.features.modes.length === 5 && report.features.coldStart.medianMs > 0)

  const svg = renderChart({ ...report, date: new Date().toISOString(), quick: true, machine: { cpus: 2, memoryGiB: 24 } })
  assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  for (const name of names) assert.ok(svg.includes(`>${name}<`), `chart shows ${name}`)
})
