// The reference shop, started with one command: a Tideway broker and seven services, each its own
// Node process, talking only through Tideway (plus HTTP to the external payment provider and the
// clients' HTTP APIs), under load from simulated clients. See examples/shop/README.md.
//
//   npm run demo                        run until Ctrl-C, then drain and print the report
//   npm run demo -- --duration 60       run 60 s, then drain and report
//   npm run chaos                       60 s of load while services and the broker are kill -9ed
//   npm run chaos -- --duration 30 --json
//
// Options: --port N (Kafka, default 9092; 0 picks one), --http HOST:PORT (the broker's console,
// default 127.0.0.1:8080), --data-dir DIR (default a new directory under the OS temp dir),
// --redis URL, --kill-every S (chaos: mean seconds between kills, default 3), --drain S (longest
// wait for in-flight work after the load stops, default 60), --json (the report as JSON on stdout).
//
// Exit code: 0 when every promise held, 1 when one was broken, 2 on a setup failure or timeout.
import { Admin } from '@platformatic/kafka'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { DEDUP_TOPICS, dbPath, SERVICES, Topic, type ShopConfig } from './common.ts'
import { Load } from './load.ts'
import { formatTable, measure } from './report.ts'
import { Supervisor, type Child } from './supervisor.ts'

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const SERVICE_DIR = fileURLToPath(new URL('./services/', import.meta.url))

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string' },
    port: { type: 'string', default: '9092' },
    http: { type: 'string', default: '127.0.0.1:8080' },
    'data-dir': { type: 'string' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    'kill-every': { type: 'string', default: '3' },
    drain: { type: 'string', default: '60' },
    json: { type: 'boolean', default: false },
  },
})
const mode = positionals[0] ?? 'demo'
if (mode !== 'demo' && mode !== 'chaos') {
  process.stderr.write(`unknown command ${mode}: use demo or chaos\n`)
  process.exit(2)
}
const seconds = (name: string, value: string | undefined) => {
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`--${name} must be a number of seconds, got ${value}\n`)
    process.exit(2)
  }
  return n * 1_000
}
const durationMs = values.duration !== undefined ? seconds('duration', values.duration) : mode === 'chaos' ? 60_000 : Infinity
const killEveryMs = seconds('kill-every', values['kill-every'])
const drainMs = seconds('drain', values.drain)
const runId = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`
const redisPrefix = `tideway:breaker:shop-${runId}:`
const dataDir = values['data-dir'] ?? join(tmpdir(), `tideway-shop-${runId}`)
const say = (text: string): void => void process.stderr.write(`${text}\n`)

mkdirSync(join(dataDir, 'logs'), { recursive: true })
const supervisor = new Supervisor(dataDir)
process.on('exit', () => supervisor.killAllNow())

// First Ctrl-C (or SIGTERM): stop the load, drain, report. Second: stop everything now.
const interrupted = new AbortController()
let interruptedAt = 0
const onSignal = () => {
  // npm forwards the terminal's SIGINT, so one Ctrl-C may arrive twice.
  if (Date.now() - interruptedAt < 1_000) return
  if (interrupted.signal.aborted) {
    say('stopping now')
    process.exit(130)
  }
  say('\nstopping: draining, then the report (Ctrl-C again to stop at once)')
  interruptedAt = Date.now()
  interrupted.abort()
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
if (Number.isFinite(durationMs)) {
  // Nothing may hang the run: a bounded run that overstays its budget ends, children and all.
  setTimeout(() => {
    say('the run took too long; killing everything')
    process.exit(2)
  }, durationMs + drainMs + 180_000).unref()
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** The console flags are newer than the broker may be: pass only those its --help lists. */
function brokerFlags(config: { subscriptionDb: string }): { http: boolean; flags: string[] } {
  const help = spawnSync(process.execPath, [CLI, 'broker', '--help'], { encoding: 'utf8', timeout: 30_000 }).stdout ?? ''
  const flags: string[] = []
  if (help.includes('--console-saga-db')) flags.push('--console-saga-db', `sqlite:${config.subscriptionDb}`)
  if (help.includes('--console-redis')) flags.push('--console-redis', values.redis!)
  if (help.includes('--console-breaker-prefix')) flags.push('--console-breaker-prefix', redisPrefix)
  return { http: help.includes('--http'), flags }
}

async function createTopics(bootstrap: string): Promise<void> {
  const admin = new Admin({ clientId: 'shop-setup', bootstrapBrokers: [bootstrap] })
  try {
    const existing = new Set(await admin.listTopics())
    for (const topic of Object.values(Topic)) {
      if (existing.has(topic)) continue
      const configs = DEDUP_TOPICS.includes(topic) ? [{ name: 'tideway.dedup.enable', value: 'true' }] : []
      await admin.createTopics({ topics: [topic], partitions: 2, configs })
    }
  } finally {
    await admin.close()
  }
}

function startBroker(): { child: Child; bootstrap: () => string; consoleUrl: () => string | null } {
  let port = Number(values.port)
  let consoleUrl: string | null = null
  const { http, flags } = brokerFlags({ subscriptionDb: dbPath(dataDir, 'subscription') })
  // Restarts reuse the ports the first start got, so clients and the console URL stay valid.
  const args = () => {
    const httpFlag = http ? ['--http', consoleUrl ? new URL(consoleUrl).host : values.http!] : []
    return [CLI, 'broker', '--port', String(port), '--data-dir', join(dataDir, 'broker'), ...flags, ...httpFlag]
  }
  const child = supervisor.add({
    name: 'broker',
    args: args(),
    restartArgs: args,
    isReady: (line) => {
      if (!line.includes('"broker started"')) return false
      const started = JSON.parse(line) as { port: number; http?: string }
      port = started.port
      if (started.http) consoleUrl = started.http
      return true
    },
  })
  return { child, bootstrap: () => `127.0.0.1:${port}`, consoleUrl: () => consoleUrl }
}

/**
 * Kills (SIGKILL) a random process every ~killEveryMs and starts it again 0.3–4 s later, in the
 * background, so outages overlap. The broker is killed at least once, past halfway at the latest.
 */
async function chaos(until: number, kills: { at: number; victim: string }[]): Promise<void> {
  const victims = ['broker', ...SERVICES]
  const halfway = Date.now() + (until - Date.now()) / 2
  const restarts: Promise<void>[] = []
  while (Date.now() < until && !interrupted.signal.aborted) {
    await delay(killEveryMs * (0.5 + Math.random()))
    if (Date.now() >= until || interrupted.signal.aborted) break
    const brokerKilled = kills.some((k) => k.victim === 'broker')
    const victim = !brokerKilled && Date.now() > halfway ? 'broker' : victims[Math.floor(Math.random() * victims.length)]!
    const child = supervisor.get(victim)
    if (!child.running) continue
    await child.kill9()
    kills.push({ at: Date.now(), victim })
    say(`chaos: kill -9 ${victim}`)
    restarts.push(
      delay(300 + Math.random() * 3_700)
        .then(() => child.ensureRunning())
        .catch((err: unknown) => say(`chaos: ${victim} did not come back: ${String(err)}`)),
    )
  }
  await Promise.all(restarts)
}

async function main(): Promise<number> {
  const started = Date.now()
  const broker = startBroker()
  await broker.child.start()
  await createTopics(broker.bootstrap())
  const config: ShopConfig = {
    dataDir,
    bootstrap: broker.bootstrap(),
    ports: { orders: await freePort(), subscription: await freePort(), provider: await freePort() },
    redisUrl: values.redis!,
    redisPrefix,
    providerFailRate: 0.2,
    providerHangRate: 0.05,
  }
  for (const name of SERVICES) {
    supervisor.add({
      name,
      args: [join(SERVICE_DIR, `${name}.ts`)],
      env: { SHOP_CONFIG: JSON.stringify(config) },
      isReady: (line) => line.includes('"event":"ready"'),
    })
  }
  await Promise.all(SERVICES.map((name) => supervisor.get(name).start()))
  const consoleUrl = broker.consoleUrl()
  say(
    [
      `tideway shop (${mode}) is up in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      `  broker      ${config.bootstrap}${consoleUrl ? `   console ${consoleUrl}` : ''}`,
      `  orders      POST http://127.0.0.1:${config.ports.orders}/orders {"id","account","amount"}`,
      `  subscribe   POST http://127.0.0.1:${config.ports.subscription}/subscriptions {"id","user","plan","cents","email"}`,
      `  data, logs  ${dataDir}  (logs/*.log, one SQLite database per service)`,
      `  sagas       node src/cli/main.ts sagas list --db sqlite:${dbPath(dataDir, 'subscription')}`,
      `  breaker     node src/cli/main.ts breakers list --redis ${config.redisUrl} --prefix ${config.redisPrefix}`,
      mode === 'chaos' ? `  chaos       kill -9 every ~${killEveryMs / 1000} s for ${durationMs / 1000} s` : `  load runs ${Number.isFinite(durationMs) ? `for ${durationMs / 1000} s` : 'until Ctrl-C'}`,
    ].join('\n'),
  )

  const load = new Load(config)
  load.start()
  const until = Date.now() + durationMs
  const kills: { at: number; victim: string }[] = []
  const progress = setInterval(() => {
    const counts = load.counts()
    say(`load: ${Object.entries(counts).map(([s, c]) => `${s} ${c.acked}/${c.sent}`).join(', ')} acknowledged`)
  }, 10_000)
  if (mode === 'chaos') await chaos(until, kills)
  else await Promise.race([delay(Math.min(durationMs, 2 ** 31 - 1)), new Promise((resolve) => interrupted.signal.addEventListener('abort', resolve))])
  clearInterval(progress)

  say('load stopped; waiting for requests in flight')
  await load.stop()
  for (const child of supervisor.children) await child.ensureRunning()
  const drainUntil = Date.now() + drainMs
  let unsettled = measure(dataDir).unsettled
  let lastSaid = 0
  while (unsettled.length > 0 && Date.now() < drainUntil) {
    if (Date.now() - lastSaid > 5_000) {
      say(`draining: ${unsettled.join('; ')}`)
      lastSaid = Date.now()
    }
    await delay(1_000)
    unsettled = measure(dataDir).unsettled
  }
  say(unsettled.length === 0 ? 'drained: everything acknowledged has had its effect' : `drain gave up after ${drainMs / 1000} s: ${unsettled.join('; ')}`)
  await supervisor.stopAll('broker')

  const { scenarios } = measure(dataDir)
  const byProcess = Object.fromEntries(supervisor.children.map((c) => [c.name, c.kills]))
  const crashes = Object.fromEntries(supervisor.children.filter((c) => c.crashes > 0).map((c) => [c.name, c.crashes]))
  const ok = scenarios.every((s) => s.ok)
  if (values.json) {
    const brokerKills = byProcess['broker'] ?? 0
    const report = {
      mode,
      ok,
      dataDir,
      seconds: Math.round((Date.now() - started) / 1000),
      kills: { total: kills.length, broker: brokerKills, services: kills.length - brokerKills, byProcess, timeline: kills },
      unplannedExits: crashes,
      drained: unsettled.length === 0,
      unsettled,
      scenarios,
    }
    process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  } else {
    const killed = Object.entries(byProcess).filter(([, n]) => n > 0)
    process.stdout.write(
      [
        '',
        mode === 'chaos' ? `kill -9s: ${kills.length} (${killed.map(([name, n]) => `${name} ${n}`).join(', ') || 'none'})` : '',
        Object.keys(crashes).length > 0 ? `unplanned exits, restarted: ${Object.entries(crashes).map(([n, c]) => `${n} ${c}`).join(', ')}` : '',
        formatTable(scenarios),
        '',
        ok ? 'every promise held' : 'A PROMISE WAS BROKEN',
        '',
      ]
        .filter((line, i) => i > 2 || line !== '')
        .join('\n'),
    )
  }
  return ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`the shop failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    process.exit(2)
  },
)
