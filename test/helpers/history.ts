// The reliability suite's history checker (research reliability.md §1.1, after Jepsen's Kafka
// workload). Producers record every send (when it was invoked), its outcome (acknowledged with an
// offset, or failed: outcome unknown), consumers record every record they read and every commit
// the broker acknowledged; at the end the test reads back what each partition holds with an
// independent client. `checkHistory` compares the two and reports:
//   lost            acknowledged records that are not stored
//   vanished        records a consumer read that are no longer stored at that offset (an offset
//                   reused for other data, or data exposed before it was durable)
//   duplicates      records stored more than once (a violation when every producer is idempotent
//                   or never retries)
//   reorders        a record stored before one whose acknowledgement preceded its send (real-time
//                   order within a partition)
//   gaps            offsets skipped within a partition (on topics where offsets must be dense)
//   ack mismatches  an acknowledged offset that does not hold the record
//   unexpected      stored records nobody sent, or stored in another partition than sent to
//   commits         a committed offset past the partition's end
//   group           consumer-group violations (two owners in one generation, reads outside an
//                   assignment, records never consumed): see group-history.ts
// Pure apart from the recorder: tests pass in what they observed.
import assert from 'node:assert/strict'
import { checkGroupHistory, type CommitEvent, type GroupHistory, type GroupReport, type RecordEvent } from './group-history.ts'

export interface SendEvent {
  readonly producer: string
  readonly value: string
  readonly partition: number
  /** When the send was invoked. */
  readonly t: number
}

export interface AckEvent {
  readonly value: string
  readonly partition: number
  readonly offset: number
  readonly t: number
}

export interface StoredRecord {
  readonly offset: number
  readonly value: string
}

/** What producers saw, filled in as the test runs. Values must be unique per send. */
export class History {
  readonly sends = new Map<string, SendEvent>()
  readonly acks = new Map<string, AckEvent>()
  readonly failures = new Map<string, { readonly t: number; readonly error: string }>()
  /** Records read by consumers (observations of the log), in any order. */
  readonly reads: RecordEvent[] = []
  /** Commits the broker acknowledged. */
  readonly commits: CommitEvent[] = []

  /** Replaces what consumers read and committed with their reports so far (any size). */
  observed(reads: Iterable<RecordEvent>, commits: Iterable<CommitEvent> = []): void {
    this.reads.length = 0
    this.commits.length = 0
    for (const r of reads) this.reads.push(r)
    for (const c of commits) this.commits.push(c)
  }

  sent(producer: string, value: string, partition: number): void {
    assert.ok(!this.sends.has(value), `history: ${value} sent twice by the test itself`)
    this.sends.set(value, { producer, value, partition, t: Date.now() })
  }

  acked(value: string, partition: number, offset: number): void {
    this.acks.set(value, { value, partition, offset, t: Date.now() })
  }

  failed(value: string, error: unknown): void {
    this.failures.set(value, { t: Date.now(), error: error instanceof Error ? error.message : String(error) })
  }

  /** Records one send of one record: `send` resolves with the offset it was stored at. */
  async produce(producer: string, value: string, partition: number, send: () => Promise<number>): Promise<boolean> {
    this.sent(producer, value, partition)
    try {
      this.acked(value, partition, await send())
      return true
    } catch (err) {
      this.failed(value, err)
      return false
    }
  }
}

export interface CheckOptions {
  /** Duplicates are violations (idempotent producers, or producers that never retry). Default true. */
  readonly noDuplicates?: boolean
  /** Offsets must be consecutive from each partition's first stored offset. Default true. */
  readonly denseOffsets?: boolean
  /** Each partition's log start: acknowledged records below it were removed by retention, not lost. */
  readonly logStart?: ReadonlyMap<number, number>
  /** The consumer group's own history, checked with checkGroupHistory against what is stored. */
  readonly group?: GroupHistory
  /** Generation epochs for the group check (times at which the broker lost its group state). */
  readonly groupEpochs?: readonly number[]
  /** Members can be cut off from the broker (network faults): see GroupReport.zombieOverlaps. */
  readonly zombiesPossible?: boolean
  /**
   * A compacted topic: each value's record key. An acknowledged (or read) record that is no
   * longer stored is superseded, not lost, when a record of its key is stored at a higher offset
   * in its partition; so each key's latest acknowledged record must be there unless a later one
   * of its key is. Pass denseOffsets: false too.
   */
  readonly keyOf?: (value: string) => string
}

