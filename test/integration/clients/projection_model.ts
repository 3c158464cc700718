// The read model the projection tests build, shared by the test and its child process
// (projection_service.ts): two services' events joined into one table.
//   orders   {type: 'order-placed', orderId, customer, amount}   key = orderId
//   payments {type: 'payment-captured', paymentId, orderId, amount} key = orderId
// -> customer_totals (customer, orders_placed, amount_ordered, amount_paid)
// Payments name only the order, and the two topics are not ordered against each other, so a
// payment may be applied before its order: the helper table customer_totals_orders remembers
// each order's customer and what was paid before the customer was known. `expectedTotals`
// computes the same table directly from the produced events.
import pg from 'pg'
import { DatabaseSync } from 'node:sqlite'
import { createProducer, postgresStore, sqliteStore, type IncomingMessage, type OutgoingMessage, type Store, type StoreTransaction, type TidewayProducer } from '../../../src/index.ts'
import type { ProjectionOptions, ProjectionTables } from '../../../src/patterns/projection/index.ts'
import { PG_URL } from '../../helpers/postgres.ts'

export { PG_URL }
export const TABLES = ['customer_totals', 'customer_totals_orders'] as const
export type Table = (typeof TABLES)[number]

export type ShopEvent =
  | { readonly type: 'order-placed'; readonly orderId: string; readonly customer: string; readonly amount: number }
  | { readonly type: 'payment-captured'; readonly paymentId: string; readonly orderId: string; readonly amount: number }

export interface CustomerTotal {
  readonly customer: string
  readonly ordersPlaced: number
  readonly amountOrdered: number
  readonly amountPaid: number
}

/**
 * `count` events, deterministic: orders for 53 customers; most orders get a payment three
 * orders later, every seventh gets its payment *before* the order, and some get a second one.
 */
export function shopEvents(count: number): ShopEvent[] {
  const events: ShopEvent[] = []
  let payments = 0
  const pay = (order: number, amount: number) => events.push({ type: 'payment-captured', paymentId: `p${payments++}`, orderId: `o${order}`, amount })
  const amountOf = (order: number) => 1 + ((order * 17) % 200)
  for (let order = 0; events.length < count; order++) {
    if (order % 7 === 0) pay(order, amountOf(order))
    events.push({ type: 'order-placed', orderId: `o${order}`, customer: `customer-${(order * 31) % 53}`, amount: amountOf(order) })
    const earlier = order - 3
    if (earlier >= 0 && earlier % 7 !== 0 && earlier % 4 !== 0) pay(earlier, amountOf(earlier) - (earlier % 5))
    if (earlier >= 0 && earlier % 11 === 0) pay(earlier, 3)
  }
  return events.slice(0, count)
}

/** The table computed straight from the events: a payment counts once its order is known. */
export function expectedTotals(events: readonly ShopEvent[]): CustomerTotal[] {
  const customerOf = new Map<string, string>()
  for (const e of events) if (e.type === 'order-placed') customerOf.set(e.orderId, e.customer)
  const totals = new Map<string, { ordersPlaced: number; amountOrdered: number; amountPaid: number }>()
  const row = (customer: string) => {
    let found = totals.get(customer)
    if (!found) totals.set(customer, (found = { ordersPlaced: 0, amountOrdered: 0, amountPaid: 0 }))
    return found
  }
  for (const e of events) {
    if (e.type === 'order-placed') {
      row(e.customer).ordersPlaced++
      row(e.customer).amountOrdered += e.amount
    } else if (customerOf.has(e.orderId)) row(customerOf.get(e.orderId)!).amountPaid += e.amount
  }
  return [...totals].map(([customer, t]) => ({ customer, ...t })).sort((a, b) => (a.customer < b.customer ? -1 : 1))
}

export function topicOf(event: ShopEvent, topics: { orders: string; payments: string }): string {
  return event.type === 'order-placed' ? topics.orders : topics.payments
}

export function toMessage(event: ShopEvent): OutgoingMessage {
  return { key: event.orderId, value: JSON.stringify(event), idempotencyKey: event.type === 'order-placed' ? `order-${event.orderId}` : `payment-${event.paymentId}` }
}

/** Sends the events in order, one request per topic. */
export async function sendShopEvents(producer: TidewayProducer, topics: { orders: string; payments: string }, events: readonly ShopEvent[]): Promise<void> {
  for (const topic of [topics.orders, topics.payments]) {
    const messages = events.filter((e) => topicOf(e, topics) === topic).map(toMessage)
    if (messages.length > 0) await producer.sendBatch(topic, messages)
  }
}

