// Checks what consumer-group members report about themselves (assignments, processed records,
// acknowledged commits) against the group guarantees: one owner per partition at a time, nothing
// produced goes unread, and a new owner starts no earlier than the previous owner's last
// acknowledged commit and no later than where that owner stopped (so only uncommitted work is
// read twice). Pure: tests collect the events from member processes and pass them in.

export interface AssignedEvent {
  readonly member: string
  /** undefined when the member could not tell (the disjointness check then skips it). */
  generation: number | undefined
  readonly partitions: readonly number[]
  readonly t: number
}

export interface RecordEvent {
  readonly member: string
  /** Which of the member's assignments it was processing under (index into its assigned events). */
  readonly assignment: number
  readonly partition: number
  readonly offset: number
  readonly value: string
  readonly t: number
}

export interface CommitEvent {
  readonly member: string
  /** Next offset to read, as committed. */
  readonly partition: number
  readonly offset: number
  readonly t: number
  /** The generation the commit carried, when the member reports it (KafkaJS does). */
  readonly generation?: number
}

export interface GroupHistory {
  readonly assigned: readonly AssignedEvent[]
  readonly records: readonly RecordEvent[]
  readonly commits: readonly CommitEvent[]
}

/** A run of records one member processed from one partition under one assignment. */
interface Segment {
  readonly member: string
  readonly partition: number
  readonly first: RecordEvent
  readonly last: RecordEvent
}

export interface GroupReport {
  readonly violations: string[]
  /** Records processed more than once (each extra delivery counts once). */
  readonly duplicates: number
  /** Produced values never processed. */
  readonly lost: string[]
  /** Extra deliveries explained by uncommitted work at each handover, summed. */
  readonly uncommittedAtHandovers: number
  readonly handovers: number
  /**
   * Handovers where the previous owner was still processing records it had fetched after the new
   * owner started: a member cut off from the coordinator past its session timeout is expelled
   * but cannot know it until it reaches the broker again (a zombie). Allowed only when asked
   * for; the broker's guarantee is then that the zombie's commits are refused.
   */
  readonly zombieOverlaps: number
}

export interface GroupCheckOptions {
  /** Members may be cut off from the broker (network faults), so zombie overlaps are expected. */
  readonly zombiesPossible?: boolean
}

/**
 * `epochs` splits generations that are not comparable (a broker that lost its group state starts
 * generations again): assigned events are checked for disjointness per (epoch, generation), where
 * the epoch of an event is the number of `epochs` boundaries (times) before it.
 */
