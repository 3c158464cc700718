// `tideway sagas list|show`: saga instances as the orchestrator stored them (src/patterns/saga/),
// read straight from the database the sagas live in: SQLite (`--db sqlite:PATH`) or PostgreSQL
// (`--db postgres://…`, `--schema` for its search_path). Read-only: it never creates tables, so
// pointing it at the wrong database changes nothing. `failed-compensation` is the saga's dead-letter
// state; `show` gives what an operator needs to act on it (which step, attempts, the last error,
// the idempotency key the service saw, and the timers still pending).
//
// Exit codes: 0 done, 1 the instance or the saga tables are missing or the database failed,
// 2 usage error.
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { TERMINAL_STATUSES, SagaStatus } from '../patterns/saga/machine.ts'
import { SagaTables, type InstanceSummary, type StoredInstance } from '../patterns/saga/saga-store.ts'
import type { Store } from '../sdk/store.ts'
import { postgresStore } from '../stores/postgres.ts'
import { sqliteStore } from '../stores/sqlite.ts'
import { formatFields, formatTable, OutputSink, toJson } from './output.ts'

export const sagasUsage = `Usage: tideway sagas <list|show> [options]

Commands:
  list            saga instances: saga and version, status, current step, last error
  show <id>       one instance: its steps (attempts, invocations, idempotency key, last error) and timers

Options:
  --db URL        where the sagas are stored: sqlite:PATH or postgres://user@host:port/db (env TIDEWAY_SAGA_DB)
  --schema NAME   PostgreSQL: the schema holding the saga tables (its search_path)
  --status S      list: only instances in status S (running, compensating, completed, compensated, failed-compensation)
  --saga NAME     list: only instances of this saga
  --limit N       list: at most N instances, oldest first (default 100)
  --json          machine-readable output (JSON)
  -h, --help      show this help
`

const STATUSES: readonly string[] = Object.values(SagaStatus)

interface SagasIO {
  readonly stdout: { write(text: string): unknown }
  readonly stderr: { write(text: string): unknown }
  readonly env: NodeJS.ProcessEnv
}

class Usage extends Error {}
class Failure extends Error {}

export async function runSagasCommand(argv: string[]): Promise<number> {
  const stdout = new OutputSink(process.stdout)
  return runSagasCommandWith(argv, { stdout: { write: (text) => stdout.write(text) }, stderr: process.stderr, env: process.env })
}