/** Produces the events in order, `batch` at a time, pausing `pauseMs` between batches. */
export async function produceShopEvents(bootstrap: string, topics: { orders: string; payments: string }, events: readonly ShopEvent[], { batch = 200, pauseMs = 0 } = {}): Promise<void> {
  const producer = createProducer({ bootstrap, delivery: 'exactly-once' })
  try {
    for (let start = 0; start < events.length; start += batch) {
      await sendShopEvents(producer, topics, events.slice(start, start + batch))
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs))
    }
  } finally {
    await producer.close()
  }
}

/** The projection's definition; `onApply` lets the child process crash inside a transaction. */
export function customerTotalsDefinition(
  dialect: Store['dialect'],
  onApply?: (tables: ProjectionTables<Table>) => void,
): Pick<ProjectionOptions<ShopEvent, Table>, 'name' | 'tables' | 'setup' | 'apply' | 'decode'> {
  let n = 0
  const p = () => (dialect === 'postgres' ? `$${++n}` : '?')
  const sql = (build: () => string) => {
    n = 0
    return build()
  }
  return {
    name: 'customer_totals',
    tables: TABLES,
    decode: (value) => JSON.parse(value!.toString()) as ShopEvent,
    async setup(tx, t) {
      await tx.query(`CREATE TABLE ${t.customer_totals} (customer TEXT PRIMARY KEY, orders_placed BIGINT NOT NULL, amount_ordered BIGINT NOT NULL, amount_paid BIGINT NOT NULL)`)
      await tx.query(`CREATE TABLE ${t.customer_totals_orders} (order_id TEXT PRIMARY KEY, customer TEXT, amount BIGINT, paid BIGINT NOT NULL)`)
      await tx.query(`CREATE INDEX ${t.customer_totals_orders}_customer ON ${t.customer_totals_orders} (customer)`)
    },
    async apply(event: IncomingMessage<ShopEvent>, tx: StoreTransaction, t) {
      onApply?.(t)
      const e = event.body
      const [order] = await tx.query<{ customer: string | null; paid: unknown }>(sql(() => `SELECT customer, paid FROM ${t.customer_totals_orders} WHERE order_id = ${p()}`), [e.orderId])
      if (e.type === 'order-placed') {
        if (order?.customer) return // placed twice under two keys: the first one counts
        const paidBefore = Number(order?.paid ?? 0)
        await tx.query(
          sql(() => `INSERT INTO ${t.customer_totals_orders} (order_id, customer, amount, paid) VALUES (${p()}, ${p()}, ${p()}, ${p()})
             ON CONFLICT (order_id) DO UPDATE SET customer = excluded.customer, amount = excluded.amount`),
          [e.orderId, e.customer, e.amount, paidBefore],
        )
        await tx.query(
          sql(() => `INSERT INTO ${t.customer_totals} (customer, orders_placed, amount_ordered, amount_paid) VALUES (${p()}, 1, ${p()}, ${p()})
             ON CONFLICT (customer) DO UPDATE SET orders_placed = ${t.customer_totals}.orders_placed + 1,
               amount_ordered = ${t.customer_totals}.amount_ordered + excluded.amount_ordered, amount_paid = ${t.customer_totals}.amount_paid + excluded.amount_paid`),
          [e.customer, e.amount, paidBefore],
        )
        return
      }
      if (order?.customer) {
        await tx.query(sql(() => `UPDATE ${t.customer_totals_orders} SET paid = paid + ${p()} WHERE order_id = ${p()}`), [e.amount, e.orderId])
        await tx.query(sql(() => `UPDATE ${t.customer_totals} SET amount_paid = amount_paid + ${p()} WHERE customer = ${p()}`), [e.amount, order.customer])
      } else {
        await tx.query(
          sql(() => `INSERT INTO ${t.customer_totals_orders} (order_id, customer, amount, paid) VALUES (${p()}, NULL, NULL, ${p()})
             ON CONFLICT (order_id) DO UPDATE SET paid = ${t.customer_totals_orders}.paid + excluded.paid`),
          [e.orderId, e.amount],
        )
      }
    },
  }
}

/** `sqlite:<file>` or `postgres:<schema>`: how the test names a database to its child process. */
export function openStore(db: string): Store {
  if (db.startsWith('sqlite:')) return sqliteStore(db.slice('sqlite:'.length))
  if (db.startsWith('postgres:')) return postgresStore({ connectionString: PG_URL, searchPath: db.slice('postgres:'.length) })
  throw new Error(`unknown database ${db}`)
}

