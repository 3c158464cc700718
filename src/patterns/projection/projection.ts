// A CQRS projection: a read model in the user's database, fed from one or more topics by an
// exactly-once consumer (src/sdk/consumer.ts), so each event's update and the offset it moves
// commit in one transaction of the store, and a crash never applies an event twice or skips one.
//
// Guarantees (lifecycle.ts and registry.ts give the mechanism):
//   - readers query views named after the logical tables; a view always shows one whole
//     generation, and every event up to that generation's stored offsets, each applied once;
//   - rebuild() replays every topic from the beginning into fresh tables under a fresh consumer
//     group while the live generation keeps serving; once the build has no lag at a check, the
//     live generation is frozen, the build passes what it had applied, and the views move to the
//     build in one transaction: readers never see a model older than the one before the swap.
//     Each step is one transaction on the registry row, so a crash anywhere leaves the old model
//     or the new one readable, never a mix; start() resumes an unfinished rebuild from its stored
//     offsets;
//   - a generation frozen, swapped out or abandoned never writes again (every write transaction
//     checks the registry row under its lock), whichever process runs its consumer.
//
// Assumes: apply is deterministic in the events (a rebuild must reach the same model), and the
// topics still hold the history a rebuild should see (retention by time or size shortens it).
// A failing event halts its partition by default rather than being dead-lettered, since a read
// model that skipped an event is silently wrong; lag shows the halted partition.

import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Admin } from '@platformatic/kafka'
import { TidewayError } from '../../errors.ts'
import { silentLogger, type Logger } from '../../logger.ts'
import { createConsumer, type ConsumerOptions, type Handler, type IncomingMessage, type TidewayConsumer } from '../../sdk/consumer.ts'
import { messageOf } from '../../sdk/failures.ts'
import { realScheduler } from '../../sdk/retry.ts'
import type { Store, StoreTransaction } from '../../sdk/store.ts'
import { GenerationClosed } from './errors.ts'
import {
  acceptsWrites,
  assertIdentifier,
  buildHasPassed,
  groupIdFor,
  partitionKey,
  partitionLags,
  physicalTable,
  planStart,
  totalLag,
  type GenerationRecord,
  type OffsetMap,
  type PartitionEnds,
  type PartitionLag,
  type ProjectionState,
} from './lifecycle.ts'
import { Registry } from './registry.ts'

/** A generation's physical table for each logical table, e.g. `{ customer_totals: 'customer_totals_v3' }`. */
export type ProjectionTables<Table extends string = string> = { readonly [T in Table]: string }

/**
 * Options of the generations' consumers. Not offered: a delayed retry topic, which would apply
 * an event after later ones of its partition, and the delivery mode, which is exactly-once.
 */
export type ProjectionConsumerOptions<Body> = Pick<
  ConsumerOptions<Body>,
  'retry' | 'classify' | 'deadLetter' | 'middleware' | 'groupInstanceId' | 'sessionTimeoutMs' | 'heartbeatIntervalMs' | 'maxBufferedRecords' | 'idempotencyHeader' | 'clientId' | 'retryOptions'
>

export interface ProjectionOptions<Body = Buffer | null, Table extends string = string> {
  /** Names the projection: its registry row, its consumer groups and, by default, its one table. */
  readonly name: string
  readonly bootstrap: string | readonly string[]
  readonly topics: readonly string[]
  /** The database of the read model (sqliteStore or postgresStore). */
  readonly store: Store
  /**
   * The version of `setup` and `apply` (default 1). Bump it when they change what the model
   * holds: the next start() replays into a fresh generation while the old model stays readable
   * (not updated), and swaps once caught up. Code older than the stored model refuses to start.
   */
  readonly version?: number
  /** The logical tables of the model (default `[name]`); each is a view readers query. */
  readonly tables?: readonly Table[]
  /**
   * Creates a generation's tables under the names given (`tables.<table>`), in the transaction
   * that registers the generation. Name indexes after their table: each generation has its own.
   */
  readonly setup: (tx: StoreTransaction, tables: ProjectionTables<Table>) => Promise<void>
  /** Applies one event to a generation's tables, in the transaction that stores the event's offset. */
  readonly apply: (event: IncomingMessage<Body>, tx: StoreTransaction, tables: ProjectionTables<Table>) => Promise<void>
  /** Turns a record's value into `event.body` (e.g. JSON.parse). */
  readonly decode?: (value: Buffer | null) => Body
  /** Prefix of the generations' consumer groups (default `tideway-projection.<name>`). */
  readonly groupIdPrefix?: string
  /** How often lag is measured and emitted, and a rebuild's progress checked (default 1000 ms). */
  readonly pollIntervalMs?: number
  /** For the generations' consumers; `deadLetter` defaults to false (a failing event halts its partition). */
  readonly consumer?: ProjectionConsumerOptions<Body>
  readonly logger?: Logger
}

