// `npm run soak`: the reliability suite's long versions, run by hand (not in CI): thousands of
// power-loss crash points, a hundred broker kill -9 cycles under load, offset commits across
// crashes, idempotent producers and the SDK's delivery modes across kills, and 200k decoder fuzz
// cases. Each test prints its own figures; this script runs them with soak sizes, echoes those
// figures and ends with one line per file. Sizes can be overridden with the same environment
// variables (POWER_LOSS_POINTS, POWER_LOSS_ROUNDS, CRASH_CYCLES, OFFSET_CRASH_CYCLES, FUZZ_CASES,
// SEED).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const sizes = {
  POWER_LOSS_POINTS: '2000',
  POWER_LOSS_ROUNDS: '250',
  CRASH_CYCLES: '100',
  OFFSET_CRASH_CYCLES: '30',
  FUZZ_CASES: '200000',
}
const files = [
  'test/faults/power-loss.test.ts',
  'test/faults/crash-kill9.test.ts',
  'test/faults/group-offsets-kill9.test.ts',
  'test/faults/idempotent-producer-kill9.test.ts',
  'test/faults/delivery-modes-kill9.test.ts',
  'test/unit/protocol/decoder-fuzz.test.ts',
]

const summary: string[] = []
for (const file of files) {
  const started = performance.now()
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-timeout=3600000', '--test-reporter=spec', file], {
      cwd: root,
      env: { ...sizes, ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    child.stdout.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (/^\s*(ℹ|✔|✖)/.test(line) && !/ℹ (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms)/.test(line)) process.stdout.write(line + '\n')
    })
    child.once('exit', resolve)
  })
  summary.push(`${code === 0 ? 'ok  ' : 'FAIL'} ${file} (${Math.round((performance.now() - started) / 1000)} s)`)
}
process.stdout.write(`\nsoak with ${Object.entries({ ...sizes, ...Object.fromEntries(Object.keys(sizes).filter((k) => process.env[k]).map((k) => [k, process.env[k]])) }).map(([k, v]) => `${k}=${v}`).join(' ')}\n${summary.join('\n')}\n`)
process.exitCode = summary.some((line) => line.startsWith('FAIL')) ? 1 : 0