export interface ModelRead {
  /** The registry's current generation, read in the same snapshot as the rows. */
  readonly generation: number
  readonly totals: CustomerTotal[]
  /** Whether customer_totals agrees with the per-order rows of the same read (a whole model). */
  readonly consistent: boolean
}

export interface RegistrySnapshot {
  readonly current: number
  readonly frozen: boolean
  readonly building: number | null
  readonly retired: number | null
}

const REGISTRY_SQL = `SELECT current_generation, frozen, building_generation, retired_generation FROM tideway_projections WHERE name = 'customer_totals'`
const nullable = (v: unknown) => (v === null || v === undefined ? null : Number(v))
const toRegistry = (r: Record<string, unknown> | undefined): RegistrySnapshot | null =>
  r ? { current: Number(r.current_generation), frozen: Number(r.frozen) !== 0, building: nullable(r.building_generation), retired: nullable(r.retired_generation) } : null

/** A reader of the views, as an application would read them, on a connection of its own. */
export interface ModelReader {
  read(): Promise<ModelRead>
  /** Names of the tables and views in the database. */
  relations(): Promise<string[]>
  /** The projection's registry row, as an operator would look at it. */
  registry(): Promise<RegistrySnapshot | null>
  close(): Promise<void>
}

const TOTALS_SQL = 'SELECT customer, orders_placed, amount_ordered, amount_paid FROM customer_totals ORDER BY customer'
const ORDERS_SQL = 'SELECT customer, COUNT(*) AS n, SUM(amount) AS ordered, SUM(paid) AS paid FROM customer_totals_orders WHERE customer IS NOT NULL GROUP BY customer ORDER BY customer'
const GENERATION_SQL = `SELECT current_generation FROM tideway_projections WHERE name = 'customer_totals'`

function toRead(generation: unknown, totalsRows: Record<string, unknown>[], orderRows: Record<string, unknown>[]): ModelRead {
  // Sorted here, by code point as expectedTotals sorts: not by the database's collation.
  const byCustomer = (a: CustomerTotal, b: CustomerTotal) => (a.customer < b.customer ? -1 : 1)
  const totals = totalsRows.map((r) => ({ customer: String(r.customer), ordersPlaced: Number(r.orders_placed), amountOrdered: Number(r.amount_ordered), amountPaid: Number(r.amount_paid) })).sort(byCustomer)
  const fromOrders = orderRows.map((r) => ({ customer: String(r.customer), ordersPlaced: Number(r.n), amountOrdered: Number(r.ordered), amountPaid: Number(r.paid) })).sort(byCustomer)
  return { generation: Number(generation), totals, consistent: JSON.stringify(totals) === JSON.stringify(fromOrders) }
}

export async function openReader(db: string): Promise<ModelReader> {
  if (db.startsWith('sqlite:')) {
    const file = db.slice('sqlite:'.length)
    const sqlite = new DatabaseSync(file, { readOnly: true, timeout: 5_000 })
    return {
      async read() {
        // One read transaction: the rows and the generation come from one snapshot.
        sqlite.exec('BEGIN')
        try {
          const generation = sqlite.prepare(GENERATION_SQL).get()?.current_generation
          return toRead(generation, sqlite.prepare(TOTALS_SQL).all(), sqlite.prepare(ORDERS_SQL).all())
        } finally {
          sqlite.exec('COMMIT')
        }
      },
      async registry() {
        return toRegistry(sqlite.prepare(REGISTRY_SQL).get())
      },
      async relations() {
        return sqlite.prepare(`SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name`).all().map((r) => String(r.name))
      },
      async close() {
        sqlite.close()
      },
    }
  }
  const schema = db.slice('postgres:'.length)
  const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` })
  await client.connect()
  return {
    async read() {
      // One READ COMMITTED statement: one snapshot, taken after the views are resolved and locked.
      // (A REPEATABLE READ snapshot taken before a swap would see the new tables' rows as of that
      // older snapshot: PostgreSQL resolves names in the current catalog.)
      const { rows } = await client.query(
        `SELECT (${GENERATION_SQL}) AS generation,
           (SELECT COALESCE(json_agg(t), '[]') FROM (${TOTALS_SQL}) t) AS totals,
           (SELECT COALESCE(json_agg(o), '[]') FROM (${ORDERS_SQL}) o) AS orders`,
      )
      return toRead(rows[0].generation, rows[0].totals, rows[0].orders)
    },
    async registry() {
      return toRegistry((await client.query(REGISTRY_SQL)).rows[0])
    },
    async relations() {
      return (await client.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [schema])).rows.map((r) => String(r.table_name))
    },
    async close() {
      await client.end()
    },
  }
}
