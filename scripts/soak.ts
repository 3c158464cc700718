// `npm run soak`: the reliability suite's long versions, run by hand (not in CI): thousands of
// power-loss crash points, 250 broker kill -9 cycles under mixed load, 60 kill -9s of a broker
// in the middle of log compaction, offset commits
// across crashes, idempotent producers and the SDK's delivery modes across kills, network faults
// at three times the CI volume, and hundreds of thousands of fuzzed inputs (in-process decoders
// and a live broker). Each test prints its own figures and one `soak totals {...}` line
// (test/helpers/history.ts); this script runs them with soak sizes, echoes the figures, ends with
// one line per file and the sums, and fails if any file failed or anything was lost, duplicated
// or reordered. Sizes can be overridden with the same environment variables (POWER_LOSS_POINTS,
// POWER_LOSS_ROUNDS, CRASH_CYCLES, COMPACTION_KILLS, OFFSET_CRASH_CYCLES, NETWORK_FAULT_SCALE,
// FUZZ_CASES, LIVE_FUZZ_CASES, SEED).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { TOTALS_PREFIX, type SoakTotals } from '../test/helpers/history.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const sizes = {
  POWER_LOSS_POINTS: '2000',
  POWER_LOSS_ROUNDS: '250',
  CRASH_CYCLES: '250',
  OFFSET_CRASH_CYCLES: '30',
  NETWORK_FAULT_SCALE: '3',
  FUZZ_CASES: '200000',
  LIVE_FUZZ_CASES: '100000',
  COMPACTION_KILLS: '60',
}
const files = [
  'test/faults/power-loss.test.ts',
  'test/faults/crash-kill9.test.ts',
  'test/faults/compaction-kill9.test.ts',
  'test/faults/group-offsets-kill9.test.ts',
  'test/faults/idempotent-producer-kill9.test.ts',
  'test/faults/delivery-modes-kill9.test.ts',
  'test/faults/network-faults.test.ts',
  'test/unit/protocol/decoder-fuzz.test.ts',
  'test/faults/live-fuzz.test.ts',
]

const totals: Required<SoakTotals> = { cycles: 0, crashPoints: 0, fuzzedInputs: 0, recordsChecked: 0, commitsChecked: 0, lost: 0, duplicates: 0, reorders: 0 }
function addTotals(line: string): void {
  const at = line.indexOf(TOTALS_PREFIX)
  if (at < 0) return
  const found = JSON.parse(line.slice(at + TOTALS_PREFIX.length)) as SoakTotals
  for (const key of Object.keys(totals) as (keyof SoakTotals)[]) totals[key] += found[key] ?? 0
}

const summary: string[] = []
for (const file of files) {
  const started = performance.now()
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-timeout=3600000', '--test-reporter=spec', file], {
      cwd: root,
      env: { ...sizes, ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let partial = ''
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        addTotals(line)
        if (/^\s*(ℹ|✔|✖|# )/.test(line) && !/ℹ (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms)/.test(line)) process.stdout.write(line + '\n')
      }
    })
    child.once('exit', resolve)
  })
  summary.push(`${code === 0 ? 'ok  ' : 'FAIL'} ${file} (${Math.round((performance.now() - started) / 1000)} s)`)
}
process.stdout.write(`\nsoak with ${Object.entries({ ...sizes, ...Object.fromEntries(Object.keys(sizes).filter((k) => process.env[k]).map((k) => [k, process.env[k]])) }).map(([k, v]) => `${k}=${v}`).join(' ')}\n${summary.join('\n')}\n`)
const t = totals
process.stdout.write(
  `totals: ${t.cycles} kill -9 cycles, ${t.crashPoints} power-loss crash points, ${t.fuzzedInputs} fuzzed inputs, ` +
    `${t.recordsChecked} records checked, ${t.commitsChecked} commits checked: lost ${t.lost}, duplicates ${t.duplicates}, reorders ${t.reorders}\n`,
)
process.exitCode = summary.some((line) => line.startsWith('FAIL')) || t.lost + t.duplicates + t.reorders > 0 ? 1 : 0
