// The delivery modes under real crashes (the seeds' contract, architecture.md): a consumer service
// process (test/integration/clients/sdk_balance_service.ts) adds each payment's amount to a
// balance in a real database while the test kill -9s it at random moments, and in a second
// variant kill -9s the broker too. Afterwards every payment's applications are counted:
//   at-most-once   never applied twice (some may be lost: committed, then killed before handling)
//   at-least-once  never lost (some may be applied twice: handled, then killed before the commit)
//   exactly-once   applied exactly once, on SQLite and on PostgreSQL
// Each test prints its figures: payments, kills, lost, applied twice.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DatabaseSync } from 'node:sqlite'
import kafkajs from 'kafkajs'
import pg from 'pg'
import { createProducer, type DeliveryMode } from '../../src/index.ts'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { totalsLine } from '../helpers/history.ts'
import { waitFor } from '../helpers/wait.ts'

const SERVICE = fileURLToPath(new URL('../integration/clients/sdk_balance_service.ts', import.meta.url))
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test'
const PARTITIONS = 3
const PAYMENTS = 5_000
const ACCOUNTS = 10

const dir = tempDir()
const broker = new BrokerProcess(join(dir.path, 'broker'))
const schemas: string[] = []
before(() => broker.start())
after(async () => {
  await broker.kill9()
  if (schemas.length > 0) {
    const client = new pg.Client(PG_URL)
    await client.connect()
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await client.end()
  }
  dir.remove()
})

let seed = Number(process.env.SEED ?? 20261201)
/** A seeded random in [0, 1), so a failing run can be repeated (SEED=...). */
function random(): number {
  seed = (seed * 1103515245 + 12345) % 2 ** 31
  return seed / 2 ** 31
}

interface Service {
  child: ChildProcess
  started: Promise<void>
  exited: Promise<number | null>
}

function startService(topic: string, groupId: string, delivery: DeliveryMode, db: string): Service {
  const child = spawn(process.execPath, [SERVICE, broker.bootstrap, topic, groupId, delivery, db, '--instance', 'balance-1', '--lifetime-ms', '120000'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const started = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      if (c.toString().includes('"started"')) resolve()
    })
    void exited.then((code) => reject(new Error(`the service exited (${code}) before it started:\n${stderr}`)))
  })
  started.catch(() => {})
  return { child, started, exited }
}

async function kill9(service: Service): Promise<void> {
  service.child.kill('SIGKILL')
  await service.exited
}

/** How many times each payment's effect landed. */
async function applications(db: string): Promise<Map<number, number>> {
  const counts = new Map<number, number>()
  if (db.startsWith('sqlite:')) {
    const sqlite = new DatabaseSync(db.slice('sqlite:'.length), { readOnly: true })
    try {
      for (const row of sqlite.prepare('SELECT payment_id AS id, COUNT(*) AS n FROM applied GROUP BY payment_id').all()) counts.set(Number(row.id), Number(row.n))
    } catch (err) {
      if (!/no such table/.test(String(err))) throw err
    } finally {
      sqlite.close()
    }
  } else {
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    try {
      const schema = db.slice('postgres:'.length)
      const exists = await client.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [schema, 'applied'])
      if (exists.rowCount) {
        for (const row of (await client.query(`SELECT payment_id AS id, COUNT(*) AS n FROM ${schema}.applied GROUP BY payment_id`)).rows) counts.set(Number(row.id), Number(row.n))
      }
    } finally {
      await client.end()
    }
  }
  return counts
}

/** Whether the group's committed offsets reached the end of every partition. */
async function caughtUp(groupId: string, topic: string): Promise<boolean> {
  const admin = new kafkajs.Kafka({ brokers: [broker.bootstrap], logLevel: kafkajs.logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]))
    const committed = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions
    return committed.every((p) => p.offset === ends.get(p.partition))
  } finally {
    await admin.disconnect()
  }
}

async function producePayments(topic: string): Promise<void> {
  const producer = createProducer({ bootstrap: broker.bootstrap, delivery: 'at-least-once' })
  try {
    for (let start = 0; start < PAYMENTS; start += 100) {
      const batch = Array.from({ length: 100 }, (_, i) => {
        const id = start + i
        const account = `a${id % ACCOUNTS}`
        return { key: account, value: JSON.stringify({ id, account, amount: 1 + (id % 7) }), idempotencyKey: `pay-${id}` }
      })
      await producer.sendBatch(topic, batch)
    }
  } finally {
    await producer.close()
  }
}

