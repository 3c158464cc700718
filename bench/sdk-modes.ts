// End to end per delivery mode (src/sdk/): RECORDS 1 KiB payments produced by the mode's producer
// and handled by the mode's consumer, which adds each amount to a balance in a real database
// (SQLite file, or PostgreSQL on 127.0.0.1:5432), timed from the first send to the last record
// handled. The handler's write is the same in every mode: at-most-once and at-least-once write in
// a transaction of their own, exactly-once in the SDK's transaction with the dedup row and offset.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import { createConsumer, createProducer, postgresStore, sqliteStore, type DeliveryMode, type Store } from '../src/index.ts'
import { Admin } from '@platformatic/kafka'

const PG_URL = process.env.TIDEWAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const PARTITIONS = 3
const VALUE = 'x'.repeat(1000)

export interface ModeResult {
  name: string
  records: number
  seconds: number
  recordsPerSec: number
}

/** A fresh SDK store for one run: a new SQLite file in `dir`, or a new PostgreSQL schema dropped afterwards. */
export async function withDatabase<T>(kind: 'sqlite' | 'postgres', dir: string, use: (store: Store) => Promise<T>): Promise<T> {
  if (kind === 'sqlite') {
    const store = sqliteStore(join(dir, `bench-${randomBytes(4).toString('hex')}.db`))
    try {
      return await use(store)
    } finally {
      await store.close()
    }
  }
  const schema = `tideway_bench_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client(PG_URL)
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  const store = postgresStore({ connectionString: PG_URL, searchPath: schema })
  try {
    return await use(store)
  } finally {
    await store.close()
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}

export async function deliveryModeRun(bootstrap: string, dir: string, delivery: DeliveryMode, db: 'sqlite' | 'postgres', records: number): Promise<ModeResult> {
  const topic = `bench-${delivery}-${db}-${randomBytes(3).toString('hex')}`
  const admin = new Admin({ clientId: 'bench-modes', bootstrapBrokers: [bootstrap] })
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS })
  await admin.close()
  return withDatabase(db, dir, async (store) => {
    await store.migrate()
    const p = (n: number) => (store.dialect === 'postgres' ? `$${n}` : '?')
    await store.transaction((tx) => tx.query('CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, amount BIGINT NOT NULL)'))
    let handled = 0
    let done: () => void = () => {}
    const finished = new Promise<void>((resolve) => (done = resolve))
    const consumer = createConsumer({
      bootstrap,
      groupId: `${topic}-group`,
      topics: [topic],
      delivery,
      store,
      handler: async (message, ctx) => {
        const account = message.key!.toString()
        const apply = (tx: NonNullable<typeof ctx.tx>) =>
          tx.query(`INSERT INTO balances (account, amount) VALUES (${p(1)}, 1) ON CONFLICT (account) DO UPDATE SET amount = balances.amount + 1`, [account])
        if (ctx.tx) await apply(ctx.tx)
        else await store.transaction(apply)
        if (++handled === records) done()
      },
    })
    await consumer.start()
    const producer = createProducer({ bootstrap, delivery })
    const start = performance.now()
    try {
      for (let sent = 0; sent < records; sent += 100) {
        const batch = Array.from({ length: Math.min(100, records - sent) }, (_, i) => ({
          key: `account-${(sent + i) % 50}`,
          value: VALUE,
          idempotencyKey: `${topic}-${sent + i}`,
        }))
        await producer.sendBatch(topic, batch)
      }
      await finished
    } finally {
      await producer.close()
      await consumer.stop()
    }
    const seconds = (performance.now() - start) / 1000
    return { name: `sdk end to end: ${delivery}, ${db === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, records, seconds: Math.round(seconds * 100) / 100, recordsPerSec: Math.round(records / seconds) }
  })
}
