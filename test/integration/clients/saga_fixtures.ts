// Shared by the saga tests: a store per database kind (SQLite in a temporary file, or PostgreSQL
// in a schema of its own that is dropped afterwards), and the seed's three services
// (subscription -> payment -> notification), each keeping its effects in a table of the
// service's database and answering saga commands through serveCommands.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import { ExpectedFailure } from '../../../src/sdk/failures.ts'
import type { Store, StoreTransaction } from '../../../src/sdk/store.ts'
import { postgresStore } from '../../../src/stores/postgres.ts'
import { sqliteStore } from '../../../src/stores/sqlite.ts'
import { serveCommands, type CommandService, type CommandServiceOptions } from '../../../src/patterns/saga/commands.ts'
import { defineSaga, type Json, type Saga } from '../../../src/patterns/saga/definition.ts'
import type { CommandChannel } from '../../../src/patterns/saga/commands.ts'

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test'

export type DatabaseKind = 'sqlite' | 'postgres'

export interface TestDatabase {
  readonly kind: DatabaseKind
  /** `sqlite:PATH` or the PostgreSQL URL (with `schema`), as the CLI's --db takes it. */
  readonly url: string
  readonly schema: string | null
  open(): Store
  drop(): Promise<void>
}

/** A fresh database: an SQLite file under `dir`, or a new PostgreSQL schema. */
export async function testDatabase(kind: DatabaseKind, dir: string): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const path = join(dir, `saga-${randomBytes(4).toString('hex')}.db`)
    return { kind, url: `sqlite:${path}`, schema: null, open: () => sqliteStore(path), drop: async () => {} }
  }
  const schema = `tideway_saga_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client(PG_URL)
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.end()
  return {
    kind,
    url: PG_URL,
    schema,
    open: () => postgresStore({ connectionString: PG_URL, searchPath: schema }),
    async drop() {
      const client = new pg.Client(PG_URL)
      await client.connect()
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await client.end()
    },
  }
}

/** `?` placeholders for the store's dialect. */
export function sql(store: Store, text: string): string {
  if (store.dialect !== 'postgres') return text
  let n = 0
  return text.replace(/\?/g, () => `$${++n}`)
}

export async function createServiceTables(store: Store): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.query(`CREATE TABLE IF NOT EXISTS subscriptions (saga_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, plan TEXT NOT NULL, status TEXT NOT NULL)`)
    await tx.query(`CREATE TABLE IF NOT EXISTS payments (saga_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, cents BIGINT NOT NULL, status TEXT NOT NULL)`)
    await tx.query(`CREATE TABLE IF NOT EXISTS notifications (saga_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, text TEXT NOT NULL)`)
    // Every application of an effect, so a repeat shows up as a second row (the tables above would hide it).
    await tx.query(`CREATE TABLE IF NOT EXISTS effects (service TEXT NOT NULL, action TEXT NOT NULL, saga_key TEXT NOT NULL)`)
  })
}

async function logEffect(store: Store, tx: StoreTransaction, service: string, action: string, key: string): Promise<void> {
  await tx.query(sql(store, `INSERT INTO effects (service, action, saga_key) VALUES (?, ?, ?)`), [service, action, key])
}

export interface SubscriptionInput {
  readonly user: string
  readonly plan: string
  readonly cents: number
}

/** Payment declines amounts above this (an expected failure: the card was refused). */
export const DECLINE_ABOVE_CENTS = 10_000

/** The three services, answering commands on `<prefix>.<service>` topics. */
export type ServiceName = 'subscription' | 'payment' | 'notification'

export async function startServices(store: Store, bootstrap: string, prefix: string, only: readonly ServiceName[] = ['subscription', 'payment', 'notification']): Promise<CommandService[]> {
  const common = { bootstrap, store, sessionTimeoutMs: 6_000, retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 100 } }
  const handlers: Record<ServiceName, CommandServiceOptions['handle']> = {
    subscription: async ({ body, idempotencyKey }, tx): Promise<Json> => {
      const command = body as { action: string; user: string; plan: string }
      if (command.action === 'cancel') {
        await tx.query(sql(store, `UPDATE subscriptions SET status = 'cancelled' WHERE saga_key = ?`), [idempotencyKey.replace(/:compensate$/, '')])
        await logEffect(store, tx, 'subscription', 'cancel', idempotencyKey)
        return { cancelled: true }
      }
      await tx.query(sql(store, `INSERT INTO subscriptions (saga_key, user_id, plan, status) VALUES (?, ?, ?, 'active')`), [idempotencyKey, command.user, command.plan])
      await logEffect(store, tx, 'subscription', 'create', idempotencyKey)
      return { subscription: idempotencyKey }
    },
    payment: async ({ body, idempotencyKey }, tx): Promise<Json> => {
      const command = body as { action: string; user: string; cents: number }
      if (command.action === 'refund') {
        await tx.query(sql(store, `UPDATE payments SET status = 'refunded' WHERE saga_key = ?`), [idempotencyKey.replace(/:compensate$/, '')])
        await logEffect(store, tx, 'payment', 'refund', idempotencyKey)
        return { refunded: true }
      }
      if (command.cents > DECLINE_ABOVE_CENTS) throw new ExpectedFailure(`card declined for ${command.cents} cents`)
      await tx.query(sql(store, `INSERT INTO payments (saga_key, user_id, cents, status) VALUES (?, ?, ?, 'charged')`), [idempotencyKey, command.user, command.cents])
      await logEffect(store, tx, 'payment', 'charge', idempotencyKey)
      return { charged: command.cents }
    },
    notification: async ({ body, idempotencyKey }, tx): Promise<Json> => {
      const command = body as { user: string; plan: string }
      await tx.query(sql(store, `INSERT INTO notifications (saga_key, user_id, text) VALUES (?, ?, ?)`), [idempotencyKey, command.user, `welcome to ${command.plan}`])
      await logEffect(store, tx, 'notification', 'send', idempotencyKey)
      return { notified: true }
    },
  }
  const serve = (service: ServiceName) => serveCommands({ ...common, topic: `${prefix}.${service}`, groupId: `${prefix}-${service}`, handle: handlers[service] })
  const started: CommandService[] = []
  for (const service of only) started.push(await serve(service))
  return started
}

/** The seed's flow as an orchestrated saga whose steps are commands to the three services. */
export function subscriptionSaga(commands: CommandChannel, prefix: string, timeoutMs = 10_000): Saga<SubscriptionInput> {
  const retry = { attempts: 3, initialDelayMs: 50, maxDelayMs: 200 }
  return defineSaga<SubscriptionInput>({
    name: 'subscribe',
    version: 1,
    steps: [
      {
        name: 'subscription',
        timeoutMs,
        retry,
        invoke: (ctx) => commands.request(`${prefix}.subscription`, { action: 'create', user: ctx.input.user, plan: ctx.input.plan }, ctx),
        compensate: async (ctx) => void (await commands.request(`${prefix}.subscription`, { action: 'cancel', user: ctx.input.user, plan: ctx.input.plan }, ctx)),
      },
      {
        name: 'payment',
        timeoutMs,
        retry,
        invoke: (ctx) => commands.request(`${prefix}.payment`, { action: 'charge', user: ctx.input.user, cents: ctx.input.cents }, ctx),
        compensate: async (ctx) => void (await commands.request(`${prefix}.payment`, { action: 'refund', user: ctx.input.user, cents: ctx.input.cents }, ctx)),
      },
      {
        name: 'notification',
        timeoutMs,
        retry,
        invoke: (ctx) => commands.request(`${prefix}.notification`, { user: ctx.input.user, plan: ctx.input.plan }, ctx),
      },
    ],
  })
}

export interface EffectCounts {
  readonly [serviceAction: string]: number
}

/** How many times each effect was applied, per saga key: { 'payment.charge': 1, ... }. */
export async function effectsByKey(store: Store): Promise<Map<string, Record<string, number>>> {
  const rows = await store.transaction((tx) => tx.query<{ service: string; action: string; saga_key: string }>(`SELECT service, action, saga_key FROM effects`))
  const byKey = new Map<string, Record<string, number>>()
  for (const row of rows) {
    const instance = row.saga_key.replace(/^saga:/, '').replace(/:[^:]+(:compensate)?$/, '')
    const counts = byKey.get(instance) ?? {}
    const name = `${row.service}.${row.action}`
    counts[name] = (counts[name] ?? 0) + 1
    byKey.set(instance, counts)
  }
  return byKey
}

export type { Json }
