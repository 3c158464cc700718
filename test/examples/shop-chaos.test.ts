// The reference shop (examples/shop) under chaos: `main.ts chaos` runs the broker and seven
// service processes under load while it kill -9s random services and the broker, then drains
// and reports from the services' own databases. Asserted from its --json report: nothing
// acknowledged is lost in the at-least-once and exactly-once flows, no exactly-once effect is
// applied twice, kills really happened, every scenario carried real traffic, the saga both
// completed and compensated, and the breaker opened. Uses the real Redis on 127.0.0.1:6379
// (env TIDEWAY_TEST_REDIS_PORT); a missing Redis fails the test, nothing is skipped.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { tempDir } from '../helpers/broker-process.ts'

const MAIN = fileURLToPath(new URL('../../examples/shop/main.ts', import.meta.url))
const REDIS_PORT = Number(process.env['TIDEWAY_TEST_REDIS_PORT'] ?? 6379)
const CHAOS_SECONDS = 35

interface Scenario {
  scenario: string
  mode: 'at-most-once' | 'at-least-once' | 'exactly-once' | 'breaker'
  sent: number
  acked: number
  effects: number
  lost: number
  duplicated: number
  ok: boolean
  details: string
  figures: Record<string, number>
}
interface Report {
  ok: boolean
  seconds: number
  kills: { total: number; broker: number; services: number; byProcess: Record<string, number> }
  unplannedExits: Record<string, number>
  drained: boolean
  unsettled: string[]
  scenarios: Scenario[]
}

const dir = tempDir('tideway-shop-')
let shop: ChildProcess | undefined
after(() => {
  shop?.kill('SIGKILL')
  // The shop kills its children on exit; these are any it could not (it was itself killed).
  const pidFile = `${dir.path}/pids.json`
  if (existsSync(pidFile)) {
    for (const pid of Object.values(JSON.parse(readFileSync(pidFile, 'utf8')) as Record<string, number[]>).flat()) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
  }
  dir.remove()
})

test('the shop keeps every promise while services and the broker are killed', { timeout: 240_000 }, async (t) => {
  const redis = new Redis({ port: REDIS_PORT, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false })
  await redis.connect().catch((err: unknown) => assert.fail(`Redis on 127.0.0.1:${REDIS_PORT} is needed: ${String(err)}`))
  await redis.quit()

  const args = [MAIN, 'chaos', '--duration', String(CHAOS_SECONDS), '--kill-every', '2.5', '--drain', '60', '--port', '0', '--http', '127.0.0.1:0']
  shop = spawn(process.execPath, [...args, '--data-dir', dir.path, '--redis', `redis://127.0.0.1:${REDIS_PORT}`, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  shop.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  shop.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const code = await new Promise<number | null>((resolve) => shop!.once('exit', resolve))
  assert.ok(stdout.trim().startsWith('{'), `no report (exit ${code}):\n${stderr.slice(-4000)}`)
  const report = JSON.parse(stdout) as Report
  for (const s of report.scenarios) t.diagnostic(`${s.scenario} [${s.mode}]: sent ${s.sent}, acked ${s.acked}, effects ${s.effects}, lost ${s.lost}, duplicated ${s.duplicated}; ${s.details}`)
  t.diagnostic(`${report.kills.total} kill -9s (${JSON.stringify(report.kills.byProcess)}), unplanned exits ${JSON.stringify(report.unplannedExits)}, ${report.seconds} s`)

  assert.ok(report.kills.broker >= 1, 'the broker was killed')
  assert.ok(report.kills.services >= 5, `services were killed ${report.kills.services} times`)
  assert.ok(report.drained, `still unsettled: ${report.unsettled.join('; ')}`)
  for (const s of report.scenarios) {
    assert.ok(s.acked >= 50 && s.effects >= 50, `${s.scenario} carried traffic: ${s.acked} acked, ${s.effects} effects`)
    if (s.mode !== 'at-most-once') assert.equal(s.lost, 0, `${s.scenario} lost nothing: ${s.details}`)
    if (s.mode === 'exactly-once') assert.equal(s.duplicated, 0, `${s.scenario} repeated nothing: ${s.details}`)
    assert.ok(s.ok, `${s.scenario} kept its promise: ${s.details}`)
  }
  const saga = report.scenarios.find((s) => s.scenario.startsWith('subscription saga'))!
  assert.ok(saga.figures['completed']! > 0 && saga.figures['compensated']! > 0, saga.details)
  assert.ok(saga.figures['refunds']! > 0, `some compensations refunded a payment: ${saga.details}`)
  const breaker = report.scenarios.find((s) => s.mode === 'breaker')!
  assert.ok(breaker.figures['opened']! >= 1 && breaker.figures['shortCircuited']! > 0, breaker.details)
  assert.ok(report.ok)
  assert.equal(code, 0)
})
