// `node bench/profile.ts [produce|replay|raw|both]`: where the broker spends its CPU under the bench's
// produce and fetch scenarios. Runs the broker process with V8's sampling profiler
// (--cpu-prof), drives it with the bench's own Tideway driver (pipelined durable produce of 1 KiB
// records; a replay by @platformatic/kafka, by kcat and by a raw client that decodes no record), stops it cleanly so the profile is
// written, and prints the functions with the most self time, grouped by file:line, plus the
// share spent outside JavaScript (GC, the event loop idle, native). The .cpuprofile is kept for
// Chrome DevTools or speedscope. Shares are what to read: they hold on a loaded machine too.
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './systems/binaries.ts'
import { tideway } from './systems/tideway.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const MAIN = join(ROOT, 'src/cli/main.ts')
const scenario = process.argv[2] ?? 'both'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tideway-profile-'))
  const port = await freePort()
  const broker = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, MAIN, 'broker', '--port', String(port), '--http', 'off', '--data-dir', join(dir, 'data')], { stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise<number | null>((resolve) => broker.once('exit', resolve))
  const killer = setTimeout(() => broker.kill('SIGKILL'), 600_000)
  try {
    await waitForPort(port)
    const driver = tideway({ flush: 'always' }).attach(`127.0.0.1:${port}`, dir)
    if (scenario !== 'replay') {
      const produced = await driver.producePipelined({ recordBytes: 1024, seconds: 10, inFlight: 256 })
      process.stderr.write(`produce: ${produced.records} records in ${Math.round(produced.elapsedMs)} ms\n`)
    }
    if (scenario === 'raw') {
      const raw = await driver.rawReplay(1024, 300_000)
      process.stderr.write(`raw fetch replay: ${raw.records} records in ${Math.round(raw.elapsedMs)} ms\n`)
    } else if (scenario !== 'produce') {
      const replayed = await driver.replay({ recordBytes: 1024, records: 300_000 })
      process.stderr.write(`replay: ${replayed.records} records in ${Math.round(replayed.elapsedMs)} ms\n`)
      const kcat = await driver.kcatReplay(1024, 300_000)
      process.stderr.write(`kcat replay: ${kcat.records} records in ${Math.round(kcat.elapsedMs)} ms\n`)
      const raw = await driver.rawReplay(1024, 300_000)
      process.stderr.write(`raw fetch replay: ${raw.records} records in ${Math.round(raw.elapsedMs)} ms\n`)
    }
  } finally {
    broker.kill('SIGTERM')
    await exited
    clearTimeout(killer)
  }
  const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error(`the broker wrote no profile into ${dir}`)
  report(JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile)
  process.stdout.write(`\nprofile: ${join(dir, file)}\n`)
}

/** Self time per function (file:line), from the samples and their time deltas. */
function report(profile: CpuProfile): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)!
    const dt = profile.timeDeltas[i] ?? 0
    total += dt
    const { functionName, url, lineNumber } = node.callFrame
    const where = url ? `${url.startsWith('file:') ? relative(ROOT, fileURLToPath(url)) : url}:${lineNumber + 1}` : ''
    const key = `${functionName || '(anonymous)'} ${where}`.trim()
    self.set(key, (self.get(key) ?? 0) + dt)
  })
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)
  process.stdout.write(`self time, ${Math.round(total / 1000)} ms sampled (scenario: ${scenario})\n`)
  for (const [key, us] of rows) process.stdout.write(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}\n`)
}

async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net')
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port })
      socket.once('connect', () => (socket.destroy(), resolve(true)))
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the broker did not listen on ${port}`)
}

await main()
