// The load generator: the shop's clients. Customers place orders and subscribe (HTTP, retried by
// the client with the same id, as a real client would), couriers' phones send location pings
// (at-most-once) and marketing sends push notifications (at-least-once). Every request is written
// to a ledger (its own SQLite file) when sent and again when acknowledged, so the report counts
// what was really acknowledged, not what was meant to be.
import { DatabaseSync } from 'node:sqlite'
import { setTimeout as delay } from 'node:timers/promises'
import { createProducer } from '../../src/index.ts'
import { BOUNCING_DOMAIN, dbPath, DECLINE_ABOVE_CENTS, Topic, type ShopConfig } from './common.ts'

export type LoadScenario = 'orders' | 'subscriptions' | 'pings' | 'notifications'

/** Requests per second, per scenario. */
export const RATES: Readonly<Record<LoadScenario, number>> = { orders: 8, subscriptions: 3, pings: 20, notifications: 8 }
const MAX_IN_FLIGHT = 200

export class Load {
  readonly #config: ShopConfig
  readonly #ledger: DatabaseSync
  readonly #pings
  readonly #pushes
  readonly #inFlight = new Set<Promise<void>>()
  #timer: NodeJS.Timeout | null = null
  #sequence = 0
  readonly #due: Record<LoadScenario, number> = { orders: 0, subscriptions: 0, pings: 0, notifications: 0 }

  constructor(config: ShopConfig) {
    this.#config = config
    this.#ledger = new DatabaseSync(dbPath(config.dataDir, 'load'))
    this.#ledger.exec('PRAGMA journal_mode = WAL')
    this.#ledger.exec('CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, scenario TEXT NOT NULL, attempts INTEGER NOT NULL, acked INTEGER NOT NULL)')
    this.#sequence = Number((this.#ledger.prepare('SELECT COUNT(*) AS n FROM requests').get() as { n: number }).n)
    this.#pings = createProducer({ bootstrap: config.bootstrap, delivery: 'at-most-once', clientId: 'shop-phones', requestTimeoutMs: 3_000 })
    this.#pushes = createProducer({ bootstrap: config.bootstrap, delivery: 'at-least-once', clientId: 'shop-marketing', retry: { deadlineMs: 60_000 } })
  }

  start(): void {
    this.#timer = setInterval(() => this.#tick(), 100)
  }

  /** Stops sending and waits (at most `timeoutMs`) for the requests in flight to be answered. */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    await Promise.race([Promise.allSettled([...this.#inFlight]), delay(timeoutMs)])
    await Promise.allSettled([this.#pings.close(), this.#pushes.close()])
    this.#ledger.close()
  }

  counts(): Record<LoadScenario, { sent: number; acked: number }> {
    const rows = this.#ledger.prepare('SELECT scenario, COUNT(*) AS sent, SUM(acked) AS acked FROM requests GROUP BY scenario').all() as { scenario: LoadScenario; sent: number; acked: number }[]
    const out = { orders: { sent: 0, acked: 0 }, subscriptions: { sent: 0, acked: 0 }, pings: { sent: 0, acked: 0 }, notifications: { sent: 0, acked: 0 } }
    for (const row of rows) out[row.scenario] = { sent: row.sent, acked: row.acked }
    return out
  }

  #tick(): void {
    for (const scenario of Object.keys(RATES) as LoadScenario[]) {
      this.#due[scenario] += RATES[scenario] / 10
      for (; this.#due[scenario] >= 1; this.#due[scenario]--) {
        // Bounded: while the shop is down, a client gives up instead of queueing for ever.
        if (this.#inFlight.size >= MAX_IN_FLIGHT) continue
        this.#send(scenario)
      }
    }
  }

  #send(scenario: LoadScenario): void {
    const id = `${scenario[0]}-${++this.#sequence}`
    this.#ledger.prepare('INSERT INTO requests VALUES (?, ?, 0, 0)').run(id, scenario)
    const request = this.#request(scenario, id)
      .then((attempts) => void this.#ledger.prepare('UPDATE requests SET acked = 1, attempts = ? WHERE id = ?').run(attempts, id))
      .catch(() => {})
      .finally(() => this.#inFlight.delete(request))
    this.#inFlight.add(request)
  }

  /** Resolves with the attempts it took once acknowledged; rejects when it gave up. */
  async #request(scenario: LoadScenario, id: string): Promise<number> {
    const account = `acct-${random(1, 20)}`
    const user = `user-${random(1, 500)}`
    switch (scenario) {
      case 'orders':
        return post(`http://127.0.0.1:${this.#config.ports.orders}/orders`, { id, account, amount: random(100, 5_000) })
      case 'subscriptions': {
        const roll = Math.random()
        const cents = roll < 0.15 ? DECLINE_ABOVE_CENTS + random(1, 1_000) : random(500, 3_000)
        const email = roll > 0.85 ? `${user}${BOUNCING_DOMAIN}` : `${user}@example.com`
        return post(`http://127.0.0.1:${this.#config.ports.subscription}/subscriptions`, { id, user, plan: 'pro', cents, email })
      }
      case 'pings': {
        const device = `device-${random(1, 50)}`
        await this.#pings.send(Topic.pings, { key: device, value: JSON.stringify({ id, device, lat: Math.random() * 90, lon: Math.random() * 180 }) })
        return 1
      }
      case 'notifications':
        await this.#pushes.send(Topic.notifications, { key: user, value: JSON.stringify({ id, user, text: 'your parcel is on its way' }) })
        return 1
    }
  }
}

/** POSTs with up to 4 attempts (same body, so the same id); resolves with the attempts used. */
async function post(url: string, body: unknown): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5_000) })
      await res.arrayBuffer()
      if (res.ok) return attempt
    } catch {
      // Refused or timed out: the service may be restarting.
    }
    if (attempt === 4) throw new Error(`no answer from ${url}`)
    await delay(1_000 * attempt)
  }
}

function random(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1))
}
