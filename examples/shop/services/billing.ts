// The billing service: keeps account balances, exactly once.
//
// Charges (from orders) are read by an exactly-once consumer. In the one transaction that also
// stores the consumer's offset and inbox row, the handler does what seed 0 describes: it looks
// the charge's sequence_key up among the keys it has applied (the SDK's request table, via
// claimRequest); a new key changes the balance, a known one (an `is_retry` whose first attempt
// landed) changes nothing. Either way it answers with a confirmation through its own outbox, in
// that same transaction, so a crash can neither apply a charge without its answer nor answer one
// it did not apply. Every application is also logged in `applied`, which has no unique key: a
// charge applied twice would show up there as two rows.
//
// It is also the saga's payment service: charge and refund commands, applied once per step key.
import {
  createConsumer,
  createOutboxRelay,
  enqueueEvent,
  ExpectedFailure,
  serveCommands,
  sqliteStore,
  type Json,
} from '../../../src/index.ts'
import { dbPath, DECLINE_ABOVE_CENTS, emit, now, onShutdown, serviceLogger, shopConfig, Topic } from '../common.ts'

const config = shopConfig()
const logger = serviceLogger('billing')
const store = sqliteStore(dbPath(config.dataDir, 'billing'))
await store.migrate()
await store.transaction(async (tx) => {
  await tx.query('CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, cents INTEGER NOT NULL)')
  await tx.query('CREATE TABLE IF NOT EXISTS applied (sequence_key TEXT NOT NULL, account TEXT NOT NULL, amount INTEGER NOT NULL, is_retry INTEGER NOT NULL, at INTEGER NOT NULL)')
  await tx.query('CREATE TABLE IF NOT EXISTS charge_messages (sequence_key TEXT NOT NULL, is_retry INTEGER NOT NULL, applied INTEGER NOT NULL)')
  // No unique keys here either: serveCommands' stored answers are what apply a step once.
  await tx.query('CREATE TABLE IF NOT EXISTS payments (instance TEXT NOT NULL, user_id TEXT NOT NULL, cents INTEGER NOT NULL, status TEXT NOT NULL)')
  await tx.query('CREATE TABLE IF NOT EXISTS payment_effects (instance TEXT NOT NULL, action TEXT NOT NULL, at INTEGER NOT NULL)')
})

interface Charge {
  sequence_key: string
  order_id: string
  account: string
  amount: number
  is_retry: boolean
}

const charges = createConsumer<Charge>({
  bootstrap: config.bootstrap,
  groupId: 'shop-billing',
  groupInstanceId: 'billing-1',
  sessionTimeoutMs: 6_000,
  topics: [Topic.charges],
  delivery: 'exactly-once',
  store,
  logger,
  decode: (value) => JSON.parse(value!.toString()),
  handler: async (message, ctx) => {
    const tx = ctx.tx!
    const charge = message.body
    const claim = await tx.claimRequest('charge', charge.sequence_key, now())
    const applied = claim.state === 'new'
    if (applied) {
      await tx.query('INSERT INTO balances VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET cents = cents + excluded.cents', [charge.account, charge.amount])
      await tx.query('INSERT INTO applied VALUES (?, ?, ?, ?, ?)', [charge.sequence_key, charge.account, charge.amount, charge.is_retry ? 1 : 0, now()])
      await tx.completeRequest('charge', charge.sequence_key, Buffer.from('applied'))
    }
    await tx.query('INSERT INTO charge_messages VALUES (?, ?, ?)', [charge.sequence_key, charge.is_retry ? 1 : 0, applied ? 1 : 0])
    const confirmation = { sequence_key: charge.sequence_key, order_id: charge.order_id, account: charge.account, amount: charge.amount, applied }
    await enqueueEvent(tx, { topic: Topic.confirmations, key: charge.account, value: JSON.stringify(confirmation) })
  },
})

const relay = createOutboxRelay({ store, bootstrap: config.bootstrap, idempotencyKeyPrefix: 'billing-outbox-', logger })

interface PaymentCommand {
  action: 'charge' | 'refund'
  instance: string
  user: string
  cents: number
}

await charges.start()
relay.start()
const payments = await serveCommands({
  bootstrap: config.bootstrap,
  topic: Topic.paymentCommands,
  groupId: 'shop-payments',
  groupInstanceId: 'payments-1',
  sessionTimeoutMs: 6_000,
  store,
  logger,
  handle: async ({ body }, tx): Promise<Json> => {
    const command = body as unknown as PaymentCommand
    if (command.action === 'refund') {
      // Nothing to undo when the charge never landed (its step timed out before it did).
      const refunded = await tx.query(`UPDATE payments SET status = 'refunded' WHERE instance = ? AND status = 'charged' RETURNING instance`, [command.instance])
      if (refunded.length > 0) await tx.query(`INSERT INTO payment_effects VALUES (?, 'refund', ?)`, [command.instance, now()])
      return { refunded: refunded.length > 0 }
    }
    if (command.cents > DECLINE_ABOVE_CENTS) throw new ExpectedFailure(`card declined for ${command.cents} cents`)
    await tx.query(`INSERT INTO payments VALUES (?, ?, ?, 'charged')`, [command.instance, command.user, command.cents])
    await tx.query(`INSERT INTO payment_effects VALUES (?, 'charge', ?)`, [command.instance, now()])
    return { charged: command.cents }
  },
})
emit({ event: 'ready' })

onShutdown(async () => {
  await payments.stop()
  await charges.stop()
  await relay.stop()
  await store.close()
})
