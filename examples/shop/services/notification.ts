// The notification service: push messages, at-least-once, with an idempotent handler.
//
// A push that is not sent is a complaint; a push sent twice is a shrug, and sending it again is
// cheap to make harmless: the handler records the message id, and only a new id is "sent". So the
// consumer handles, then commits (a crash in between repeats the message, never loses it). Every
// delivery is logged in `deliveries` (no unique key), so the repeats at-least-once brings are
// visible next to the effects, which stay one per message.
//
// It also sends the subscription saga's welcome mail (a command, applied once per step key); the
// mail to an address at BOUNCING_DOMAIN bounces, which fails the saga after its payment.
import { createConsumer, ExpectedFailure, serveCommands, sqliteStore, type Json } from '../../../src/index.ts'
import { BOUNCING_DOMAIN, dbPath, emit, now, onShutdown, serviceLogger, shopConfig, Topic } from '../common.ts'

const config = shopConfig()
const logger = serviceLogger('notification')
const store = sqliteStore(dbPath(config.dataDir, 'notification'))
await store.migrate()
await store.transaction(async (tx) => {
  await tx.query('CREATE TABLE IF NOT EXISTS deliveries (id TEXT NOT NULL, at INTEGER NOT NULL)')
  await tx.query('CREATE TABLE IF NOT EXISTS sent (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, text TEXT NOT NULL)')
  await tx.query('CREATE TABLE IF NOT EXISTS welcome_effects (instance TEXT NOT NULL, email TEXT NOT NULL, at INTEGER NOT NULL)')
})

const pushes = createConsumer<{ id: string; user: string; text: string }>({
  bootstrap: config.bootstrap,
  groupId: 'shop-notifications',
  groupInstanceId: 'notification-1',
  sessionTimeoutMs: 6_000,
  topics: [Topic.notifications],
  delivery: 'at-least-once',
  // Fewer, coalesced commits; the price is a wider window of messages a crash hands out again.
  commitIntervalMs: 1_000,
  logger,
  decode: (value) => JSON.parse(value!.toString()),
  handler: async (message) => {
    const push = message.body
    await store.transaction(async (tx) => {
      await tx.query('INSERT INTO deliveries VALUES (?, ?)', [push.id, now()])
      // The idempotent effect: a repeated id sends nothing.
      await tx.query('INSERT INTO sent VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING', [push.id, push.user, push.text])
    })
  },
})
await pushes.start()

const welcomes = await serveCommands({
  bootstrap: config.bootstrap,
  topic: Topic.welcomeCommands,
  groupId: 'shop-welcome',
  groupInstanceId: 'welcome-1',
  sessionTimeoutMs: 6_000,
  store,
  logger,
  handle: async ({ body }, tx): Promise<Json> => {
    const { instance, email } = body as { instance: string; email: string }
    if (email.endsWith(BOUNCING_DOMAIN)) throw new ExpectedFailure(`mail to ${email} bounced`)
    await tx.query('INSERT INTO welcome_effects VALUES (?, ?, ?)', [instance, email, now()])
    return { sent: true }
  },
})
emit({ event: 'ready' })

onShutdown(async () => {
  await welcomes.stop()
  await pushes.stop()
  await store.close()
})