export function checkGroupHistory(history: GroupHistory, produced: Iterable<string>, epochs: readonly number[] = [], options: GroupCheckOptions = {}): GroupReport {
  const violations: string[] = []
  const epochOf = (t: number) => epochs.filter((boundary) => boundary <= t).length

  // 1. Within one generation, no partition is assigned to two members.
  const owners = new Map<string, string>() // "epoch/generation/partition" → member
  for (const a of history.assigned) {
    if (a.generation === undefined) continue
    for (const p of a.partitions) {
      const key = `${epochOf(a.t)}/${a.generation}/${p}`
      const owner = owners.get(key)
      if (owner !== undefined && owner !== a.member) {
        violations.push(`generation ${a.generation}: partition ${p} assigned to both ${owner} and ${a.member}`)
      }
      owners.set(key, a.member)
    }
  }

  // 1b. A commit is accepted only from the member that owns the partition in the commit's
  // generation: a zombie's commits are fenced.
  for (const c of history.commits) {
    if (c.generation === undefined) continue
    const owner = owners.get(`${epochOf(c.t)}/${c.generation}/${c.partition}`)
    if (owner !== undefined && owner !== c.member) {
      violations.push(`generation ${c.generation}: commit of partition ${c.partition} by ${c.member} accepted, but ${owner} owns it`)
    }
  }

  // 2. Every record was processed under an assignment that held its partition.
  const assignmentsOf = new Map<string, AssignedEvent[]>()
  for (const a of history.assigned) {
    if (!assignmentsOf.has(a.member)) assignmentsOf.set(a.member, [])
    assignmentsOf.get(a.member)!.push(a)
  }
  for (const r of history.records) {
    const a = assignmentsOf.get(r.member)?.[r.assignment]
    if (!a || !a.partitions.includes(r.partition)) {
      violations.push(`${r.member} processed ${r.partition}@${r.offset} without owning partition ${r.partition}`)
    }
  }

  // 3. Segments: offsets strictly increase within one; no two owners' segments interleave.
  const segments = new Map<string, Segment>()
  for (const r of history.records) {
    const key = `${r.member}/${r.assignment}/${r.partition}`
    const s = segments.get(key)
    if (!s) {
      segments.set(key, { member: r.member, partition: r.partition, first: r, last: r })
      continue
    }
    if (r.offset <= s.last.offset) violations.push(`${r.member} read partition ${r.partition} backwards: ${s.last.offset} then ${r.offset}`)
    segments.set(key, { ...s, last: r })
  }
  const byPartition = new Map<number, Segment[]>()
  for (const s of segments.values()) {
    if (!byPartition.has(s.partition)) byPartition.set(s.partition, [])
    byPartition.get(s.partition)!.push(s)
  }
  let uncommittedAtHandovers = 0
  let handovers = 0
  let zombieOverlaps = 0
  for (const [partition, list] of byPartition) {
    list.sort((a, b) => a.first.t - b.first.t || a.first.offset - b.first.offset)
    for (let i = 1; i < list.length; i++) {
      const before = list[i - 1]!
      const after = list[i]!
      handovers++
      if (after.first.t < before.last.t && options.zombiesPossible) zombieOverlaps++
      else if (after.first.t < before.last.t) {
        violations.push(`partition ${partition}: ${after.member} started at ${after.first.t} while ${before.member} still processed until ${before.last.t}`)
      }
      if (after.first.offset > before.last.offset + 1) {
        violations.push(`partition ${partition}: ${after.member} started at ${after.first.offset}, skipping past ${before.member}'s last ${before.last.offset}`)
      }
      // The previous owner's last commit of this run: at most one past its last record (later
      // commits by the same member belong to the next run), made before the next run began.
      const acknowledged = lastCommit(history.commits, before.member, partition, after.first.t, before.last.offset + 1)
      if (acknowledged !== undefined && after.first.offset < acknowledged) {
        violations.push(`partition ${partition}: ${after.member} started at ${after.first.offset}, before ${before.member}'s acknowledged commit ${acknowledged}`)
      }
      uncommittedAtHandovers += Math.max(0, before.last.offset + 1 - after.first.offset)
    }
  }

  const seen = new Map<string, number>()
  for (const r of history.records) seen.set(r.value, (seen.get(r.value) ?? 0) + 1)
  let duplicates = 0
  for (const count of seen.values()) duplicates += count - 1
  const lost = [...produced].filter((v) => !seen.has(v))
  return { violations, duplicates, lost, uncommittedAtHandovers, handovers, zombieOverlaps }
}

function lastCommit(commits: readonly CommitEvent[], member: string, partition: number, notAfter: number, maxOffset: number): number | undefined {
  let best: number | undefined
  for (const c of commits) {
    if (c.member !== member || c.partition !== partition || c.t > notAfter || c.offset > maxOffset) continue
    if (best === undefined || c.offset > best) best = c.offset
  }
  return best
}

/**
 * For members that report revocations as well as assignments (librdkafka's callbacks): no
 * partition is owned by two members at once. A member owns a partition from the assignment
 * event that adds it until the event that removes it, or until `endOf(member)` (killed or
 * closed). Events of different processes at the same millisecond count as not overlapping.
 */
export function checkExclusiveOwnership(owned: readonly AssignedEvent[], endOf: (member: string) => number | undefined): string[] {
  interface Interval { member: string; from: number; to: number }
  const intervals = new Map<number, Interval[]>()
  const open = new Map<string, number>() // "member/partition" → since
  const close = (member: string, partition: number, to: number) => {
    const key = `${member}/${partition}`
    const from = open.get(key)
    if (from === undefined) return
    open.delete(key)
    if (!intervals.has(partition)) intervals.set(partition, [])
    intervals.get(partition)!.push({ member, from, to })
  }
  const byMember = new Map<string, AssignedEvent[]>()
  for (const e of owned) {
    if (!byMember.has(e.member)) byMember.set(e.member, [])
    byMember.get(e.member)!.push(e)
  }
  for (const [member, events] of byMember) {
    let current = new Set<number>()
    for (const e of events) {
      const next = new Set(e.partitions)
      for (const p of current) if (!next.has(p)) close(member, p, e.t)
      for (const p of next) if (!current.has(p)) open.set(`${member}/${p}`, e.t)
      current = next
    }
    for (const p of current) close(member, p, endOf(member) ?? Number.POSITIVE_INFINITY)
  }
  const violations: string[] = []
  for (const [partition, list] of intervals) {
    list.sort((a, b) => a.from - b.from)
    for (let i = 1; i < list.length; i++) {
      for (let j = 0; j < i; j++) {
        const a = list[j]!
        const b = list[i]!
        if (a.member !== b.member && b.from < a.to && a.from < b.to) {
          violations.push(`partition ${partition}: owned by ${a.member} [${a.from}, ${a.to}) and ${b.member} [${b.from}, ${b.to})`)
        }
      }
    }
  }
  return violations
}
