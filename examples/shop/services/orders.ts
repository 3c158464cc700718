// The orders service: takes orders over HTTP, has the card authorised by the external payment
// provider through a circuit breaker whose state is shared in Redis, and asks billing to charge
// the account: seed 0's pattern, over topics.
//
// - An order and its outgoing events (the charge for billing, `orders.placed` for reporting) are
//   written in ONE transaction, with the transactional outbox; the relay publishes them.
// - Every charge carries a `sequence_key`. Until billing's confirmation arrives, the charge is
//   sent again with the same key and `is_retry: true`; billing applies a key once.
// - A failed or short-circuited authorisation leaves the order `pending`, retried later; after
//   MAX_AUTHORISATIONS real failures it is `rejected`. An acknowledged order is never dropped.
import { createServer } from 'node:http'
import { Redis } from 'ioredis'
import {
  CircuitOpenError,
  createCircuitBreaker,
  createConsumer,
  createOutboxRelay,
  enqueueEvent,
  sharedState,
  sqliteStore,
  type StoreTransaction,
} from '../../../src/index.ts'
import { dbPath, emit, jsonBody, MAX_AUTHORISATIONS, now, onShutdown, serviceLogger, shopConfig, Topic } from '../common.ts'

const config = shopConfig()
const logger = serviceLogger('orders')
const store = sqliteStore(dbPath(config.dataDir, 'orders'))
await store.migrate()
await store.transaction(async (tx) => {
  await tx.query(`CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL,
                    status TEXT NOT NULL, attempts INTEGER NOT NULL, next_try_at INTEGER NOT NULL, created_at INTEGER NOT NULL)`)
  await tx.query(`CREATE TABLE IF NOT EXISTS charges (sequence_key TEXT PRIMARY KEY, order_id TEXT NOT NULL, account TEXT NOT NULL,
                    amount INTEGER NOT NULL, sends INTEGER NOT NULL, last_sent_at INTEGER NOT NULL, confirmed_at INTEGER)`)
  // Logs for the report: every provider call's outcome, and every breaker transition seen.
  await tx.query('CREATE TABLE IF NOT EXISTS provider_calls (at INTEGER NOT NULL, order_id TEXT NOT NULL, outcome TEXT NOT NULL)')
  await tx.query('CREATE TABLE IF NOT EXISTS breaker_transitions (at INTEGER NOT NULL, from_state TEXT, to_state TEXT, reason TEXT, observed INTEGER)')
})

// Fail fast while Redis is down: the breaker then decides locally instead of waiting.
const redis = new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })
redis.on('error', () => {})
const breaker = createCircuitBreaker<number>({
  caller: 'orders',
  callee: 'payment-provider',
  window: { kind: 'count', size: 20 },
  minimumCalls: 8,
  failureRateThreshold: 0.5,
  openDurationMs: 3_000,
  callTimeoutMs: 1_000,
  isFailure: (outcome) => !outcome.ok || outcome.value >= 500,
  state: sharedState({ redis, prefix: config.redisPrefix }),
})
breaker.on('transition', (e) => {
  store
    .transaction((tx) => tx.query('INSERT INTO breaker_transitions VALUES (?, ?, ?, ?, ?)', [now(), e.from, e.to, e.reason, e.observed ? 1 : 0]))
    .catch((err: unknown) => logger.warn('could not log a transition', { err }))
})

type Authorisation = { outcome: 'ok' | 'failed' | 'timeout' } | { outcome: 'short-circuited'; retryAfterMs: number }

async function authorise(orderId: string, amount: number): Promise<Authorisation> {
  try {
    const status = await breaker.execute(async (signal) => {
      const res = await fetch(`http://127.0.0.1:${config.ports.provider}/authorize`, { method: 'POST', body: JSON.stringify({ orderId, amount }), signal })
      await res.arrayBuffer()
      return res.status
    })
    return { outcome: status < 500 ? 'ok' : 'failed' }
  } catch (err) {
    if (err instanceof CircuitOpenError) return { outcome: 'short-circuited', retryAfterMs: err.retryAfterMs }
    return { outcome: (err as { code?: string }).code === 'TIDEWAY_ERR_CALL_TIMEOUT' ? 'timeout' : 'failed' }
  }
}

interface Order {
  id: string
  account: string
  amount: number
}

async function accept(tx: StoreTransaction, order: Order): Promise<void> {
  const sequenceKey = `charge-${order.id}`
  await tx.query(`UPDATE orders SET status = 'accepted' WHERE id = ?`, [order.id])
  await tx.query('INSERT INTO charges VALUES (?, ?, ?, ?, 1, ?, NULL)', [sequenceKey, order.id, order.account, order.amount, now()])
  const charge = { sequence_key: sequenceKey, order_id: order.id, account: order.account, amount: order.amount, is_retry: false }
  await enqueueEvent(tx, { topic: Topic.charges, key: order.account, value: JSON.stringify(charge) })
  await enqueueEvent(tx, { topic: Topic.ordersPlaced, key: order.account, value: JSON.stringify({ order_id: order.id, account: order.account, amount: order.amount }) })
}

