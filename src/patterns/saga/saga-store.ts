// Where sagas live: three tables in the same database as the SDK's inbox (src/sdk/store.ts),
// reached only through the Store's transaction API, so a saga's state can change in one
// transaction with a service's own rows, and works on SQLite and PostgreSQL alike.
//
//   tideway_saga_instances  instance_id -> saga name + version, status, current step, input,
//                           trace context, the failed step and last error, times
//   tideway_saga_steps      (instance_id, phase, step_index) -> status, attempt, invocations,
//                           idempotency key, result (JSON), last error, times; phase is invoke
//                           or compensate
//   tideway_saga_timers     timer_id -> kind, instance, fire_at, status (pending, firing, fired,
//                           cancelled), payload: step timeouts, retry delays, saga deadlines.
//                           Stored with ids so they can be cancelled and queried (frameworks.md
//                           finding 11), and re-armed by whichever process starts next.
//   tideway_saga_leases     instance_id -> owner, expires_at: which orchestrator drives the
//                           instance now. Every write an orchestrator makes for an instance
//                           first renews its lease in the same transaction, so one whose lease
//                           was taken over writes nothing more (see orchestrator.ts).
//
// SQL here is written with `?` and numbered for PostgreSQL. Times are epoch milliseconds; the
// drivers return BIGINT as numbers (node:sqlite) or strings (pg), so every read goes through Number().
import type { Store, StoreTransaction } from '../../sdk/store.ts'
import type { Json, StepPhase } from './definition.ts'
import { SagaStatus, StepStatus, TimerStatus, type InstanceSnapshot, type StepRecord } from './machine.ts'

