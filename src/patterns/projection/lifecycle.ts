// The pure part of a projection: what each generation is called, what start() must do given the
// registry's state and the code's version, which generation may write, when a rebuild may swap,
// and how lag is counted. No I/O here: registry.ts reads and writes the state, projection.ts
// runs the consumers.
//
// A projection's life is a sequence of generations. Each generation is one set of physical
// tables (`<table>_v<generation>`) fed by its own consumer group, whose offsets the exactly-once
// consumer keeps in the same database. The registry row says which generation readers see
// (`current`, behind the views), which one is being built from the beginning of the topics
// (`building`), and which one was swapped out and still has tables to drop (`retired`).

import { TidewayError } from '../../errors.ts'
import { ProjectionVersionError } from './errors.ts'

export interface GenerationRecord {
  readonly generation: number
  /** The `version` of the code that built it (setup and apply). */
  readonly version: number
  /** Its consumer group: unique per generation, never reused (see groupIdFor). */
  readonly groupId: string
  /** Logical table names; each is a view readers query, backed by `<table>_v<generation>`. */
  readonly tables: readonly string[]
  readonly topics: readonly string[]
}

/** The registry row: which generation is which. */
export interface RegistryRow {
  readonly currentGeneration: number
  /** A swap is under way: the current generation takes no more writes, so the new one can pass it. */
  readonly frozen: boolean
  readonly buildingGeneration: number | null
  readonly retiredGeneration: number | null
}

/** The registry row with its generations' records. */
export interface ProjectionState {
  readonly current: GenerationRecord
  /** A swap is under way: the current generation takes no more writes, so the new one can pass it. */
  readonly frozen: boolean
  readonly building: GenerationRecord | null
  readonly retired: GenerationRecord | null
  /** The highest generation number ever handed out, abandoned builds included. */
  readonly lastGeneration: number
}

export type StartPlan =
  | { readonly kind: 'create' }
  | {
      readonly kind: 'existing'
      /** Run the live consumer on `current` (its version is this code's). */
      readonly serve: boolean
      /** Drop the unfinished build: it was started by code of another version. */
      readonly abandonBuild: boolean
      readonly build: 'resume' | 'begin' | null
      /** Drop the tables of a generation swapped out before a crash. */
      readonly finishRetirement: boolean
      /** A crash came between freeze and swap: serve again until the resumed build freezes anew. */
      readonly unfreeze: boolean
    }

/** Identifiers go into SQL unquoted, so only lowercase letters, digits and `_` (both dialects fold alike). */
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/
/** PostgreSQL keeps 63 bytes of a name; `_v` and ten digits of generation must fit after it. */
export const MAX_TABLE_NAME_LENGTH = 50

export function assertIdentifier(what: string, value: string): void {
  if (!IDENTIFIER.test(value) || value.length > MAX_TABLE_NAME_LENGTH) {
    throw new TidewayError(
      'TIDEWAY_ERR_CONFIG',
      `${what} must be lowercase letters, digits and _ (starting with a letter or _), at most ${MAX_TABLE_NAME_LENGTH} characters; got ${JSON.stringify(value)}`,
    )
  }
}

export function physicalTable(table: string, generation: number): string {
  return `${table}_v${generation}`
}

/**
 * A generation's group id carries a random token: were it only `<prefix>.v<n>`, a database reset
 * (or a second database with the same prefix) would meet the old group's Kafka commits, and the
 * consumer, finding no offset in its store, would start from them and skip events.
 */
export function groupIdFor(prefix: string, generation: number, token: string): string {
  return `${prefix}.v${generation}.${token}`
}

/**
 * What start() does. The version rule: code of version V serves a current generation of version
 * V; a current generation of an older version stays readable, unchanged, while V's build
 * replays into a fresh one; a newer one is refused. An unfinished build of V is resumed from its
 * stored offsets (its tables and offsets moved in the same transactions, so what it holds is a
 * whole prefix of the log); one of another version is dropped.
 */
export function planStart(name: string, state: ProjectionState | null, version: number): StartPlan {
  if (!state) return { kind: 'create' }
  const { current, building } = state
  if (current.version > version) throw new ProjectionVersionError(name, current.version, version)
  const buildIsOurs = building !== null && building.version === version
  const needsBuild = current.version !== version
  return {
    kind: 'existing',
    serve: current.version === version,
    abandonBuild: building !== null && !buildIsOurs,
    build: buildIsOurs ? 'resume' : needsBuild ? 'begin' : null,
    finishRetirement: state.retired !== null,
    unfreeze: state.frozen,
  }
}

/**
 * Whether a transaction of `generation` may write its tables. Every write transaction asks this
 * under the registry row's lock, so a generation that was frozen, swapped out or abandoned never
 * writes again, in this process or any other, whatever its consumer has queued.
 */
export function acceptsWrites(row: RegistryRow, generation: number): boolean {
  if (row.buildingGeneration === generation) return true
  return row.currentGeneration === generation && !row.frozen
}

/** `topic\0partition`: offsets by partition. */
export type OffsetMap = ReadonlyMap<string, bigint>
export const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`

/**
 * Whether the build has applied at least everything the live generation applied, on the
 * build's topics: swapping then never shows readers a model older than the one they had.
 */
export function buildHasPassed(build: OffsetMap, live: OffsetMap, topics: readonly string[]): boolean {
  for (const [key, liveNext] of live) {
    const topic = key.slice(0, key.indexOf('\u0000'))
    if (!topics.includes(topic)) continue
    if ((build.get(key) ?? 0n) < liveNext) return false
  }
  return true
}

export interface PartitionEnds {
  readonly topic: string
  readonly partition: number
  /** The offset the next record will get. */
  readonly highWatermark: bigint
  /** The first offset still in the log (retention may have moved it past 0). */
  readonly logStartOffset: bigint
}

export interface PartitionLag {
  readonly topic: string
  readonly partition: number
  readonly highWatermark: bigint
  /** The next offset the generation will apply (its stored offset, or the log start). */
  readonly nextOffset: bigint
  /** Records in the log not applied yet. */
  readonly lag: number
}

/** Lag per partition: high watermark − next offset to apply, never below 0. */
export function partitionLags(ends: readonly PartitionEnds[], applied: OffsetMap): PartitionLag[] {
  return ends.map(({ topic, partition, highWatermark, logStartOffset }) => {
    const stored = applied.get(partitionKey(topic, partition))
    const nextOffset = stored === undefined || stored < logStartOffset ? logStartOffset : stored
    const behind = highWatermark - nextOffset
    return { topic, partition, highWatermark, nextOffset, lag: behind > 0n ? Number(behind) : 0 }
  })
}

export function totalLag(partitions: readonly PartitionLag[]): number {
  return partitions.reduce((sum, p) => sum + p.lag, 0)
}
