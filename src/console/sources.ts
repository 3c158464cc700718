// The console's two outside sources, both optional: the saga tables (consoleSagaDb, read with the
// saga store's own statements, as `tideway sagas` does) and the circuit breakers in Redis
// (consoleRedis, read as `tideway breakers list` does). Each connects on first use and keeps its
// connection until the console closes; one that failed is dropped, so the next page load tries
// again. Every read is bounded in time, and a failure is an answer ({ error }), never a hang: an
// operator who opens the page needs to see why there is nothing.

import { existsSync } from 'node:fs'
import { listedBreaker, type ListedBreaker, type RedisLike } from '../cli/breakers-command.ts'
import { DEFAULT_BREAKER_PREFIX, scanStoredBreakers } from '../patterns/circuit-breaker/index.ts'
import { SagaStatus } from '../patterns/saga/machine.ts'
import { SagaTables, type InstanceSummary, type StoredInstance } from '../patterns/saga/saga-store.ts'
import type { Store } from '../sdk/store.ts'
import { postgresStore } from '../stores/postgres.ts'
import { sqliteStore } from '../stores/sqlite.ts'

const READ_TIMEOUT_MS = 5_000
export const MAX_SAGAS = 100
export const MAX_BREAKERS = 1_000

export type Sourced<T> =
  | { readonly configured: false; readonly hint: string }
  | ({ readonly configured: true; readonly source: string } & ({ readonly error: string } | { readonly error: null; readonly data: T }))

/** A URL without its password, for showing on a page. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@')
  }
}

function withTimeout<T>(what: string, work: Promise<T>, ms = READ_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err))

// -------------------------------------------------------------------------------------------
// Sagas

export class SagaSource {
  readonly #db: string
  readonly #schema: string
  #store: Store | undefined

  constructor(db: string, schema: string) {
    this.#db = db
    this.#schema = schema
  }

  list(status: string | null): Promise<Sourced<InstanceSummary[]>> {
    if (status !== null && !(Object.values(SagaStatus) as string[]).includes(status)) {
      return Promise.resolve({ configured: true, source: this.#shown(), error: `status must be one of ${Object.values(SagaStatus).join(', ')}` })
    }
    return this.#read((tables) => tables.store.transaction((tx) => tables.listInstances(tx, { limit: MAX_SAGAS, ...(status ? { status } : {}) })))
  }

  show(instanceId: string): Promise<Sourced<StoredInstance | null>> {
    return this.#read((tables) => tables.store.transaction((tx) => tables.snapshot(tx, instanceId)))
  }

  async #read<T>(work: (tables: SagaTables) => Promise<T>): Promise<Sourced<T>> {
    if (!this.#db) return { configured: false, hint: 'start the broker with --console-saga-db sqlite:PATH or --console-saga-db postgres://… (and --console-saga-schema for a PostgreSQL schema)' }
    const source = this.#shown()
    try {
      this.#store ??= this.#open()
      const tables = new SagaTables(this.#store)
      if (!(await withTimeout('the saga database', tables.exist()))) {
        return { configured: true, source, error: `no saga tables (tideway_saga_instances) in ${source}: check --console-saga-db and --console-saga-schema` }
      }
      return { configured: true, source, error: null, data: await withTimeout('the saga database', work(tables)) }
    } catch (err) {
      const store = this.#store
      this.#store = undefined
      await store?.close().catch(() => {})
      return { configured: true, source, error: messageOf(err) }
    }
  }

  #open(): Store {
    if (this.#db.startsWith('sqlite:')) {
      const path = this.#db.slice('sqlite:'.length)
      // Opening a missing file would create an empty database: a typo should not.
      if (!existsSync(path)) throw new Error(`no SQLite database at ${path}`)
      return sqliteStore(path)
    }
    if (/^postgres(ql)?:\/\//.test(this.#db)) {
      return postgresStore({
        connectionString: this.#db,
        applicationName: 'tideway-console',
        maxConnections: 2,
        connectTimeoutMs: READ_TIMEOUT_MS,
        ...(this.#schema ? { searchPath: this.#schema } : {}),
      })
    }
    throw new Error(`--console-saga-db must start with sqlite: or postgres://, got "${redactUrl(this.#db)}"`)
  }

  #shown(): string {
    return this.#db.startsWith('sqlite:') ? this.#db : redactUrl(this.#db) + (this.#schema ? ` (schema ${this.#schema})` : '')
  }

  async close(): Promise<void> {
    await this.#store?.close().catch(() => {})
    this.#store = undefined
  }
}

// -------------------------------------------------------------------------------------------
// Circuit breakers

export interface BreakerListing {
  readonly prefix: string
  readonly breakers: readonly ListedBreaker[]
  /** More keys than MAX_BREAKERS under the prefix: the rest are not listed. */
  readonly truncated: boolean
}

export class BreakerSource {
  readonly #url: string
  readonly #prefix: string
  #redis: Promise<RedisLike> | undefined

  constructor(url: string, prefix: string) {
    this.#url = url
    this.#prefix = prefix || DEFAULT_BREAKER_PREFIX
  }

  async list(): Promise<Sourced<BreakerListing>> {
    if (!this.#url) return { configured: false, hint: 'start the broker with --console-redis redis://HOST:PORT (and --console-breaker-prefix if the breakers use their own key prefix)' }
    const source = redactUrl(this.#url)
    try {
      this.#redis ??= this.#connect()
      const redis = await this.#redis
      return { configured: true, source, error: null, data: await withTimeout('Redis', this.#scan(redis)) }
    } catch (err) {
      this.#drop()
      return { configured: true, source, error: messageOf(err) }
    }
  }

  async #scan(redis: RedisLike): Promise<BreakerListing> {
    const { nowMs, breakers, truncated } = await scanStoredBreakers(redis, this.#prefix, MAX_BREAKERS)
    return { prefix: this.#prefix, breakers: breakers.map((stored) => listedBreaker(stored, nowMs)), truncated }
  }

  async #connect(): Promise<RedisLike> {
    const { Redis } = (await import('ioredis')) as unknown as { Redis: new (url: string, options: object) => RedisLike }
    // Fail fast against an unreachable Redis: no reconnects, no queue of commands waiting for one.
    const redis = new Redis(this.#url, { lazyConnect: true, connectTimeout: 3_000, commandTimeout: READ_TIMEOUT_MS, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
    // ioredis rejects connect() with "Connection is closed."; the socket's own error says why.
    let socketError: Error | undefined
    redis.on('error', (err) => (socketError = err))
    try {
      await withTimeout('Redis', redis.connect())
    } catch (err) {
      redis.disconnect()
      throw new Error(`cannot reach Redis at ${redactUrl(this.#url)} (${socketError?.message ?? messageOf(err)})`, { cause: err })
    }
    return redis
  }

  #drop(): void {
    const redis = this.#redis
    this.#redis = undefined
    redis?.then((r) => r.disconnect()).catch(() => {})
  }

  async close(): Promise<void> {
    this.#drop()
  }
}