type Row = Record<string, unknown>

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS tideway_saga_instances (
    instance_id TEXT PRIMARY KEY,
    saga_name TEXT NOT NULL,
    saga_version INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed-compensation')),
    current_step INTEGER NOT NULL,
    input TEXT NOT NULL,
    traceparent TEXT,
    failed_step TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
  )`,
  `CREATE INDEX IF NOT EXISTS tideway_saga_instances_status ON tideway_saga_instances (status, updated_at)`,
  `CREATE TABLE IF NOT EXISTS tideway_saga_steps (
    instance_id TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('invoke', 'compensate')),
    step_index INTEGER NOT NULL,
    step_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('started', 'waiting', 'done', 'failed')),
    attempt INTEGER NOT NULL,
    invocations INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    outcome_uncertain INTEGER NOT NULL,
    result TEXT,
    last_error TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (instance_id, phase, step_index)
  )`,
  `CREATE TABLE IF NOT EXISTS tideway_saga_timers (
    timer_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    instance_id TEXT,
    fire_at BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'firing', 'fired', 'cancelled')),
    payload TEXT,
    created_at BIGINT NOT NULL,
    settled_at BIGINT
  )`,
  // The timer loop's scan: unsettled timers by due time, however many settled ones are kept.
  `CREATE INDEX IF NOT EXISTS tideway_saga_timers_due ON tideway_saga_timers (fire_at) WHERE status IN ('pending', 'firing')`,
  `CREATE INDEX IF NOT EXISTS tideway_saga_timers_instance ON tideway_saga_timers (instance_id)`,
  `CREATE TABLE IF NOT EXISTS tideway_saga_leases (
    instance_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS tideway_saga_leases_owner ON tideway_saga_leases (owner)`,
]

/** Creates the saga tables (and the SDK's own) if missing. Safe to call on every start, from several processes. */
export async function migrateSagaTables(store: Store): Promise<void> {
  await store.migrate()
  await store.transaction(async (tx) => {
    // CREATE … IF NOT EXISTS races with itself on PostgreSQL; take turns, as the store's migrate() does.
    if (store.dialect === 'postgres') await tx.query(`SELECT pg_advisory_xact_lock(hashtext('tideway_saga_migrate'))`)
    for (const statement of SCHEMA) await tx.query(statement)
  })
}

/** One timer as stored. */
export interface StoredTimer {
  readonly id: string
  readonly kind: string
  readonly instanceId: string | null
  readonly fireAtMs: number
  readonly status: TimerStatus
  readonly payload: Json
  readonly createdAtMs: number
  /** When it fired or was cancelled. */
  readonly settledAtMs: number | null
}

export interface TimerSpec {
  readonly id: string
  readonly kind: string
  readonly instanceId?: string | null
  readonly fireAtMs: number
  readonly payload?: Json
}

/** Which orchestrator drives an instance, until when (unless it renews). */
export interface SagaLease {
  readonly owner: string
  readonly expiresAtMs: number
}

/** An instance's snapshot with its timers in full (due time, kind, payload) and its lease, if held. */
export interface StoredInstance extends InstanceSnapshot {
  readonly timers: readonly StoredTimer[]
  readonly lease: SagaLease | null
}

export interface InstanceSummary {
  readonly instanceId: string
  readonly sagaName: string
  readonly sagaVersion: number
  readonly status: SagaStatus
  readonly currentStep: number
  readonly failedStep: string | null
  readonly lastError: string | null
  readonly createdAtMs: number
  readonly updatedAtMs: number
}

/** The saga tables' statements, in one store's dialect. Each takes the transaction it runs in. */
export class SagaTables {
  readonly store: Store

  constructor(store: Store) {
    this.store = store
  }

  /** Whether the saga tables are in this database (read-only readers check before reading). */
  async exist(): Promise<boolean> {
    const probe =
      this.store.dialect === 'sqlite'
        ? `SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'tideway_saga_instances'`
        : `SELECT to_regclass('tideway_saga_instances') AS name`
    const [row] = await this.store.transaction((tx) => tx.query<{ name: unknown }>(probe))
    return row !== undefined && row.name !== null
  }

  #sql(text: string): string {
    if (this.store.dialect !== 'postgres') return text
    let n = 0
    return text.replace(/\?/g, () => `$${++n}`)
  }

  query(tx: StoreTransaction, text: string, params: readonly unknown[] = []): Promise<Row[]> {
    return tx.query<Row>(this.#sql(text), params)
  }

  /** Inserts the instance unless one with this id exists; true when it was created. */
  async createInstance(
    tx: StoreTransaction,
    instance: { instanceId: string; sagaName: string; sagaVersion: number; input: Json; traceparent: string | null },
    nowMs: number,
  ): Promise<boolean> {
    const rows = await this.query(
      tx,
      `INSERT INTO tideway_saga_instances (instance_id, saga_name, saga_version, status, current_step, input, traceparent, created_at, updated_at)
       VALUES (?, ?, ?, 'running', 0, ?, ?, ?, ?)
       ON CONFLICT (instance_id) DO NOTHING
       RETURNING instance_id`,
      [instance.instanceId, instance.sagaName, instance.sagaVersion, JSON.stringify(instance.input), instance.traceparent, nowMs, nowMs],
    )
    return rows.length > 0
  }

  async snapshot(tx: StoreTransaction, instanceId: string): Promise<StoredInstance | null> {
    const [row] = await this.query(tx, `SELECT * FROM tideway_saga_instances WHERE instance_id = ?`, [instanceId])
    if (!row) return null
    const steps = await this.query(tx, `SELECT * FROM tideway_saga_steps WHERE instance_id = ? ORDER BY phase DESC, step_index`, [instanceId])
    const timers = await this.listTimers(tx, { instanceId })
    const lease = await this.lease(tx, instanceId)
    return {
      ...summaryOf(row),
      input: JSON.parse(String(row.input)) as Json,
      traceparent: nullableText(row.traceparent),
      finishedAtMs: nullableNumber(row.finished_at),
      steps: steps.map(stepOf),
      timers,
      lease,
    }
  }

  async lease(tx: StoreTransaction, instanceId: string): Promise<SagaLease | null> {
    const [row] = await this.query(tx, `SELECT owner, expires_at FROM tideway_saga_leases WHERE instance_id = ?`, [instanceId])
    return row ? { owner: String(row.owner), expiresAtMs: Number(row.expires_at) } : null
  }

  /**
   * Takes the instance's lease for `owner` until `expiresAtMs` when nobody holds it, `owner`
   * already does, it expired by `nowMs`, or `canTakeOver` says its holder is gone. A
   * compare-and-set on the row as read, so of two orchestrators claiming at once one wins.
   */
  async claimLease(
    tx: StoreTransaction,
    claim: { instanceId: string; owner: string; nowMs: number; expiresAtMs: number; canTakeOver?: (holder: string) => boolean },
  ): Promise<boolean> {
    const held = await this.lease(tx, claim.instanceId)
    if (!held) {
      const rows = await this.query(
        tx,
        `INSERT INTO tideway_saga_leases (instance_id, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id`,
        [claim.instanceId, claim.owner, claim.expiresAtMs],
      )
      return rows.length > 0
    }
    const free = held.owner === claim.owner || held.expiresAtMs <= claim.nowMs || (claim.canTakeOver?.(held.owner) ?? false)
    if (!free) return false
    const rows = await this.query(
      tx,
      `UPDATE tideway_saga_leases SET owner = ?, expires_at = ? WHERE instance_id = ? AND owner = ? AND expires_at = ? RETURNING instance_id`,
      [claim.owner, claim.expiresAtMs, claim.instanceId, held.owner, held.expiresAtMs],
    )
    return rows.length > 0
  }

  /**
   * The fence: renews `owner`'s lease on the instance, false when `owner` no longer holds it
   * (it expired and another orchestrator took it). On PostgreSQL the row stays locked until the
   * transaction ends, so no claim can slip in between this check and the writes after it.
   */
  async renewLease(tx: StoreTransaction, instanceId: string, owner: string, expiresAtMs: number): Promise<boolean> {
    const rows = await this.query(tx, `UPDATE tideway_saga_leases SET expires_at = ? WHERE instance_id = ? AND owner = ? RETURNING instance_id`, [expiresAtMs, instanceId, owner])
    return rows.length > 0
  }

  /** Renews every lease `owner` holds (its heartbeat); the instances it still holds. */
  async renewLeasesOf(tx: StoreTransaction, owner: string, expiresAtMs: number): Promise<string[]> {
    const rows = await this.query(tx, `UPDATE tideway_saga_leases SET expires_at = ? WHERE owner = ? RETURNING instance_id`, [expiresAtMs, owner])
    return rows.map((r) => String(r.instance_id))
  }

  /** Gives up `owner`'s lease on one instance, or on all it holds. */
  async releaseLeases(tx: StoreTransaction, owner: string, instanceId?: string): Promise<void> {
    if (instanceId === undefined) await this.query(tx, `DELETE FROM tideway_saga_leases WHERE owner = ?`, [owner])
    else await this.query(tx, `DELETE FROM tideway_saga_leases WHERE instance_id = ? AND owner = ?`, [instanceId, owner])
  }

  /** Instances that still have work: what an orchestrator resumes on start. */
  async activeInstanceIds(tx: StoreTransaction): Promise<string[]> {
    const rows = await this.query(tx, `SELECT instance_id FROM tideway_saga_instances WHERE status IN ('running', 'compensating') ORDER BY created_at, instance_id`)
    return rows.map((r) => String(r.instance_id))
  }

  async listInstances(tx: StoreTransaction, filter: { status?: string; saga?: string; limit?: number } = {}): Promise<InstanceSummary[]> {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.status) (where.push('status = ?'), params.push(filter.status))
    if (filter.saga) (where.push('saga_name = ?'), params.push(filter.saga))
    params.push(filter.limit ?? 1000)
    const rows = await this.query(
      tx,
      `SELECT instance_id, saga_name, saga_version, status, current_step, failed_step, last_error, created_at, updated_at
       FROM tideway_saga_instances ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at, instance_id LIMIT ?`,
      params,
    )
    return rows.map(summaryOf)
  }

  /** "Step N started": written before invoking. A resume of a started step counts one more invocation. */
  async stepStarted(
    tx: StoreTransaction,
    step: { instanceId: string; phase: StepPhase; index: number; name: string; attempt: number; idempotencyKey: string },
    nowMs: number,
  ): Promise<void> {
    await this.query(
      tx,
      `INSERT INTO tideway_saga_steps (instance_id, phase, step_index, step_name, status, attempt, invocations, idempotency_key, outcome_uncertain, started_at)
       VALUES (?, ?, ?, ?, 'started', ?, 1, ?, 0, ?)
       ON CONFLICT (instance_id, phase, step_index) DO UPDATE SET
         status = 'started', attempt = excluded.attempt, invocations = tideway_saga_steps.invocations + 1`,
      [step.instanceId, step.phase, step.index, step.name, step.attempt, step.idempotencyKey, nowMs],
    )
    await this.#touch(tx, step.instanceId, nowMs)
  }

  /**
   * "Step N done (result)": only a started step can finish, so a late duplicate changes
   * nothing; false then. An invoke step also moves the instance to the next step.
   */
  async stepDone(tx: StoreTransaction, step: { instanceId: string; phase: StepPhase; index: number; result: Json }, nowMs: number): Promise<boolean> {
    const rows = await this.query(
      tx,
      `UPDATE tideway_saga_steps SET status = 'done', result = ?, outcome_uncertain = 0, finished_at = ?
       WHERE instance_id = ? AND phase = ? AND step_index = ? AND status = 'started'
       RETURNING step_index`,
      [JSON.stringify(step.result), nowMs, step.instanceId, step.phase, step.index],
    )
    if (rows.length === 0) return false
    if (step.phase === 'invoke') {
      await this.query(tx, `UPDATE tideway_saga_instances SET current_step = ?, updated_at = ? WHERE instance_id = ? AND current_step = ?`, [
        step.index + 1,
        nowMs,
        step.instanceId,
        step.index,
      ])
    } else await this.#touch(tx, step.instanceId, nowMs)
    return true
  }

  /** An attempt failed: `waiting` for a retry, or `failed` for good. */
  async stepFailed(
    tx: StoreTransaction,
    step: { instanceId: string; phase: StepPhase; index: number; status: typeof StepStatus.waiting | typeof StepStatus.failed; error: string; outcomeUncertain: boolean },
    nowMs: number,
  ): Promise<boolean> {
    const rows = await this.query(
      tx,
      `UPDATE tideway_saga_steps SET status = ?, last_error = ?, outcome_uncertain = ?, finished_at = ?
       WHERE instance_id = ? AND phase = ? AND step_index = ? AND status = 'started'
       RETURNING step_index`,
      [step.status, step.error, step.outcomeUncertain ? 1 : 0, step.status === StepStatus.failed ? nowMs : null, step.instanceId, step.phase, step.index],
    )
    await this.#touch(tx, step.instanceId, nowMs)
    return rows.length > 0
  }

  async setStatus(
    tx: StoreTransaction,
    instanceId: string,
    status: SagaStatus,
    nowMs: number,
    failure?: { step: string | null; error: string },
  ): Promise<void> {
    const terminal = status === SagaStatus.completed || status === SagaStatus.compensated || status === SagaStatus.failedCompensation
    await this.query(
      tx,
      `UPDATE tideway_saga_instances SET status = ?, updated_at = ?, finished_at = ?,
         failed_step = COALESCE(?, failed_step), last_error = COALESCE(?, last_error)
       WHERE instance_id = ?`,
      [status, nowMs, terminal ? nowMs : null, failure?.step ?? null, failure?.error ?? null, instanceId],
    )
  }

  async #touch(tx: StoreTransaction, instanceId: string, nowMs: number): Promise<void> {
    await this.query(tx, `UPDATE tideway_saga_instances SET updated_at = ? WHERE instance_id = ?`, [nowMs, instanceId])
  }

  /** Schedules a timer; one that exists keeps its stored state (scheduling is idempotent by id). */
  async scheduleTimer(tx: StoreTransaction, timer: TimerSpec, nowMs: number): Promise<boolean> {
    const rows = await this.query(
      tx,
      `INSERT INTO tideway_saga_timers (timer_id, kind, instance_id, fire_at, status, payload, created_at)
       VALUES (?, ?, ?, ?, 'pending', ?, ?)
       ON CONFLICT (timer_id) DO NOTHING
       RETURNING timer_id`,
      [timer.id, timer.kind, timer.instanceId ?? null, Math.round(timer.fireAtMs), JSON.stringify(timer.payload ?? null), nowMs],
    )
    return rows.length > 0
  }

  /** Moves a pending timer's due time; false when it is not pending. */
  async rescheduleTimer(tx: StoreTransaction, id: string, fireAtMs: number): Promise<boolean> {
    const rows = await this.query(tx, `UPDATE tideway_saga_timers SET fire_at = ? WHERE timer_id = ? AND status = 'pending' RETURNING timer_id`, [Math.round(fireAtMs), id])
    return rows.length > 0
  }

  /** Cancels a pending timer; false when it was not pending (unknown, firing, fired or cancelled). */
  async cancelTimer(tx: StoreTransaction, id: string, nowMs: number): Promise<boolean> {
    const rows = await this.query(tx, `UPDATE tideway_saga_timers SET status = 'cancelled', settled_at = ? WHERE timer_id = ? AND status = 'pending' RETURNING timer_id`, [nowMs, id])
    return rows.length > 0
  }

  async cancelInstanceTimers(tx: StoreTransaction, instanceId: string, nowMs: number): Promise<number> {
    const rows = await this.query(
      tx,
      `UPDATE tideway_saga_timers SET status = 'cancelled', settled_at = ? WHERE instance_id = ? AND status = 'pending' RETURNING timer_id`,
      [nowMs, instanceId],
    )
    return rows.length
  }

  /** pending -> firing, or a firing timer a crashed process left: true when the caller now fires it. */
  async claimTimer(tx: StoreTransaction, id: string): Promise<boolean> {
    const rows = await this.query(tx, `UPDATE tideway_saga_timers SET status = 'firing' WHERE timer_id = ? AND status IN ('pending', 'firing') RETURNING timer_id`, [id])
    return rows.length > 0
  }

  async timerFired(tx: StoreTransaction, id: string, nowMs: number): Promise<void> {
    await this.query(tx, `UPDATE tideway_saga_timers SET status = 'fired', settled_at = ? WHERE timer_id = ? AND status = 'firing'`, [nowMs, id])
  }

  async timer(tx: StoreTransaction, id: string): Promise<StoredTimer | null> {
    const [row] = await this.query(tx, `SELECT * FROM tideway_saga_timers WHERE timer_id = ?`, [id])
    return row ? timerOf(row) : null
  }

  async listTimers(tx: StoreTransaction, filter: { instanceId?: string; kind?: string; status?: TimerStatus } = {}): Promise<StoredTimer[]> {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.instanceId !== undefined) (where.push('instance_id = ?'), params.push(filter.instanceId))
    if (filter.kind !== undefined) (where.push('kind = ?'), params.push(filter.kind))
    if (filter.status !== undefined) (where.push('status = ?'), params.push(filter.status))
    const rows = await this.query(tx, `SELECT * FROM tideway_saga_timers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY fire_at, timer_id`, params)
    return rows.map(timerOf)
  }

  /** Unsettled timers of these kinds due by `nowMs` (firing ones first: a crash left them), and the next due time after. */
  async dueTimers(tx: StoreTransaction, kinds: readonly string[], nowMs: number, limit: number): Promise<{ due: StoredTimer[]; nextAtMs: number | null }> {
    if (kinds.length === 0) return { due: [], nextAtMs: null }
    const marks = kinds.map(() => '?').join(', ')
    const rows = await this.query(
      tx,
      `SELECT * FROM tideway_saga_timers WHERE status IN ('pending', 'firing') AND kind IN (${marks}) AND fire_at <= ?
       ORDER BY CASE WHEN status = 'firing' THEN 0 ELSE 1 END, fire_at LIMIT ?`,
      [...kinds, nowMs, limit],
    )
    const [next] = await this.query(tx, `SELECT MIN(fire_at) AS next FROM tideway_saga_timers WHERE status = 'pending' AND kind IN (${marks}) AND fire_at > ?`, [...kinds, nowMs])
    return { due: rows.map(timerOf), nextAtMs: nullableNumber(next?.next) }
  }
}

function summaryOf(row: Row): InstanceSummary {
  return {
    instanceId: String(row.instance_id),
    sagaName: String(row.saga_name),
    sagaVersion: Number(row.saga_version),
    status: String(row.status) as SagaStatus,
    currentStep: Number(row.current_step),
    failedStep: nullableText(row.failed_step),
    lastError: nullableText(row.last_error),
    createdAtMs: Number(row.created_at),
    updatedAtMs: Number(row.updated_at),
  }
}

function stepOf(row: Row): StepRecord {
  return {
    phase: String(row.phase) as StepPhase,
    index: Number(row.step_index),
    name: String(row.step_name),
    status: String(row.status) as StepStatus,
    attempt: Number(row.attempt),
    invocations: Number(row.invocations),
    idempotencyKey: String(row.idempotency_key),
    outcomeUncertain: Number(row.outcome_uncertain) === 1,
    result: row.result === null || row.result === undefined ? null : (JSON.parse(String(row.result)) as Json),
    lastError: nullableText(row.last_error),
    startedAtMs: Number(row.started_at),
    finishedAtMs: nullableNumber(row.finished_at),
  }
}

function timerOf(row: Row): StoredTimer {
  return {
    id: String(row.timer_id),
    kind: String(row.kind),
    instanceId: nullableText(row.instance_id),
    fireAtMs: Number(row.fire_at),
    status: String(row.status) as TimerStatus,
    payload: row.payload === null || row.payload === undefined ? null : (JSON.parse(String(row.payload)) as Json),
    createdAtMs: Number(row.created_at),
    settledAtMs: nullableNumber(row.settled_at),
  }
}

const nullableText = (value: unknown): string | null => (value === null || value === undefined ? null : String(value))
const nullableNumber = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value))