/** Records one authorisation's outcome and moves the (already stored) order on. */
async function settle(tx: StoreTransaction, order: Order, auth: Authorisation, attempts: number): Promise<string> {
  await tx.query('INSERT INTO provider_calls VALUES (?, ?, ?)', [now(), order.id, auth.outcome])
  if (auth.outcome === 'ok') {
    await accept(tx, order)
    return 'accepted'
  }
  if (auth.outcome === 'short-circuited') {
    // Not the provider's verdict: wait for the breaker rather than spend an attempt.
    await tx.query('UPDATE orders SET next_try_at = ? WHERE id = ?', [now() + Math.max(auth.retryAfterMs, 500), order.id])
    return 'pending'
  }
  const status = attempts >= MAX_AUTHORISATIONS ? 'rejected' : 'pending'
  const backoffMs = Math.min(500 * 2 ** attempts, 5_000)
  await tx.query('UPDATE orders SET status = ?, attempts = ?, next_try_at = ? WHERE id = ?', [status, attempts, now() + backoffMs, order.id])
  return status
}

async function placeOrder(order: Order): Promise<string> {
  const [known] = await store.transaction((tx) => tx.query<{ status: string }>('SELECT status FROM orders WHERE id = ?', [order.id]))
  if (known) return known.status // the client's retry of an order already taken
  const auth = await authorise(order.id, order.amount)
  return store.transaction(async (tx) => {
    const inserted = await tx.query(
      `INSERT INTO orders VALUES (?, ?, ?, 'pending', 0, 0, ?) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [order.id, order.account, order.amount, now()],
    )
    if (inserted.length === 0) {
      const [row] = await tx.query<{ status: string }>('SELECT status FROM orders WHERE id = ?', [order.id])
      return row!.status
    }
    return settle(tx, order, auth, auth.outcome === 'short-circuited' ? 0 : 1)
  })
}

async function retryPending(): Promise<void> {
  const due = await store.transaction((tx) =>
    tx.query<Order & { attempts: number }>(`SELECT id, account, amount, attempts FROM orders WHERE status = 'pending' AND next_try_at <= ? ORDER BY next_try_at LIMIT 20`, [now()]),
  )
  for (const order of due) {
    const auth = await authorise(order.id, order.amount)
    await store.transaction(async (tx) => {
      const [row] = await tx.query<{ status: string }>('SELECT status FROM orders WHERE id = ?', [order.id])
      if (row?.status === 'pending') await settle(tx, order, auth, order.attempts + (auth.outcome === 'short-circuited' ? 0 : 1))
    })
    if (auth.outcome === 'short-circuited') break // the rest would be short-circuited too
  }
}

/** Seed 0: a charge billing has not confirmed is sent again, same sequence_key, is_retry true. */
async function resendUnconfirmed(): Promise<void> {
  await store.transaction(async (tx) => {
    const stale = await tx.query<{ sequence_key: string; order_id: string; account: string; amount: number; sends: number }>(
      `SELECT sequence_key, order_id, account, amount, sends FROM charges
        WHERE confirmed_at IS NULL AND last_sent_at < ? - MIN(2000 * sends, 15000) LIMIT 50`,
      [now()],
    )
    for (const c of stale) {
      const charge = { sequence_key: c.sequence_key, order_id: c.order_id, account: c.account, amount: c.amount, is_retry: true }
      await enqueueEvent(tx, { topic: Topic.charges, key: c.account, value: JSON.stringify(charge) })
      await tx.query('UPDATE charges SET sends = sends + 1, last_sent_at = ? WHERE sequence_key = ?', [now(), c.sequence_key])
    }
  })
}

function every(ms: number, work: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> = Promise.resolve()
  const timer = setInterval(() => {
    running = running.then(work).catch((err: unknown) => logger.warn('background work failed', { err }))
  }, ms)
  return async () => {
    clearInterval(timer)
    await running
  }
}

const relay = createOutboxRelay({ store, bootstrap: config.bootstrap, idempotencyKeyPrefix: 'orders-outbox-', logger })
relay.start()

// Confirmations may come twice (at-least-once); marking a charge confirmed is idempotent.
const confirmations = createConsumer<{ sequence_key: string }>({
  bootstrap: config.bootstrap,
  groupId: 'shop-orders-confirmations',
  groupInstanceId: 'orders-1',
  sessionTimeoutMs: 6_000,
  topics: [Topic.confirmations],
  delivery: 'at-least-once',
  logger,
  decode: (value) => JSON.parse(value!.toString()),
  handler: async (message) => {
    await store.transaction((tx) =>
      tx.query('UPDATE charges SET confirmed_at = ? WHERE sequence_key = ? AND confirmed_at IS NULL', [now(), message.body.sequence_key]),
    )
  },
})
await confirmations.start()
const stopRetries = every(500, retryPending)
const stopResends = every(1_000, resendUnconfirmed)

const server = createServer(async (req, res) => {
  const reply = (status: number, payload: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload))
  try {
    if (req.method !== 'POST' || req.url !== '/orders') return reply(404, { error: 'not found' })
    const { id, account, amount } = await jsonBody(req)
    if (typeof id !== 'string' || typeof account !== 'string' || !Number.isInteger(amount)) return reply(400, { error: 'id, account and amount (cents) are required' })
    reply(200, { id, status: await placeOrder({ id, account, amount: amount as number }) })
  } catch (err) {
    reply(500, { error: err instanceof Error ? err.message : String(err) })
  }
})
server.listen(config.ports.orders, '127.0.0.1', () => emit({ event: 'ready', port: config.ports.orders }))

onShutdown(async () => {
  server.close()
  await stopRetries()
  await stopResends()
  await confirmations.stop()
  await relay.stop()
  redis.disconnect()
  await store.close()
})
