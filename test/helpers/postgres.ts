// The PostgreSQL the tests use (127.0.0.1:5432, trust auth, database `test`; .ci/run starts it),
// and why it cannot be used, if it cannot.
import pg from 'pg'

export const PG_URL = process.env.TIDEWAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Undefined when PostgreSQL answers a query; otherwise a sentence saying what went wrong. */
export async function postgresProblem(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5_000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return undefined
  } catch (err) {
    return `PostgreSQL at ${PG_URL} is not reachable (${err instanceof Error ? err.message : String(err)})`
  } finally {
    await client.end().catch(() => {})
  }
}