export interface HistoryReport {
  readonly sent: number
  readonly acknowledged: number
  readonly failed: number
  readonly stored: number
  /** Stored records plus consumer reads compared against them. */
  readonly recordsChecked: number
  readonly lost: string[]
  /** Compacted topics: acknowledged records compaction removed for a later record of their key. */
  readonly superseded: number
  readonly vanished: string[]
  readonly duplicates: number
  readonly reorders: string[]
  readonly gaps: string[]
  readonly violations: string[]
  readonly group: GroupReport | undefined
}

/** `stored`: every record of every partition, as an independent client read them back. */
export function checkHistory(history: History, stored: ReadonlyMap<number, readonly StoredRecord[]>, options: CheckOptions = {}): HistoryReport {
  const noDuplicates = options.noDuplicates ?? true
  const denseOffsets = options.denseOffsets ?? true
  const violations: string[] = []
  const gaps: string[] = []
  const copies = new Map<string, { partition: number; offset: number }[]>()
  const valueAt = new Map<string, string>() // "partition/offset" → value
  let storedCount = 0

  for (const [partition, records] of stored) {
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      storedCount++
      valueAt.set(`${partition}/${r.offset}`, r.value)
      if (!copies.has(r.value)) copies.set(r.value, [])
      copies.get(r.value)!.push({ partition, offset: r.offset })
      const previous = records[i - 1]
      if (previous && r.offset <= previous.offset) violations.push(`partition ${partition}: offset ${r.offset} after ${previous.offset}`)
      else if (denseOffsets && previous && r.offset !== previous.offset + 1) gaps.push(`partition ${partition}: offsets ${previous.offset + 1}..${r.offset - 1} skipped`)
    }
  }

  // Compacted topics: the highest offset stored for each partition and key.
  const { keyOf } = options
  const latestOfKey = new Map<string, number>()
  if (keyOf) {
    for (const [partition, records] of stored) {
      for (const r of records) {
        const key = `${partition}/${keyOf(r.value)}`
        latestOfKey.set(key, Math.max(latestOfKey.get(key) ?? -1, r.offset))
      }
    }
  }
  const supersededAt = (value: string, partition: number, offset: number) =>
    keyOf !== undefined && (latestOfKey.get(`${partition}/${keyOf(value)}`) ?? -1) > offset

  // Lost, mismatched and misplaced acknowledged records.
  const lost: string[] = []
  let superseded = 0
  for (const ack of history.acks.values()) {
    const found = copies.get(ack.value)
    if (!found) {
      if (ack.offset < (options.logStart?.get(ack.partition) ?? 0)) continue // removed by retention
      if (supersededAt(ack.value, ack.partition, ack.offset)) {
        superseded++
        continue
      }
      lost.push(ack.value)
      continue
    }
    if (!found.some((c) => c.partition === ack.partition && c.offset === ack.offset)) {
      violations.push(`${ack.value} acknowledged at ${ack.partition}@${ack.offset} but stored at ${found.map((c) => `${c.partition}@${c.offset}`).join(', ')}`)
    }
  }

  // Duplicates and records nobody sent.
  let duplicates = 0
  for (const [value, found] of copies) {
    const send = history.sends.get(value)
    if (!send) violations.push(`${value} stored at ${found[0]!.partition}@${found[0]!.offset} but never sent`)
    else if (found.some((c) => c.partition !== send.partition)) violations.push(`${value} sent to partition ${send.partition} but stored in ${found.map((c) => c.partition).join(', ')}`)
    if (found.length > 1) {
      duplicates += found.length - 1
      if (noDuplicates) violations.push(`${value} stored ${found.length} times (${found.map((c) => `${c.partition}@${c.offset}`).join(', ')})`)
    }
  }

  // Real-time order: if A was acknowledged before B was sent (same partition), A is stored first.
  const reorders: string[] = []
  const byPartition = new Map<number, SendEvent[]>()
  for (const send of history.sends.values()) {
    if (!copies.has(send.value)) continue
    if (!byPartition.has(send.partition)) byPartition.set(send.partition, [])
    byPartition.get(send.partition)!.push(send)
  }
  for (const [partition, sends] of byPartition) {
    const acks = sends.map((s) => history.acks.get(s.value)).filter((a): a is AckEvent => a !== undefined).sort((a, b) => a.t - b.t)
    sends.sort((a, b) => a.t - b.t)
    let ackIndex = 0
    let highest: AckEvent | undefined // the acknowledged record with the highest offset acked so far
    for (const send of sends) {
      // Strictly before: a send in the same millisecond as an ack is not known to follow it.
      while (ackIndex < acks.length && acks[ackIndex]!.t < send.t) {
        const ack = acks[ackIndex++]!
        if (!highest || ack.offset > highest.offset) highest = ack
      }
      const first = Math.min(...copies.get(send.value)!.filter((c) => c.partition === partition).map((c) => c.offset))
      if (highest && first < highest.offset) reorders.push(`partition ${partition}: ${send.value} (sent after ${highest.value} was acknowledged at ${highest.offset}) stored at ${first}`)
    }
  }
  for (const r of reorders) violations.push(`reordered: ${r}`)

  // What consumers read must still be there, at the same offset.
  const vanished: string[] = []
  for (const read of history.reads) {
    const now = valueAt.get(`${read.partition}/${read.offset}`)
    if (now === read.value) continue
    const first = stored.get(read.partition)?.[0]?.offset ?? 0
    if (now === undefined && read.offset < first) continue // removed by retention, not lost
    if (now === undefined && supersededAt(read.value, read.partition, read.offset)) continue // compacted away
    vanished.push(`${read.member} read ${read.value} at ${read.partition}@${read.offset}, which now holds ${now ?? 'nothing'}`)
  }
  for (const v of vanished) violations.push(`vanished: ${v}`)

  // Commits never point past the data.
  for (const commit of history.commits) {
    const end = (stored.get(commit.partition)?.at(-1)?.offset ?? -1) + 1
    if (commit.offset > end) violations.push(`${commit.member} committed ${commit.partition}@${commit.offset}, past the partition's end ${end}`)
  }

  let group: GroupReport | undefined
  if (options.group) {
    const storedValues = [...stored.values()].flatMap((records) => records.map((r) => r.value))
    group = checkGroupHistory(options.group, new Set(storedValues), options.groupEpochs, { zombiesPossible: options.zombiesPossible })
    for (const v of group.violations) violations.push(`group: ${v}`)
    if (group.lost.length > 0) violations.push(`group: ${group.lost.length} stored records never consumed, e.g. ${group.lost.slice(0, 3).join(', ')}`)
  }

  for (const g of gaps) violations.push(`gap: ${g}`)
  if (lost.length > 0) violations.push(`lost: ${lost.length} acknowledged records, e.g. ${lost.slice(0, 5).join(', ')}`)
  return {
    sent: history.sends.size,
    acknowledged: history.acks.size,
    failed: history.failures.size,
    stored: storedCount,
    recordsChecked: storedCount + history.reads.length,
    lost,
    superseded,
    vanished,
    duplicates,
    reorders,
    gaps,
    violations,
    group,
  }
}