/** The command against the given edges (tests pass their own). */
export async function runSagasCommandWith(argv: string[], io: SagasIO): Promise<number> {
  try {
    return await run(argv, io)
  } catch (err) {
    if (err instanceof Usage) {
      io.stderr.write(`tideway sagas: ${err.message}\n\n${sagasUsage}`)
      return 2
    }
    if (err instanceof Failure) {
      io.stderr.write(`tideway sagas: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

async function run(argv: string[], io: SagasIO): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        db: { type: 'string' },
        schema: { type: 'string' },
        status: { type: 'string' },
        saga: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    throw new Usage(err instanceof Error ? err.message : String(err))
  }
  const { values, positionals } = parsed
  const [sub, ...rest] = positionals
  if (values.help || sub === 'help') {
    await io.stdout.write(sagasUsage)
    return 0
  }
  if (sub !== 'list' && sub !== 'show') throw new Usage(sub === undefined ? 'missing <list|show>' : `unknown command "${sub}"; expected list or show`)
  if (sub === 'list' && rest.length > 0) throw new Usage(`unexpected argument "${rest[0]}"`)
  if (sub === 'show' && rest.length !== 1) throw new Usage(rest.length === 0 ? 'missing <id>' : `unexpected argument "${rest[1]}"`)
  if (values.status !== undefined && !STATUSES.includes(values.status)) throw new Usage(`--status must be one of ${STATUSES.join(', ')}; got "${values.status}"`)
  const limit = values.limit === undefined ? 100 : Number(values.limit)
  if (!Number.isSafeInteger(limit) || limit < 1) throw new Usage(`--limit must be a positive whole number; got "${values.limit}"`)

  const store = openStore(values.db ?? io.env.TIDEWAY_SAGA_DB, values.schema)
  try {
    const tables = new SagaTables(store)
    await requireSagaTables(store)
    if (sub === 'list') {
      const filter = { limit, ...(values.status ? { status: values.status } : {}), ...(values.saga ? { saga: values.saga } : {}) }
      const instances = await store.transaction((tx) => tables.listInstances(tx, filter))
      await io.stdout.write(values.json ? toJson(instances) + '\n' : formatList(instances))
      return 0
    }
    const snapshot = await store.transaction((tx) => tables.snapshot(tx, rest[0]!))
    if (!snapshot) throw new Failure(`no saga instance "${rest[0]}"`)
    await io.stdout.write(values.json ? toJson(snapshot) + '\n' : formatInstance(snapshot))
    return 0
  } catch (err) {
    if (err instanceof Failure || err instanceof Usage) throw err
    throw new Failure(`reading the saga tables failed: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    await store.close().catch(() => {})
  }
}

function openStore(db: string | undefined, schema: string | undefined): Store {
  if (!db) throw new Usage('say where the sagas are stored: --db sqlite:PATH or --db postgres://… (or TIDEWAY_SAGA_DB)')
  if (db.startsWith('sqlite:')) {
    const path = db.slice('sqlite:'.length)
    // Opening a missing file would create an empty database: a typo should not.
    if (!existsSync(path)) throw new Failure(`no SQLite database at ${path}`)
    if (schema !== undefined) throw new Usage('--schema is for PostgreSQL')
    return sqliteStore(path)
  }
  if (db.startsWith('postgres://') || db.startsWith('postgresql://')) {
    try {
      return postgresStore({ connectionString: db, applicationName: 'tideway-sagas', maxConnections: 2, ...(schema ? { searchPath: schema } : {}) })
    } catch (err) {
      throw new Usage(err instanceof Error ? err.message : String(err))
    }
  }
  throw new Usage(`--db must start with sqlite: or postgres://; got "${db}"`)
}

async function requireSagaTables(store: Store): Promise<void> {
  if (!(await new SagaTables(store).exist())) throw new Failure('this database has no saga tables (tideway_saga_instances); check --db and --schema')
}

const time = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString())

function formatList(instances: readonly InstanceSummary[]): string {
  if (instances.length === 0) return 'no saga instances\n'
  return formatTable(
    ['INSTANCE', 'SAGA', 'VERSION', 'STATUS', 'STEP', 'UPDATED', 'LAST ERROR'],
    instances.map((i) => [i.instanceId, i.sagaName, String(i.sagaVersion), i.status, TERMINAL_STATUSES.includes(i.status) ? '-' : String(i.currentStep), time(i.updatedAtMs), i.lastError ?? '']),
    [2, 4],
  )
}

function formatInstance(snapshot: StoredInstance): string {
  const fields = formatFields([
    ['instance', snapshot.instanceId],
    ['saga', `${snapshot.sagaName} v${snapshot.sagaVersion}`],
    ['status', snapshot.status],
    ['current step', String(snapshot.currentStep)],
    ['failed step', snapshot.failedStep ?? '-'],
    ['last error', snapshot.lastError ?? '-'],
    ['trace', snapshot.traceparent ?? '-'],
    ['created', time(snapshot.createdAtMs)],
    ['updated', time(snapshot.updatedAtMs)],
    ['finished', time(snapshot.finishedAtMs)],
    ['driven by', snapshot.lease ? `${snapshot.lease.owner} (lease until ${time(snapshot.lease.expiresAtMs)})` : '-'],
  ])
  const steps = formatTable(
    ['PHASE', 'STEP', 'STATUS', 'ATTEMPT', 'INVOCATIONS', 'IDEMPOTENCY KEY', 'LAST ERROR'],
    snapshot.steps.map((s) => [s.phase, `${s.index} ${s.name}`, s.status, String(s.attempt), String(s.invocations), s.idempotencyKey, s.lastError ?? '']),
    [3, 4],
  )
  const timers = snapshot.timers.length === 0 ? 'no timers\n' : formatTable(['TIMER', 'KIND', 'STATUS', 'FIRES AT'], snapshot.timers.map((t) => [t.id, t.kind, t.status, time(t.fireAtMs)]))
  return `${fields}\nSteps:\n${steps}\nTimers:\n${timers}`
}
