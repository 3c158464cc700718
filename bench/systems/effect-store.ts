// The exactly-once consumer's side effect for the peers (JetStream, Redis Streams), as Tideway's
// SDK inbox does it: in one transaction, insert the message id into an inbox table (its primary
// key rejects a message already applied) and add the amount to a balance; commit. Durability
// matches the SDK's stores: SQLite in WAL mode with synchronous=FULL (COMMIT returns once the WAL
// is fsynced; src/stores/sqlite.ts), PostgreSQL with its default synchronous_commit=on.
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import pg from 'pg'
import type { EffectStore } from './types.ts'

const PG_URL = process.env.TIDEWAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const ACCOUNT = 'bench'

export interface Effects {
  /** Applies `amount` once per `messageId`: false, and nothing changed, for an id already applied. */
  apply(messageId: string, amount: number): Promise<boolean>
  close(): Promise<void>
}

export async function openEffectStore(store: EffectStore, dir: string): Promise<Effects> {
  return store === 'sqlite' ? openSqlite(dir) : openPostgres()
}

function openSqlite(dir: string): Effects {
  const path = join(dir, `effects-${randomBytes(4).toString('hex')}.db`)
  const db = new DatabaseSync(path, { timeout: 5_000 })
  const journal = db.prepare('PRAGMA journal_mode = WAL').get()?.journal_mode
  if (journal !== 'wal') {
    db.close()
    throw new Error(`SQLite kept journal_mode ${String(journal)} for ${path}; the effect store needs WAL`)
  }
  db.exec('PRAGMA synchronous = FULL')
  db.exec('CREATE TABLE inbox (message_id TEXT PRIMARY KEY)')
  db.exec('CREATE TABLE balance (account TEXT PRIMARY KEY, amount INTEGER NOT NULL)')
  db.prepare('INSERT INTO balance (account, amount) VALUES (?, 0)').run(ACCOUNT)
  const recordInbox = db.prepare('INSERT INTO inbox (message_id) VALUES (?) ON CONFLICT (message_id) DO NOTHING')
  const addToBalance = db.prepare('UPDATE balance SET amount = amount + ? WHERE account = ?')
  return {
    async apply(messageId, amount) {
      // IMMEDIATE takes the write lock up front, as the SDK's SQLite store does.
      db.exec('BEGIN IMMEDIATE')
      try {
        if (recordInbox.run(messageId).changes === 0) {
          db.exec('ROLLBACK')
          return false
        }
        addToBalance.run(amount, ACCOUNT)
        db.exec('COMMIT')
        return true
      } catch (err) {
        if (db.isTransaction) db.exec('ROLLBACK')
        throw err
      }
    },
    async close() {
      db.close()
      await Promise.all(['', '-wal', '-shm'].map((suffix) => rm(path + suffix, { force: true })))
    },
  }
}

async function openPostgres(): Promise<Effects> {
  const suffix = randomBytes(4).toString('hex')
  const inbox = `bench_inbox_${suffix}`
  const balance = `bench_balance_${suffix}`
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 10_000, query_timeout: 30_000 })
  await client.connect()
  try {
    await client.query(`CREATE TABLE ${inbox} (message_id TEXT PRIMARY KEY)`)
    await client.query(`CREATE TABLE ${balance} (account TEXT PRIMARY KEY, amount BIGINT NOT NULL)`)
    await client.query(`INSERT INTO ${balance} (account, amount) VALUES ($1, 0)`, [ACCOUNT])
  } catch (err) {
    await client.end()
    throw err
  }
  return {
    async apply(messageId, amount) {
      await client.query('BEGIN')
      try {
        const inserted = await client.query(`INSERT INTO ${inbox} (message_id) VALUES ($1) ON CONFLICT (message_id) DO NOTHING`, [messageId])
        if (inserted.rowCount === 0) {
          await client.query('ROLLBACK')
          return false
        }
        await client.query(`UPDATE ${balance} SET amount = amount + $1 WHERE account = $2`, [amount, ACCOUNT])
        await client.query('COMMIT')
        return true
      } catch (err) {
        // The first error says what went wrong; a failed ROLLBACK only means the connection is gone.
        await client.query('ROLLBACK').catch(() => {})
        throw err
      }
    },
    async close() {
      try {
        await client.query(`DROP TABLE IF EXISTS ${inbox}, ${balance}`)
      } finally {
        await client.end()
      }
    },
  }
}