export interface GenerationLag {
  readonly generation: number
  readonly version: number
  readonly groupId: string
  readonly partitions: readonly PartitionLag[]
  /** Records of all its partitions not applied yet. */
  readonly total: number
}

export interface ProjectionLag {
  readonly name: string
  /** Wall-clock ms of the measurement. */
  readonly at: number
  /** The generation readers see; null before the projection first started. */
  readonly current: GenerationLag | null
  /** The generation being rebuilt, if any. */
  readonly rebuild: GenerationLag | null
  /** How far behind the model readers see is: the current generation's total (all records before the first start). */
  readonly total: number
}

export const RebuildPhase = {
  /** The fresh generation's tables exist and its consumer replays from the beginning. */
  began: 'began',
  /** An unfinished build (a crash, a stop) goes on from its stored offsets. */
  resumed: 'resumed',
  /** The build had no lag at a check. */
  caughtUp: 'caught-up',
  /** The live generation takes no more writes, so the build can pass it. */
  frozen: 'frozen',
  /** Readers' views point at the new generation. */
  swapped: 'swapped',
  /** The old generation's tables are dropped and its consumer's state removed. */
  retired: 'retired',
  /** An unfinished build of another version was dropped. */
  abandoned: 'abandoned',
} as const
export type RebuildPhase = (typeof RebuildPhase)[keyof typeof RebuildPhase]

export interface RebuildEvent {
  readonly phase: RebuildPhase
  readonly generation: number
  /** The generation readers saw when the build began. */
  readonly previous: number
  readonly at: number
}

export interface RebuildResult {
  readonly generation: number
  readonly previousGeneration: number
  /** Events the build applied in this process (a resumed build counts only its own part). */
  readonly applied: number
}

export interface ProjectionEvents {
  /** Every pollIntervalMs while started. */
  lag: [ProjectionLag]
  /** Emitted right after each step commits, before the next one starts. */
  rebuild: [RebuildEvent]
}

export interface ProjectionStatus {
  readonly name: string
  readonly running: boolean
  /** The generation this instance applies events to, or null. */
  readonly generation: number | null
  /** The generation this instance is rebuilding, or null. */
  readonly rebuilding: number | null
  readonly lastLag: ProjectionLag | null
}

interface Runner<Body> {
  readonly record: GenerationRecord
  readonly consumer: TidewayConsumer<Body>
}

interface Build<Body> {
  readonly record: GenerationRecord
  runner: Runner<Body> | null
  readonly done: Promise<RebuildResult>
}

const LATEST = -1n
const EARLIEST = -2n

export class Projection<Body = Buffer | null, Table extends string = string> extends EventEmitter<ProjectionEvents> {
  readonly name: string
  readonly version: number
  readonly #options: ProjectionOptions<Body, Table>
  readonly #tables: readonly Table[]
  readonly #registry: Registry
  readonly #logger: Logger
  readonly #pollIntervalMs: number
  readonly #groupIdPrefix: string
  #stopping = new AbortController()
  #running = false
  #live: Runner<Body> | null = null
  #build: Build<Body> | null = null
  #admin: Admin | null = null
  #timer: NodeJS.Timeout | null = null
  #ticking: Promise<void> | null = null
  #registryReady: Promise<void> | null = null
  #lastLag: ProjectionLag | null = null

