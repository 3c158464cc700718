// A consumer-group member in its own process (test/integration/clients/*_member.*), and what it
// reported about itself as JSON lines on stdout, parsed into the events the group checker
// (group-history.ts) takes. Both member scripts speak the same events:
//   assigned   {partitions} the member's whole assignment after a (KafkaJS) rebalance
//   owned      {partitions, added, removed} the same after each (librdkafka) assign/revoke callback
//   generation {assignment, generation} the generation of assignment number `assignment`
//   record     {partition, offset, value[, assignment]}
//   committed  {partitions: [[partition, nextOffset], ...][, generation]}
//   closed     the member left the group cleanly
// Anything else is kept in `other` for diagnostics.
import { spawn, type ChildProcess } from 'node:child_process'
import type { AssignedEvent, CommitEvent, RecordEvent } from './group-history.ts'
import { onLines } from './lines.ts'

interface Line {
  readonly event: string
  readonly t: number
  readonly [field: string]: unknown
}

/** An assignment change as a librdkafka member reported it (partitions: what it owns after). */
export interface OwnedEvent extends AssignedEvent {
  readonly added: readonly number[]
  readonly removed: readonly number[]
}

export class MemberProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly assigned: AssignedEvent[] = []
  readonly owned: OwnedEvent[] = []
  readonly records: RecordEvent[] = []
  readonly commits: CommitEvent[] = []
  readonly other: Line[] = []
  closedAt: number | undefined
  stderr = ''
  readonly #lifetime: NodeJS.Timeout

  /** Starts `command args`; it is killed after `lifetimeMs` whatever happens. */
  constructor(name: string, command: string, args: readonly string[], lifetimeMs = 240_000) {
    this.name = name
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#lifetime = setTimeout(() => this.kill9(), lifetimeMs)
    this.#lifetime.unref()
    this.child.once('exit', () => clearTimeout(this.#lifetime))
    onLines(this.child.stdout!, (line) => this.#onLine(line))
    this.child.stderr!.setEncoding('utf8')
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-30_000)
    })
  }

  #onLine(text: string): void {
    const e = JSON.parse(text) as Line
    const member = this.name
    switch (e.event) {
      case 'assigned':
        this.assigned.push({ member, generation: undefined, partitions: e.partitions as number[], t: e.t })
        break
      case 'owned': {
        const owned: OwnedEvent = { member, generation: undefined, partitions: e.partitions as number[], added: e.added as number[], removed: e.removed as number[], t: e.t }
        this.owned.push(owned)
        this.assigned.push(owned)
        break
      }
      case 'generation':
        this.assigned[e.assignment as number]!.generation = e.generation as number
        break
      case 'record':
        this.records.push({
          member,
          // A member that does not say processes under its latest assignment (lines arrive in order).
          assignment: (e.assignment as number | undefined) ?? this.assigned.length - 1,
          partition: e.partition as number,
          offset: e.offset as number,
          value: e.value as string,
          t: e.t,
        })
        break
      case 'committed':
        for (const [partition, offset] of e.partitions as [number, number][]) {
          this.commits.push({ member, partition, offset, t: e.t, ...(typeof e.generation === 'number' ? { generation: e.generation } : {}) })
        }
        break
      case 'closed':
        this.closedAt = e.t
        break
      default:
        this.other.push(e)
    }
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  kill9(): void {
    if (this.alive) this.child.kill('SIGKILL')
  }

  /** SIGTERM: the member closes its consumer (leaving the group) and exits. */
  stop(): void {
    if (this.alive) this.child.kill('SIGTERM')
  }

  /** The partitions of its latest assignment. */
  get owns(): readonly number[] {
    return this.assigned.at(-1)?.partitions ?? []
  }
}

/** Everything a set of members reported, in the shape checkGroupHistory takes. */
export function historyOf(members: readonly MemberProcess[]) {
  return {
    assigned: members.flatMap((m) => m.assigned),
    records: members.flatMap((m) => m.records),
    commits: members.flatMap((m) => m.commits),
  }
}

/** True once every value has been processed by one of the members. */
export function allProcessed(members: readonly MemberProcess[], values: readonly string[]): boolean {
  const seen = new Set(members.flatMap((m) => m.records.map((r) => r.value)))
  return values.every((v) => seen.has(v))
}
