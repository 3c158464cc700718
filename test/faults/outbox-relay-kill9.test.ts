// The transactional outbox under relay crashes: a writer process places 2,000 orders on
// PostgreSQL, each order row and its event in one transaction (4 at a time, so ids commit out of
// order), while relay processes are kill -9ed at random moments mid-publish, some between
// publishing a batch and marking it published. Every event must appear on the topic exactly once:
// a republished row carries the same idempotency key and the Tideway topic (tideway.dedup.enable)
// drops the repeat, and no row is skipped however the commits interleave.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { pythonReadAll } from '../helpers/keyed-records.ts'
import { requirePythonKafka } from '../helpers/tools.ts'

const SERVICE = fileURLToPath(new URL('../integration/clients/sdk_outbox_service.ts', import.meta.url))
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test'
const ORDERS = 2_000
const PARTITIONS = 3
const schema = `tideway_outbox_${process.pid}`

const dir = tempDir()
const broker = new BrokerProcess(join(dir.path, 'broker'))
before(async () => {
  await broker.start()
  const client = new pg.Client(PG_URL)
  await client.connect()
  await client.query(`CREATE SCHEMA ${schema}`)
  await client.end()
})
after(async () => {
  await broker.kill9()
  const client = new pg.Client(PG_URL)
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await client.end()
  dir.remove()
})

function run(args: string[]): { child: ChildProcess; started: Promise<void>; exited: Promise<number | null>; output: () => string } {
  const child = spawn(process.execPath, [SERVICE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)))
  const killer = setTimeout(() => child.kill('SIGKILL'), 180_000)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (clearTimeout(killer), resolve(code))))
  const started = new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      if (stdout.includes('"started"')) (clearInterval(poll), resolve())
    }, 10)
    void exited.then((code) => (clearInterval(poll), reject(new Error(`exited (${code}) before starting:\n${stderr}`))))
  })
  started.catch(() => {})
  return { child, started, exited, output: () => stdout }
}

async function published(): Promise<number> {
  const client = new pg.Client(PG_URL)
  await client.connect()
  try {
    const { rows } = await client.query(`SELECT COUNT(*)::int AS n FROM ${schema}.tideway_outbox WHERE published_at IS NOT NULL`)
    return rows[0].n
  } catch {
    return 0
  } finally {
    await client.end()
  }
}

test('relays kill -9ed mid-publish: every order\'s event is on the topic exactly once', { timeout: 240_000 }, async (t) => {
  requirePythonKafka()
  const topic = uniqueName('orders-placed')
  await createTopic(broker.bootstrap, topic, PARTITIONS, { 'tideway.dedup.enable': 'true' })
  const writer = run(['write', schema, String(ORDERS), '--topic', topic])
  await writer.started

  let kills = 0
  let seed = Number(process.env.SEED ?? 7)
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31)
  for (let cycle = 0; cycle < 8; cycle++) {
    const relay = run(['relay', schema, broker.bootstrap, '--batch', '50'])
    await relay.started
    const before = await published()
    // Kill it once it has published something, at a random moment after that.
    for (let i = 0; i < 500 && (await published()) <= before; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    await new Promise((resolve) => setTimeout(resolve, random() * 150))
    relay.child.kill('SIGKILL')
    await relay.exited
    kills++
  }
  assert.equal(await writer.exited, 0)
  const last = run(['relay', schema, broker.bootstrap, '--drain'])
  assert.equal(await last.exited, 0)

  const read = await pythonReadAll(broker.bootstrap, topic, PARTITIONS)
  const perOrder = new Map<string, number>()
  for (const [, , key] of read.records) perOrder.set(key, (perOrder.get(key) ?? 0) + 1)
  const missing = Array.from({ length: ORDERS }, (_, i) => `order-${i}`).filter((k) => !perOrder.has(k))
  const twice = [...perOrder].filter(([, n]) => n > 1).map(([k]) => k)
  const offsets = Object.values(read.ends).reduce((a, b) => a + b, 0)
  t.diagnostic(`${ORDERS} orders, ${kills} relay kill -9s: ${missing.length} events missing, ${twice.length} stored twice; ${offsets - read.records.length} offsets taken by republished rows the broker dropped`)
  assert.deepEqual({ missing: missing.slice(0, 5), twice: twice.slice(0, 5) }, { missing: [], twice: [] })
  assert.equal(read.records.length, ORDERS)
})