  constructor(options: ProjectionOptions<Body, Table>) {
    super()
    assertIdentifier('name', options.name)
    const tables = options.tables ?? [options.name as Table]
    if (tables.length === 0) throw new TidewayError('TIDEWAY_ERR_CONFIG', 'tables must name at least one table')
    for (const table of tables) assertIdentifier('a table name', table)
    if (new Set(tables).size !== tables.length) throw new TidewayError('TIDEWAY_ERR_CONFIG', `tables must be distinct: ${tables.join(', ')}`)
    if (options.topics.length === 0) throw new TidewayError('TIDEWAY_ERR_CONFIG', 'topics must name at least one topic')
    const version = options.version ?? 1
    if (!Number.isSafeInteger(version) || version < 1) throw new TidewayError('TIDEWAY_ERR_CONFIG', `version must be a positive integer, got ${version}`)
    const pollIntervalMs = options.pollIntervalMs ?? 1_000
    if (!Number.isSafeInteger(pollIntervalMs) || pollIntervalMs < 1) throw new TidewayError('TIDEWAY_ERR_CONFIG', `pollIntervalMs must be a positive integer, got ${pollIntervalMs}`)
    this.name = options.name
    this.version = version
    this.#options = options
    this.#tables = tables
    this.#registry = new Registry(options.store.dialect, options.name)
    this.#logger = (options.logger ?? silentLogger).child({ projection: options.name })
    this.#pollIntervalMs = pollIntervalMs
    this.#groupIdPrefix = options.groupIdPrefix ?? `tideway-projection.${options.name}`
  }

