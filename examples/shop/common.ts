// What the shop's processes share: topic names, the run's configuration (passed by main.ts in the
// SHOP_CONFIG environment variable), where each service keeps its database, and the process
// lifecycle every service follows: print {"event":"ready"} once serving, stop cleanly on SIGTERM,
// and exit when the parent goes away (its IPC channel closes), so no service outlives the demo.
import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { jsonLogger, type Logger } from '../../src/index.ts'

export const Topic = {
  /** orders → billing: charges with the seed's sequence_key and is_retry (orders' outbox). */
  charges: 'shop.billing.charges',
  /** billing → orders and reporting: one answer per charge message (billing's outbox). */
  confirmations: 'shop.billing.confirmations',
  /** orders → reporting: accepted orders (orders' outbox). */
  ordersPlaced: 'shop.orders.placed',
  /** devices → location: pings, at-most-once. */
  pings: 'shop.locations.pings',
  /** marketing → notification: push messages, at-least-once. */
  notifications: 'shop.notifications',
  /** The subscription saga's commands and their replies. */
  paymentCommands: 'shop.payments.commands',
  welcomeCommands: 'shop.welcome.commands',
  sagaReplies: 'shop.subscription.replies',
} as const

/** Topics whose events come from an outbox: the broker drops a relay's republished copies. */
export const DEDUP_TOPICS: readonly string[] = [Topic.charges, Topic.confirmations, Topic.ordersPlaced]

export const SERVICES = ['payment-provider', 'orders', 'billing', 'subscription', 'notification', 'location', 'reporting'] as const
export type ServiceName = (typeof SERVICES)[number]

/** An order whose card authorisation failed this many times is rejected. */
export const MAX_AUTHORISATIONS = 5
/** The saga's payment step declines bigger amounts (a business outcome, not a fault). */
export const DECLINE_ABOVE_CENTS = 5_000
/** The welcome mail to such an address bounces, after the payment: the saga refunds it. */
export const BOUNCING_DOMAIN = '@bounce.invalid'

export interface ShopConfig {
  readonly dataDir: string
  readonly bootstrap: string
  readonly ports: { readonly orders: number; readonly subscription: number; readonly provider: number }
  readonly redisUrl: string
  /** Unique per run, so runs sharing a Redis never share a breaker. */
  readonly redisPrefix: string
  /** Share of provider calls that fail, and that hang past the breaker's call timeout. */
  readonly providerFailRate: number
  readonly providerHangRate: number
}

export function shopConfig(): ShopConfig {
  const raw = process.env['SHOP_CONFIG']
  if (!raw) throw new Error('SHOP_CONFIG is not set: start the shop with `npm run demo`')
  return JSON.parse(raw) as ShopConfig
}

export function dbPath(dataDir: string, service: ServiceName | 'load'): string {
  return join(dataDir, `${service}.db`)
}

export function serviceLogger(service: string): Logger {
  return jsonLogger({ level: 'warn', bindings: { service } })
}

export function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n')
}

/** Runs `stop` on SIGTERM or SIGINT (bounded: 8 s, then exit anyway); exits at once if the parent dies. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false
  const graceful = () => {
    if (stopping) return
    stopping = true
    setTimeout(() => process.exit(1), 8_000).unref()
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGTERM', graceful)
  process.once('SIGINT', graceful)
  process.once('disconnect', () => process.exit(1))
}

export const now = (): number => Date.now()

/** An HTTP request's JSON body (an empty body reads as {}). */
export async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>
}