/** One line for a test's diagnostics. */
export function describeReport(report: HistoryReport): string {
  const group = report.group ? `; group: ${report.group.duplicates} read twice, ${report.group.handovers} handovers, ${report.group.zombieOverlaps} by a zombie` : ''
  return (
    `sent ${report.sent}, acknowledged ${report.acknowledged}, failed ${report.failed}, stored ${report.stored}, ` +
    `records checked ${report.recordsChecked}: lost ${report.lost.length}, ${report.superseded > 0 ? `superseded ${report.superseded}, ` : ''}vanished ${report.vanished.length}, ` +
    `duplicates ${report.duplicates}, reorders ${report.reorders.length}, gaps ${report.gaps.length}${group}`
  )
}

/** Fails with the first violations (all of them are in the report). */
export function assertClean(report: HistoryReport, what = 'history'): void {
  assert.deepEqual(report.violations.slice(0, 20), [], `${what}: ${describeReport(report)}`)
}

/**
 * The figures `npm run soak` adds up across the suite. A test prints one such line per run, as a
 * test diagnostic; scripts/soak.ts sums the fields it finds.
 */
export interface SoakTotals {
  cycles?: number
  crashPoints?: number
  fuzzedInputs?: number
  recordsChecked?: number
  commitsChecked?: number
  lost?: number
  duplicates?: number
  reorders?: number
}

export const TOTALS_PREFIX = 'soak totals '

export function totalsLine(totals: SoakTotals): string {
  return TOTALS_PREFIX + JSON.stringify(totals)
}
