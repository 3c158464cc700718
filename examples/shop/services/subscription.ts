// The subscription service: POST /subscriptions starts an orchestrated saga (idempotent by the
// client's id, so a client that retries starts nothing twice) and answers once it is stored:
//
//   1. subscription  its own record, applied once per step key (handleIdempotently)
//   2. payment       a command to billing over Tideway; declined above DECLINE_ABOVE_CENTS
//   3. notification  a welcome mail, a command to the notification service; bounces for
//                    addresses at BOUNCING_DOMAIN, after the payment, so the saga refunds it
//
// A failed step compensates the steps before it, newest first. The orchestrator stores every
// move in this service's database, so a kill -9 anywhere resumes each instance where it was.
import { createServer } from 'node:http'
import { CommandChannel, defineSaga, handleIdempotently, SagaOrchestrator, sqliteStore } from '../../../src/index.ts'
import { dbPath, emit, jsonBody, now, onShutdown, serviceLogger, shopConfig, Topic } from '../common.ts'

interface Subscribe {
  user: string
  plan: string
  cents: number
  email: string
}

const config = shopConfig()
const logger = serviceLogger('subscription')
const store = sqliteStore(dbPath(config.dataDir, 'subscription'))
await store.migrate()
await store.transaction(async (tx) => {
  await tx.query('CREATE TABLE IF NOT EXISTS subscriptions (instance TEXT NOT NULL, user_id TEXT NOT NULL, plan TEXT NOT NULL, status TEXT NOT NULL)')
  await tx.query('CREATE TABLE IF NOT EXISTS subscription_effects (instance TEXT NOT NULL, action TEXT NOT NULL, at INTEGER NOT NULL)')
})

// Static membership: a restarted orchestrator takes its reply partitions back at once.
const commands = new CommandChannel({ bootstrap: config.bootstrap, replyTopic: Topic.sagaReplies, groupInstanceId: 'subscription-1', sessionTimeoutMs: 6_000, logger })
const step = { timeoutMs: 5_000, retry: { attempts: 4, initialDelayMs: 300, maxDelayMs: 2_000 } }

const subscribe = defineSaga<Subscribe>({
  name: 'subscribe',
  version: 1,
  steps: [
    {
      name: 'subscription',
      ...step,
      invoke: async (ctx) => {
        const { response } = await handleIdempotently(store, { scope: 'subscription', key: ctx.idempotencyKey }, async (tx) => {
          await tx.query(`INSERT INTO subscriptions VALUES (?, ?, ?, 'active')`, [ctx.instanceId, ctx.input.user, ctx.input.plan])
          await tx.query(`INSERT INTO subscription_effects VALUES (?, 'create', ?)`, [ctx.instanceId, now()])
          return { subscription: ctx.instanceId }
        })
        return response
      },
      compensate: async (ctx) => {
        await handleIdempotently(store, { scope: 'subscription', key: ctx.idempotencyKey }, async (tx) => {
          await tx.query(`UPDATE subscriptions SET status = 'cancelled' WHERE instance = ?`, [ctx.instanceId])
          await tx.query(`INSERT INTO subscription_effects VALUES (?, 'cancel', ?)`, [ctx.instanceId, now()])
          return { cancelled: true }
        })
      },
    },
    {
      name: 'payment',
      ...step,
      invoke: (ctx) => commands.request(Topic.paymentCommands, { action: 'charge', instance: ctx.instanceId, user: ctx.input.user, cents: ctx.input.cents }, ctx),
      compensate: async (ctx) => {
        await commands.request(Topic.paymentCommands, { action: 'refund', instance: ctx.instanceId, user: ctx.input.user, cents: ctx.input.cents }, ctx)
      },
    },
    {
      name: 'notification',
      ...step,
      invoke: (ctx) => commands.request(Topic.welcomeCommands, { instance: ctx.instanceId, user: ctx.input.user, email: ctx.input.email, plan: ctx.input.plan }, ctx),
    },
  ],
})

const orchestrator = new SagaOrchestrator({ store, sagas: [subscribe], logger, timerPollIntervalMs: 200, sweepIntervalMs: 1_000 })
await commands.start()
await orchestrator.start()

const server = createServer(async (req, res) => {
  const reply = (status: number, payload: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload))
  try {
    if (req.method !== 'POST' || req.url !== '/subscriptions') return reply(404, { error: 'not found' })
    const { id, user, plan, cents, email } = await jsonBody(req)
    if (typeof id !== 'string' || typeof user !== 'string' || typeof plan !== 'string' || !Number.isInteger(cents) || typeof email !== 'string') {
      return reply(400, { error: 'id, user, plan, cents and email are required' })
    }
    const { created } = await orchestrator.startSaga('subscribe', id, { user, plan, cents: cents as number, email })
    reply(202, { id, created })
  } catch (err) {
    reply(500, { error: err instanceof Error ? err.message : String(err) })
  }
})
server.listen(config.ports.subscription, '127.0.0.1', () => emit({ event: 'ready', port: config.ports.subscription }))

onShutdown(async () => {
  server.close()
  await orchestrator.stop()
  await commands.stop()
  await store.close()
})
