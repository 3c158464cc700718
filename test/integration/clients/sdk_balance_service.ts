// A consumer service as its own process, for the delivery-mode crash tests: it reads payments
// {"id": n, "account": "a3", "amount": 7} and adds the amount to the account's balance in a real
// database, with the SDK consumer in the given delivery mode. Every application of a payment is
// also logged in `applied(payment_id)` (no unique key), so the test can count, per payment, how
// many times its effect landed.
//   exactly-once: both writes go through the handler's transaction (ctx.tx), with the SDK's dedup
//                 row and offset.
//   at-least-once, at-most-once: the service writes in a transaction of its own, as a service
//                 without the SDK's store would.
// Prints {"event":"started"} once consuming and {"event":"applied","count":n} every 100 payments.
// Exits by itself after --lifetime-ms.
//
// Usage: node sdk_balance_service.ts <bootstrap> <topic> <group> <delivery> <db>
//        db: sqlite:<file> | postgres:<schema>   [--lifetime-ms N] [--instance ID]
import { parseArgs } from 'node:util'
import { createConsumer, jsonLogger, type DeliveryMode, type LogLevel, type Store } from '../../../src/index.ts'
import { postgresStore } from '../../../src/stores/postgres.ts'
import { sqliteStore } from '../../../src/stores/sqlite.ts'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'lifetime-ms': { type: 'string', default: '120000' }, instance: { type: 'string' }, 'log-level': { type: 'string', default: 'silent' } },
})
const [bootstrap, topic, groupId, delivery, db] = positionals
if (!bootstrap || !topic || !groupId || !delivery || !db) {
  process.stderr.write('usage: sdk_balance_service.ts <bootstrap> <topic> <group> <delivery> <db>\n')
  process.exit(2)
}

function openStore(db: string): Store {
  if (db.startsWith('sqlite:')) return sqliteStore(db.slice('sqlite:'.length))
  if (db.startsWith('postgres:')) return postgresStore({ connectionString: 'postgres://postgres@127.0.0.1:5432/test', searchPath: db.slice('postgres:'.length) })
  throw new Error(`unknown db ${db}`)
}

const store = openStore(db)
await store.migrate()
const postgres = store.dialect === 'postgres'
const p = (n: number) => (postgres ? `$${n}` : '?')
await store.transaction(async (tx) => {
  await tx.query('CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, amount BIGINT NOT NULL)')
  await tx.query('CREATE TABLE IF NOT EXISTS applied (payment_id BIGINT NOT NULL)')
})

let applied = 0
const emit = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n')

const consumer = createConsumer({
  bootstrap,
  groupId,
  topics: [topic],
  delivery: delivery as DeliveryMode,
  store,
  logger: jsonLogger({ level: values['log-level'] as LogLevel }),
  sessionTimeoutMs: 6_000,
  heartbeatIntervalMs: 500,
  ...(values.instance ? { groupInstanceId: values.instance } : {}),
  retry: { attempts: 20, initialDelayMs: 20, maxDelayMs: 500 },
  handler: async (message, ctx) => {
    const payment = JSON.parse(message.value!.toString()) as { id: number; account: string; amount: number }
    const apply = async (tx: NonNullable<typeof ctx.tx>) => {
      await tx.query(
        `INSERT INTO balances (account, amount) VALUES (${p(1)}, ${p(2)}) ON CONFLICT (account) DO UPDATE SET amount = balances.amount + excluded.amount`,
        [payment.account, payment.amount],
      )
      await tx.query(`INSERT INTO applied (payment_id) VALUES (${p(1)})`, [payment.id])
    }
    if (ctx.tx) await apply(ctx.tx)
    else await store.transaction(apply)
    if (++applied % 100 === 0) emit({ event: 'applied', count: applied })
  },
})
await consumer.start()
emit({ event: 'started' })
const stop = async () => {
  await consumer.stop()
  await store.close()
  process.exit(0)
}
process.once('SIGTERM', () => void stop())
setTimeout(() => void stop(), Number(values['lifetime-ms'])).unref()