  /**
   * Registers the projection (the first start creates generation 1 and its views), resumes an
   * unfinished rebuild, or begins one when the stored model is of an older version, and starts
   * applying events. Resolves once the consumers have joined their groups.
   */
  async start(): Promise<void> {
    if (this.#running) throw new TidewayError('TIDEWAY_ERR_CONFIG', `projection "${this.name}" is already started`)
    this.#running = true
    this.#stopping = new AbortController()
    try {
      await this.#options.store.migrate()
      await this.#ensureRegistry()
      const plan = await this.#options.store.transaction(async (tx) => {
        const state = await this.#registry.state(tx, true)
        const decided = planStart(this.name, state, this.version)
        const now = Date.now()
        if (decided.kind === 'create') {
          const first = this.#newRecord(1)
          await this.#options.setup(tx, this.#tablesOf(first))
          await this.#registry.create(tx, first, now)
          return { serve: first, build: null, retire: null, abandoned: null, previous: first.generation }
        }
        const existing = state!
        if (decided.unfreeze) await this.#registry.setFrozen(tx, false, now)
        if (decided.abandonBuild) await this.#registry.abandonBuild(tx, existing.building!, now)
        let build: { record: GenerationRecord; resumed: boolean } | null = null
        if (decided.build === 'resume') build = { record: existing.building!, resumed: true }
        if (decided.build === 'begin') build = { record: await this.#beginBuild(tx, existing), resumed: false }
        return {
          serve: decided.serve ? existing.current : null,
          build,
          retire: decided.finishRetirement ? existing.retired : null,
          abandoned: decided.abandonBuild ? existing.building : null,
          previous: existing.current.generation,
        }
      })
      if (plan.abandoned) {
        this.#emitPhase(RebuildPhase.abandoned, plan.abandoned.generation, plan.previous)
        await this.#forget(plan.abandoned)
      }
      if (plan.retire) await this.#retire(plan.retire)
      if (plan.serve) this.#live = await this.#startRunner(plan.serve)
      if (plan.build) this.#startBuild(plan.build.record, plan.previous, plan.build.resumed)
      this.#timer = setInterval(() => void this.#tick(), this.#pollIntervalMs)
      this.#timer.unref()
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  /**
   * Stops applying events. A rebuild under way stops where it is (its promise rejects) and is
   * resumed by the next start(); readers keep the model they had.
   */
  async stop(): Promise<void> {
    if (!this.#running) return
    this.#running = false
    this.#stopping.abort(new TidewayError('TIDEWAY_ERR_CLOSED', `projection "${this.name}" stopped; an unfinished rebuild resumes on the next start()`))
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    // Let the rebuild's step under way finish first: it may be stopping the live consumer.
    await this.#build?.done.catch(() => {})
    await this.#ticking
    const runners = [this.#live, this.#build?.runner].filter((r): r is Runner<Body> => r !== null && r !== undefined)
    this.#live = null
    this.#build = null
    for (const runner of runners) await runner.consumer.stop()
    await this.#admin?.close().catch(() => {})
    this.#admin = null
  }

  /**
   * Replays every topic from the beginning into a fresh generation while the current one keeps
   * serving, swaps readers over once it has caught up, and drops the old generation. Resolves
   * when the old one is gone; a rebuild already under way is joined, not started again.
   */
  async rebuild(): Promise<RebuildResult> {
    if (!this.#running) throw new TidewayError('TIDEWAY_ERR_CLOSED', `start() projection "${this.name}" before rebuild()`)
    if (this.#build) return this.#build.done
    const begun = await this.#options.store.transaction(async (tx) => {
      const state = (await this.#registry.state(tx, true))!
      if (state.building?.version === this.version) return { record: state.building, resumed: true, previous: state.current.generation, abandoned: null }
      if (state.building) await this.#registry.abandonBuild(tx, state.building, Date.now())
      return { record: await this.#beginBuild(tx, state), resumed: false, previous: state.current.generation, abandoned: state.building }
    })
    if (begun.abandoned) {
      this.#emitPhase(RebuildPhase.abandoned, begun.abandoned.generation, begun.previous)
      await this.#forget(begun.abandoned)
    }
    if (this.#build) return (this.#build as Build<Body>).done
    return this.#startBuild(begun.record, begun.previous, begun.resumed).done
  }

  /** Measures lag now: per partition, the high watermark − the next offset to apply. Works whether started or not. */
  async lag(): Promise<ProjectionLag> {
    await this.#ensureRegistry()
    const state = await this.#options.store.transaction((tx) => this.#registry.state(tx, false))
    const topics = [...new Set([...(state?.current.topics ?? this.#options.topics), ...(state?.building?.topics ?? [])])]
    const ends = await this.#partitionEnds(topics)
    const current = state ? await this.#generationLag(state.current, ends) : null
    const rebuild = state?.building ? await this.#generationLag(state.building, ends) : null
    return { name: this.name, at: Date.now(), current, rebuild, total: current ? current.total : totalLag(partitionLags(ends, new Map())) }
  }

  status(): ProjectionStatus {
    return {
      name: this.name,
      running: this.#running,
      generation: this.#live?.record.generation ?? null,
      rebuilding: this.#build?.record.generation ?? null,
      lastLag: this.#lastLag,
    }
  }

  #ensureRegistry(): Promise<void> {
    this.#registryReady ??= this.#options.store.transaction((tx) => this.#registry.createTables(tx)).catch((err: unknown) => {
      this.#registryReady = null
      throw err
    })
    return this.#registryReady
  }

  #newRecord(generation: number): GenerationRecord {
    return {
      generation,
      version: this.version,
      groupId: groupIdFor(this.#groupIdPrefix, generation, randomBytes(3).toString('hex')),
      tables: [...this.#tables],
      topics: [...this.#options.topics],
    }
  }

  #tablesOf(record: GenerationRecord): ProjectionTables<Table> {
    return Object.fromEntries(record.tables.map((table) => [table, physicalTable(table, record.generation)])) as ProjectionTables<Table>
  }

  /** Inside the caller's transaction: the next generation's tables and its registry row. */
  async #beginBuild(tx: StoreTransaction, state: ProjectionState): Promise<GenerationRecord> {
    const record = this.#newRecord(state.lastGeneration + 1)
    await this.#options.setup(tx, this.#tablesOf(record))
    await this.#registry.beginBuild(tx, record, Date.now())
    return record
  }

  #startBuild(record: GenerationRecord, previous: number, resumed: boolean): Build<Body> {
    let build!: Build<Body>
    const done = Promise.resolve().then(() => this.#runBuild(build, previous, resumed))
    build = { record, runner: null, done }
    this.#build = build
    // The caller of rebuild() gets the outcome; a build begun by start() is only logged.
    done.then(
      () => {
        if (this.#build === build) this.#build = null
      },
      (err: unknown) => {
        if (this.#stopping.signal.aborted) return
        this.#logger.error('rebuild failed; rebuild() resumes it', { generation: record.generation, err: messageOf(err) })
        void this.#afterFailedBuild(build)
      },
    )
    return build
  }

  /** A build that failed (not stopped): stop its consumer and unfreeze, so the live generation serves again. */
  async #afterFailedBuild(build: Build<Body>): Promise<void> {
    if (this.#build === build) this.#build = null
    try {
      await build.runner?.consumer.stop()
      await this.#options.store.transaction(async (tx) => {
        const row = await this.#registry.row(tx, true)
        if (row?.buildingGeneration === build.record.generation && row.frozen) await this.#registry.setFrozen(tx, false, Date.now())
      })
    } catch (err) {
      this.#logger.error('cleaning up after a failed rebuild failed', { generation: build.record.generation, err: messageOf(err) })
    }
    void this.#tick() // restarts the live consumer if the build had stopped it
  }

  async #runBuild(build: Build<Body>, previous: number, resumed: boolean): Promise<RebuildResult> {
    const { record } = build
    const store = this.#options.store
    this.#emitPhase(resumed ? RebuildPhase.resumed : RebuildPhase.began, record.generation, previous)
    build.runner = await this.#startRunner(record)
    const runner = build.runner
    await this.#waitUntil(async () => (await this.#generationLag(record)).total === 0)
    this.#emitPhase(RebuildPhase.caughtUp, record.generation, previous)

    // Freeze, let the build pass what the live generation applied, swap; again if another
    // instance unfroze in between (a restart) or the live one moved on.
    let swappedOut: GenerationRecord | null = null
    for (;;) {
      this.#throwIfStopping()
      const frozen = await store.transaction(async (tx) => {
        const state = (await this.#registry.state(tx, true))!
        if (state.building?.generation !== record.generation) return { kind: 'lost' as const, state }
        if (!state.frozen) await this.#registry.setFrozen(tx, true, Date.now())
        return { kind: 'frozen' as const, liveApplied: await this.#registry.appliedOffsets(tx, state.current.groupId) }
      })
      if (frozen.kind === 'lost') return this.#lostBuild(build, frozen.state, previous)
      this.#emitPhase(RebuildPhase.frozen, record.generation, previous)
      if (this.#live) {
        // It can write no more; stopping it spares its lanes the retries of refused transactions.
        const live = this.#live
        this.#live = null
        await live.consumer.stop()
      }
      await this.#waitUntil(async () => buildHasPassed(await this.#applied(record.groupId), frozen.liveApplied, record.topics))
      this.#throwIfStopping()
      const outcome = await store.transaction(async (tx) => {
        const state = (await this.#registry.state(tx, true))!
        if (state.building?.generation !== record.generation) return { kind: 'lost' as const, state }
        // Unfrozen by a restart elsewhere, or the live generation applied more meanwhile: freeze again.
        if (!state.frozen) return { kind: 'deferred' as const, reason: 'unfrozen' }
        const [buildApplied, liveApplied] = [await this.#registry.appliedOffsets(tx, record.groupId), await this.#registry.appliedOffsets(tx, state.current.groupId)]
        if (!buildHasPassed(buildApplied, liveApplied, record.topics)) return { kind: 'deferred' as const, reason: 'behind' }
        await this.#registry.swap(tx, state, Date.now())
        return { kind: 'swapped' as const, old: state.current }
      })
      if (outcome.kind === 'lost') return this.#lostBuild(build, outcome.state, previous)
      if (outcome.kind === 'swapped') {
        swappedOut = outcome.old
        break
      }
      this.#logger.info('swap deferred', { generation: record.generation, reason: outcome.reason })
    }
    this.#live = runner
    this.#build = null
    this.#emitPhase(RebuildPhase.swapped, record.generation, previous)
    await this.#retire(swappedOut)
    this.#emitPhase(RebuildPhase.retired, record.generation, previous)
    return { generation: record.generation, previousGeneration: swappedOut.generation, applied: runner.consumer.stats.handled }
  }

  /** The registry no longer names this build: another instance swapped it in, or dropped it. */
  async #lostBuild(build: Build<Body>, state: ProjectionState, previous: number): Promise<RebuildResult> {
    const runner = build.runner!
    this.#build = null
    if (state.current.generation === build.record.generation) {
      this.#live = runner
      return { generation: build.record.generation, previousGeneration: previous, applied: runner.consumer.stats.handled }
    }
    await runner.consumer.stop()
    throw new TidewayError('TIDEWAY_ERR_CLOSED', `projection "${this.name}": the rebuild into generation ${build.record.generation} was abandoned by another instance`)
  }

  /** Drops a swapped-out generation's tables, then what its consumer kept, then its Kafka group. */
  async #retire(retired: GenerationRecord): Promise<void> {
    await this.#options.store.transaction(async (tx) => {
      const row = await this.#registry.row(tx, true)
      if (row?.retiredGeneration === retired.generation) await this.#registry.retire(tx, retired, Date.now())
    })
    await this.#forget(retired)
  }

  async #forget(record: GenerationRecord): Promise<void> {
    await this.#options.store.transaction((tx) => this.#registry.forgetGroup(tx, record.groupId))
    try {
      await this.#adminClient().deleteGroups({ groups: [record.groupId] })
    } catch (err) {
      // A member elsewhere has not left yet, or the cluster refuses: Kafka expires the group's offsets anyway.
      this.#logger.debug('deleting a retired consumer group failed', { group: record.groupId, err: messageOf(err) })
    }
  }

  async #startRunner(record: GenerationRecord): Promise<Runner<Body>> {
    const { consumer: extra, decode, store, bootstrap } = this.#options
    const consumer = createConsumer<Body>({
      deadLetter: false,
      ...extra,
      bootstrap,
      store,
      groupId: record.groupId,
      topics: record.topics,
      delivery: 'exactly-once',
      from: 'earliest',
      clientId: extra?.clientId ?? `tideway-projection-${this.name}-v${record.generation}`,
      handler: this.#handlerFor(record),
      ...(decode ? { decode } : {}),
      logger: this.#logger.child({ generation: record.generation }),
    })
    try {
      await consumer.start()
    } catch (err) {
      await consumer.stop()
      throw err
    }
    return { record, consumer }
  }

  /** The consumer's handler: the first event of each transaction checks the registry (the gate), then apply. */
  #handlerFor(record: GenerationRecord): Handler<Body> {
    const tables = this.#tablesOf(record)
    const gated = new WeakSet<StoreTransaction>()
    return async (event, context) => {
      const tx = context.tx!
      if (!gated.has(tx)) {
        const row = await this.#registry.row(tx, true)
        if (!row || !acceptsWrites(row, record.generation)) {
          void this.#tick()
          throw new GenerationClosed(this.name, record.generation)
        }
        gated.add(tx)
      }
      await this.#options.apply(event, tx, tables)
    }
  }

  /** Measures and emits lag; follows a swap made by another instance. */
  #tick(): Promise<void> {
    if (this.#ticking || !this.#running) return this.#ticking ?? Promise.resolve()
    this.#ticking = (async () => {
      try {
        const report = await this.lag()
        this.#lastLag = report
        this.emit('lag', report)
        await this.#follow()
      } catch (err) {
        if (this.#running) this.#logger.warn('measuring lag failed', { err: messageOf(err) })
      } finally {
        this.#ticking = null
      }
    })()
    return this.#ticking
  }

  /** When the registry's current generation is not the one served here (and no local rebuild owns the change), move to it. */
  async #follow(): Promise<void> {
    if (this.#build || !this.#running) return
    const state = await this.#options.store.transaction((tx) => this.#registry.state(tx, false))
    if (!state || this.#live?.record.generation === state.current.generation) return
    if (this.#live) {
      const old = this.#live
      this.#live = null
      await old.consumer.stop()
    }
    if (state.current.version === this.version) {
      this.#logger.info('following the current generation', { generation: state.current.generation })
      this.#live = await this.#startRunner(state.current)
    } else if (state.current.version > this.version) {
      this.#logger.error('the current generation was built by newer code; this instance applies nothing', { generation: state.current.generation, version: state.current.version, codeVersion: this.version })
    }
  }

  async #generationLag(record: GenerationRecord, known?: readonly PartitionEnds[]): Promise<GenerationLag> {
    const ends = (known ?? (await this.#partitionEnds(record.topics))).filter((end) => record.topics.includes(end.topic))
    const partitions = partitionLags(ends, await this.#applied(record.groupId))
    return { generation: record.generation, version: record.version, groupId: record.groupId, partitions, total: totalLag(partitions) }
  }

  /** What a group applied, as the store holds it (the truth; Kafka's commit only follows it). */
  async #applied(groupId: string): Promise<OffsetMap> {
    const stored = await this.#options.store.readOffsets(groupId)
    return new Map(stored.map((o) => [partitionKey(o.topic, o.partition), o.nextOffset]))
  }

  async #partitionEnds(topics: readonly string[]): Promise<PartitionEnds[]> {
    const admin = this.#adminClient()
    const metadata = await admin.metadata({ topics: [...topics] })
    const request = topics.map((name) => ({ name, partitionsCount: metadata.topics.get(name)?.partitionsCount ?? 0 }))
    const list = (timestamp: bigint) =>
      admin.listOffsets({ topics: request.map(({ name, partitionsCount }) => ({ name, partitions: Array.from({ length: partitionsCount }, (_, partitionIndex) => ({ partitionIndex, timestamp })) })) })
    const [latest, earliest] = [await list(LATEST), await list(EARLIEST)]
    const start = new Map(earliest.flatMap((t) => t.partitions.map((p) => [partitionKey(t.name, p.partitionIndex), p.offset] as const)))
    return latest
      .flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, highWatermark: p.offset, logStartOffset: start.get(partitionKey(t.name, p.partitionIndex)) ?? 0n })))
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
  }