interface Variant {
  delivery: DeliveryMode
  db: 'sqlite' | 'postgres'
  /** Also kill -9 the broker, this many times. */
  brokerKills: number
}

const variants: Variant[] = [
  { delivery: 'at-most-once', db: 'sqlite', brokerKills: 0 },
  { delivery: 'at-least-once', db: 'sqlite', brokerKills: 0 },
  { delivery: 'exactly-once', db: 'sqlite', brokerKills: 0 },
  { delivery: 'exactly-once', db: 'postgres', brokerKills: 0 },
  { delivery: 'at-most-once', db: 'sqlite', brokerKills: 2 },
  { delivery: 'at-least-once', db: 'postgres', brokerKills: 2 },
  { delivery: 'exactly-once', db: 'sqlite', brokerKills: 2 },
  { delivery: 'exactly-once', db: 'postgres', brokerKills: 2 },
]

for (const { delivery, db: dbKind, brokerKills } of variants) {
  const what = `${delivery} on ${dbKind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${PAYMENTS} payments through consumer kill -9s${brokerKills ? ` and ${brokerKills} broker kill -9s` : ''}`
  test(what, { timeout: 240_000 }, async (t) => {
    const topic = uniqueName(`pay-${delivery}`)
    const groupId = uniqueName(`balance-${delivery}`)
    let db: string
    if (dbKind === 'sqlite') db = `sqlite:${join(dir.path, `${groupId}.db`)}`
    else {
      const schema = `tideway_modes_${process.pid}_${schemas.length}`
      schemas.push(schema)
      const client = new pg.Client(PG_URL)
      await client.connect()
      await client.query(`CREATE SCHEMA ${schema}`)
      await client.end()
      db = `postgres:${schema}`
    }
    await createTopic(broker.bootstrap, topic, PARTITIONS)
    await producePayments(topic)

    let kills = 0
    let brokerKillsLeft = brokerKills
    for (let cycle = 0; cycle < 6; cycle++) {
      const service = startService(topic, groupId, delivery, db)
      await service.started
      // Let it work a random while: long enough to handle some payments, never all of them.
      const before = (await applications(db)).size
      await waitFor(async () => (await applications(db)).size > before + 50 || (await caughtUp(groupId, topic)), { timeoutMs: 60_000, intervalMs: 20, what: 'progress' })
      await new Promise((resolve) => setTimeout(resolve, random() * 100))
      if (brokerKillsLeft > 0 && cycle % 2 === 1) {
        await broker.kill9()
        await broker.start()
        brokerKillsLeft--
        t.diagnostic(`broker kill -9 and restart in cycle ${cycle}`)
      }
      await kill9(service)
      kills++
      if (await caughtUp(groupId, topic)) break
    }

    // A last run to the end: until every payment was handled (or, at-most-once, all committed).
    const last = startService(topic, groupId, delivery, db)
    await last.started
    await waitFor(
      async () => (delivery === 'at-most-once' ? await caughtUp(groupId, topic) : (await applications(db)).size === PAYMENTS),
      { timeoutMs: 120_000, intervalMs: 200, what: `${delivery} to finish` },
    )
    last.child.kill('SIGTERM') // lets it finish what it is handling
    assert.equal(await last.exited, 0)

    const counts = await applications(db)
    const lost = PAYMENTS - counts.size
    const twice = [...counts.values()].filter((n) => n > 1).length
    t.diagnostic(`${PAYMENTS} payments, ${kills} consumer kill -9s, ${brokerKills} broker kill -9s: ${lost} lost, ${twice} applied more than once`)
    if (delivery === 'at-most-once') assert.equal(twice, 0, 'at-most-once never applies a payment twice')
    if (delivery === 'at-least-once') assert.equal(lost, 0, 'at-least-once never loses a payment')
    if (delivery === 'exactly-once') assert.deepEqual({ lost, twice }, { lost: 0, twice: 0 }, 'exactly-once applies each payment once')
    // Only what the mode promises counts towards the soak's lost and duplicate totals.
    t.diagnostic(totalsLine({ cycles: kills + brokerKills, recordsChecked: PAYMENTS, ...(delivery !== 'at-most-once' ? { lost } : {}), ...(delivery !== 'at-least-once' ? { duplicates: twice } : {}) }))
  })
}
