// Where a projection's generations are recorded, in the user's database next to the read model,
// and each step of a rebuild as one transaction on the registry row:
//
//   tideway_projections             name -> current_generation, frozen, building_generation,
//                                   retired_generation: the state every write transaction checks
//   tideway_projection_generations  (name, generation) -> version, group_id, tables, topics,
//                                   created_at, live_at, retired_at: one row per generation ever
//                                   begun (numbers are never reused), kept as history
//
// Readers never look here: each logical table is a view pointing at the current generation's
// table, and the swap replaces every view and the registry row in one transaction. A view rather
// than a pointer row that readers would look up: plain `SELECT … FROM <table>` keeps working
// unchanged, and a reader can never pair a pointer read with a table from another generation.
// Both PostgreSQL and SQLite change views inside a transaction, so a reader sees the old views
// or the new ones; PostgreSQL re-resolves a name whose view was replaced while it waited for the
// lock, so a reader blocked by the swap reads the new model rather than failing.
//
// The SDK's own tables (tideway_consumer_offsets, tideway_inbox, tideway_parked_keys: store.ts)
// are read and pruned here by group id, for the generations this module created.

import type { StoreDialect, StoreTransaction } from '../../sdk/store.ts'
import { partitionKey, physicalTable, type GenerationRecord, type OffsetMap, type ProjectionState, type RegistryRow } from './lifecycle.ts'

type Row = Record<string, unknown>