  #adminClient(): Admin {
    const bootstrap = this.#options.bootstrap
    this.#admin ??= new Admin({ clientId: `tideway-projection-${this.name}-admin`, bootstrapBrokers: typeof bootstrap === 'string' ? [bootstrap] : [...bootstrap] })
    return this.#admin
  }

  /**
   * Polls `probe` every pollIntervalMs until it holds; rejects only when the projection stops. A
   * probe that fails (the broker restarting) counts as "not yet": a long replay outlives it.
   */
  async #waitUntil(probe: () => Promise<boolean>): Promise<void> {
    for (;;) {
      this.#throwIfStopping()
      try {
        if (await probe()) return
      } catch (err) {
        this.#logger.warn('checking the rebuild failed; checking again', { err: messageOf(err) })
      }
      await realScheduler.sleep(this.#pollIntervalMs, this.#stopping.signal)
    }
  }

  #throwIfStopping(): void {
    if (this.#stopping.signal.aborted) throw this.#stopping.signal.reason
  }

  #emitPhase(phase: RebuildPhase, generation: number, previous: number): void {
    this.#logger.info(`rebuild ${phase}`, { generation, previous })
    this.emit('rebuild', { phase, generation, previous, at: Date.now() })
  }
}

export function createProjection<Body = Buffer | null, const Table extends string = string>(options: ProjectionOptions<Body, Table>): Projection<Body, Table> {
  return new Projection(options)
}