export const REGISTRY_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS tideway_projections (
    name TEXT PRIMARY KEY,
    current_generation INTEGER NOT NULL,
    frozen INTEGER NOT NULL DEFAULT 0,
    building_generation INTEGER,
    retired_generation INTEGER,
    updated_at BIGINT NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS tideway_projection_generations (
    name TEXT NOT NULL,
    generation INTEGER NOT NULL,
    version INTEGER NOT NULL,
    group_id TEXT NOT NULL,
    tables TEXT NOT NULL,
    topics TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    live_at BIGINT,
    retired_at BIGINT,
    PRIMARY KEY (name, generation)
  )`,
]

export class Registry {
  readonly name: string
  readonly #dialect: StoreDialect

  constructor(dialect: StoreDialect, name: string) {
    this.#dialect = dialect
    this.name = name
  }

  /** The user's `query` takes `$n` on PostgreSQL and `?` on SQLite; our SQL is written with `?`. */
  #query(tx: StoreTransaction, sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    let n = 0
    return tx.query<Row>(this.#dialect === 'postgres' ? sql.replace(/\?/g, () => `$${++n}`) : sql, params)
  }

  async createTables(tx: StoreTransaction): Promise<void> {
    // Concurrent CREATE … IF NOT EXISTS of one table can fail on PostgreSQL's catalog: take turns.
    if (this.#dialect === 'postgres') await this.#query(tx, `SELECT pg_advisory_xact_lock(hashtext('tideway_projections'))`)
    for (const sql of REGISTRY_SCHEMA) await this.#query(tx, sql)
  }

  /**
   * The registry row, locked until the transaction ends when `lock` (PostgreSQL FOR UPDATE;
   * SQLite's transactions are exclusive already). Every write transaction of the projection takes
   * this lock first, so they take turns: events of two topics updating the same read-model rows
   * in different orders would otherwise deadlock.
   */
  async row(tx: StoreTransaction, lock: boolean): Promise<RegistryRow | null> {
    const [row] = await this.#query(
      tx,
      `SELECT current_generation, frozen, building_generation, retired_generation FROM tideway_projections WHERE name = ?${lock && this.#dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
      [this.name],
    )
    if (!row) return null
    return {
      currentGeneration: Number(row.current_generation),
      frozen: Number(row.frozen) !== 0,
      buildingGeneration: nullableNumber(row.building_generation),
      retiredGeneration: nullableNumber(row.retired_generation),
    }
  }

  async state(tx: StoreTransaction, lock: boolean): Promise<ProjectionState | null> {
    const row = await this.row(tx, lock)
    if (!row) return null
    const generations = new Map<number, GenerationRecord>()
    let lastGeneration = 0
    for (const g of await this.#query(tx, `SELECT generation, version, group_id, tables, topics FROM tideway_projection_generations WHERE name = ?`, [this.name])) {
      const generation = Number(g.generation)
      lastGeneration = Math.max(lastGeneration, generation)
      generations.set(generation, {
        generation,
        version: Number(g.version),
        groupId: String(g.group_id),
        tables: JSON.parse(String(g.tables)) as string[],
        topics: JSON.parse(String(g.topics)) as string[],
      })
    }
    const record = (generation: number | null): GenerationRecord | null => {
      if (generation === null) return null
      const found = generations.get(generation)
      if (!found) throw new Error(`projection "${this.name}": the registry names generation ${generation}, which has no row in tideway_projection_generations`)
      return found
    }
    return { current: record(row.currentGeneration)!, frozen: row.frozen, building: record(row.buildingGeneration), retired: record(row.retiredGeneration), lastGeneration }
  }

  async #insertGeneration(tx: StoreTransaction, record: GenerationRecord, nowMs: number, live: boolean): Promise<void> {
    await this.#query(
      tx,
      `INSERT INTO tideway_projection_generations (name, generation, version, group_id, tables, topics, created_at, live_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [this.name, record.generation, record.version, record.groupId, JSON.stringify(record.tables), JSON.stringify(record.topics), nowMs, live ? nowMs : null],
    )
  }

  /** The first generation, live at once: its tables (made by the caller's setup) behind new views. */
  async create(tx: StoreTransaction, record: GenerationRecord, nowMs: number): Promise<void> {
    await this.#insertGeneration(tx, record, nowMs, true)
    await this.#query(tx, `INSERT INTO tideway_projections (name, current_generation, frozen, updated_at) VALUES (?, ?, 0, ?)`, [this.name, record.generation, nowMs])
    await this.#pointViews(tx, [], record)
  }

  async beginBuild(tx: StoreTransaction, record: GenerationRecord, nowMs: number): Promise<void> {
    await this.#insertGeneration(tx, record, nowMs, false)
    await this.#query(tx, `UPDATE tideway_projections SET building_generation = ?, updated_at = ? WHERE name = ?`, [record.generation, nowMs, this.name])
  }

  /** Drops an unfinished build's tables; the generation's number stays taken. */
  async abandonBuild(tx: StoreTransaction, build: GenerationRecord, nowMs: number): Promise<void> {
    await this.#dropTables(tx, build)
    await this.#query(tx, `UPDATE tideway_projections SET building_generation = NULL, frozen = 0, updated_at = ? WHERE name = ?`, [nowMs, this.name])
    await this.#query(tx, `UPDATE tideway_projection_generations SET retired_at = ? WHERE name = ? AND generation = ?`, [nowMs, this.name, build.generation])
  }

  async setFrozen(tx: StoreTransaction, frozen: boolean, nowMs: number): Promise<void> {
    await this.#query(tx, `UPDATE tideway_projections SET frozen = ?, updated_at = ? WHERE name = ?`, [frozen ? 1 : 0, nowMs, this.name])
  }

  /** The swap: readers' views move to the build, the build becomes current, the old one retired. */
  async swap(tx: StoreTransaction, state: ProjectionState, nowMs: number): Promise<void> {
    const build = state.building!
    await this.#pointViews(tx, state.current.tables, build)
    await this.#query(
      tx,
      `UPDATE tideway_projections SET current_generation = ?, building_generation = NULL, frozen = 0, retired_generation = ?, updated_at = ? WHERE name = ?`,
      [build.generation, state.current.generation, nowMs, this.name],
    )
    await this.#query(tx, `UPDATE tideway_projection_generations SET live_at = ? WHERE name = ? AND generation = ?`, [nowMs, this.name, build.generation])
  }

  async retire(tx: StoreTransaction, retired: GenerationRecord, nowMs: number): Promise<void> {
    await this.#dropTables(tx, retired)
    await this.#query(tx, `UPDATE tideway_projections SET retired_generation = NULL, updated_at = ? WHERE name = ?`, [nowMs, this.name])
    await this.#query(tx, `UPDATE tideway_projection_generations SET retired_at = ? WHERE name = ? AND generation = ?`, [nowMs, this.name, retired.generation])
  }

  /** Deletes what the exactly-once consumer kept for a generation's group (offsets, inbox, parked keys). */
  async forgetGroup(tx: StoreTransaction, groupId: string): Promise<void> {
    for (const table of ['tideway_consumer_offsets', 'tideway_inbox', 'tideway_parked_keys']) {
      await this.#query(tx, `DELETE FROM ${table} WHERE group_id = ?`, [groupId])
    }
  }

  /** The offsets a group has applied, as the consumer stored them in the same transactions as its writes. */
  async appliedOffsets(tx: StoreTransaction, groupId: string): Promise<OffsetMap> {
    const rows = await this.#query(tx, `SELECT topic, partition, next_offset FROM tideway_consumer_offsets WHERE group_id = ? AND next_offset IS NOT NULL`, [groupId])
    // int8 arrives as a string from pg's default parsers and as a number from node:sqlite.
    return new Map(rows.map((r) => [partitionKey(String(r.topic), Number(r.partition)), BigInt(r.next_offset as string | number | bigint)]))
  }

  async #pointViews(tx: StoreTransaction, previousTables: readonly string[], target: GenerationRecord): Promise<void> {
    // DROP and CREATE rather than CREATE OR REPLACE: PostgreSQL replaces a view only when the
    // columns stay the same, and a new version may change them.
    for (const table of new Set([...previousTables, ...target.tables])) await this.#query(tx, `DROP VIEW IF EXISTS ${table}`)
    for (const table of target.tables) await this.#query(tx, `CREATE VIEW ${table} AS SELECT * FROM ${physicalTable(table, target.generation)}`)
  }

  async #dropTables(tx: StoreTransaction, record: GenerationRecord): Promise<void> {
    for (const table of record.tables) await this.#query(tx, `DROP TABLE IF EXISTS ${physicalTable(table, record.generation)}`)
  }
}

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value)
}
