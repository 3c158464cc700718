// The classic consumer-group coordinator (research kafka-protocol.md §3), as a pure state
// machine: no sockets, no timers. It takes a Clock, and the caller runs `tick()` when
// `nextDeadline()` (or a time it passed to its WakeScheduler) comes due; tests move a ManualClock.
// Committed offsets go through an OffsetStore and are acknowledged only once durable.
//
// States: Empty → PreparingRebalance → CompletingRebalance → Stable (Dead only for a group being
// deleted). In brief:
// - JoinGroup parks until every known member has rejoined or the rebalance timeout (the largest
//   of the members') passes; members that did not rejoin are dropped (static ones are kept until
//   their session expires, KIP-345). Then the generation goes up, the protocol is chosen by vote
//   among those every member supports, the leader is kept if it rejoined, and the leader gets
//   every member's metadata while the others get an empty list.
// - A dynamic member joining with no id at JoinGroup v4+ gets MEMBER_ID_REQUIRED and an id, and
//   is "pending" until it joins again with it (KIP-394); v0-3 members are added at once.
// - The first rebalance of an Empty group waits `initialRebalanceDelayMs`, extended by as much
//   for each new member, up to the rebalance timeout (Kafka's InitialDelayedJoin).
// - SyncGroup parks until the leader's assignment arrives; members the leader left out get an
//   empty assignment. If the leader never syncs, the rebalance timeout drops the members that
//   did not and starts over.
// - A member with nothing parked that is silent for its session timeout is removed, as is one
//   that leaves; either starts a rebalance.
// - A static member (group.instance.id) rejoining with a new id replaces its old id; the old one
//   is fenced (FENCED_INSTANCE_ID). In a Stable group with unchanged metadata and protocol it
//   gets the current generation back and no rebalance happens.
// Deviations from Kafka: OffsetCommit is accepted during PreparingRebalance as Kafka does (so
// eager consumers can commit before they rejoin) and refused only in CompletingRebalance; empty
// groups without offsets are forgotten at once rather than at the next cleanup; a membership
// snapshot is written without delaying the SyncGroup answer (Kafka waits for it), since losing
// it costs a rebalance after a crash, never an offset.
// Durable state (offset-store.ts): committed offsets, acknowledged only once fsynced, and each
// group's membership as of its last rebalance, so a restarted broker carries groups on as they
// were. Offsets of a group that has been Empty for the retention period expire.

import { randomUUID } from 'node:crypto'
import type { Clock } from '../../clock.ts'
import { isTidewayError } from '../../errors.ts'
import { silentLogger, type Logger } from '../../logger.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { brokerOptions } from '../config.ts'
import { subscribedTopics } from './consumer-protocol.ts'
import type { CommittedOffset, GroupOffsets, GroupSnapshot, OffsetCommitEntry, OffsetKey, OffsetStore } from './offset-store.ts'

/**
 * How the coordinator asks to be woken: `wakeAt(t)` means "call tick() at monotonic time t or
 * soon after". Stale or early wake-ups are harmless (tick does only what is due).
 */
export interface WakeScheduler {
  wakeAt(monotonicMs: number): void
  stop(): void
}

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead'

export interface GroupCoordinatorOptions {
  readonly clock: Clock
  readonly store: OffsetStore
  readonly logger?: Logger
  /** See `groupInitialRebalanceDelayMs` in the broker config. */
  readonly initialRebalanceDelayMs?: number
  readonly minSessionTimeoutMs?: number
  readonly maxSessionTimeoutMs?: number
  readonly maxGroupSize?: number
  /** How long an empty group keeps its offsets (Kafka: offsets.retention.minutes, 7 days). */
  readonly offsetsRetentionMs?: number
  /** How often expired offsets are looked for (Kafka: offsets.retention.check.interval.ms). */
  readonly offsetsRetentionCheckIntervalMs?: number
  /** Longest committed-offset metadata string accepted (Kafka: offset.metadata.max.bytes). */
  readonly maxOffsetMetadataBytes?: number
  /** Told of each new deadline, so a driver can call `tick()` then; stopped by `close()`. */
  readonly scheduler?: WakeScheduler
  /** Member ids for new members (default: `<clientId>-<uuid>`, as Kafka makes them). */
  readonly newMemberId?: (clientId: string) => string
}

export interface JoinProtocol {
  readonly name: string
  readonly metadata: Buffer
}

export interface JoinRequest {
  readonly groupId: string
  /** "" on a member's first join. */
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly clientId: string
  readonly clientHost?: string
  readonly sessionTimeoutMs: number
  readonly rebalanceTimeoutMs: number
  readonly protocolType: string
  readonly protocols: readonly JoinProtocol[]
  /** JoinGroup v4+ without group.instance.id: a new member must come back with its id (KIP-394). */
  readonly requireKnownMemberId: boolean
}

export interface JoinedMember {
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly metadata: Buffer
}

export interface JoinResult {
  readonly errorCode: number
  readonly generationId: number
  readonly protocolName: string
  readonly leader: string
  readonly memberId: string
  readonly members: readonly JoinedMember[]
}

export interface SyncRequest {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly assignments: readonly { readonly memberId: string; readonly assignment: Buffer }[]
}

export interface SyncResult {
  readonly errorCode: number
  readonly assignment: Buffer
}

export interface MemberRef {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string
  readonly groupInstanceId: string | null
}

export interface LeavingMember {
  readonly memberId: string
  readonly groupInstanceId: string | null
}

export interface LeaveResult {
  readonly errorCode: number
  readonly members: { memberId: string; groupInstanceId: string | null; errorCode: number }[]
}

export interface CommitRequest extends MemberRef {
  readonly topics: readonly {
    readonly name: string
    readonly partitions: readonly {
      readonly partitionIndex: number
      readonly committedOffset: bigint
      readonly committedLeaderEpoch: number
      readonly committedMetadata: string | null
    }[]
  }[]
}

export interface TopicPartitionErrors {
  name: string
  partitions: { partitionIndex: number; errorCode: number }[]
}

export interface FetchedPartition {
  partitionIndex: number
  committedOffset: bigint
  committedLeaderEpoch: number
  metadata: string | null
  errorCode: number
}

export interface FetchOffsetsResult {
  errorCode: number
  topics: { name: string; partitions: FetchedPartition[] }[]
}

export interface ListedGroup {
  groupId: string
  protocolType: string
  groupState: GroupState
}

export interface DescribedGroup {
  errorCode: number
  groupId: string
  groupState: GroupState
  protocolType: string
  protocolData: string
  members: {
    memberId: string
    groupInstanceId: string | null
    clientId: string
    clientHost: string
    memberMetadata: Buffer
    memberAssignment: Buffer
  }[]
}

const EMPTY = Buffer.alloc(0)
const NO_OFFSET = -1n

interface Member {
  readonly memberId: string
  readonly groupInstanceId: string | null
  clientId: string
  clientHost: string
  sessionTimeoutMs: number
  rebalanceTimeoutMs: number
  protocolType: string
  protocols: readonly JoinProtocol[]
  assignment: Buffer
  /** Last sign of life (monotonic ms); the session expires sessionTimeoutMs after it. */
  lastSeenMs: number
  /** Has joined the rebalance in progress (whether or not its request is still parked). */
  awaitingJoin: boolean
  joinWaiter: ((result: JoinResult) => void) | undefined
  syncWaiter: ((result: SyncResult) => void) | undefined
}

class Group {
  readonly id: string
  state: GroupState = 'Empty'
  generationId = 0
  protocolType: string | null = null
  protocolName: string | null = null
  leaderId: string | null = null
  readonly members = new Map<string, Member>()
  /** Member ids handed out with MEMBER_ID_REQUIRED, with when they lapse. */
  readonly pending = new Map<string, number>()
  /** group.instance.id → current member id. */
  readonly staticMembers = new Map<string, string>()
  offsets: GroupOffsets = new Map()
  /** Wall-clock time the group last became Empty: its offsets expire a retention period later. */
  emptySinceWallMs = 0
  /** The store holds a membership snapshot of this group (which forgetting it must delete). */
  snapshotStored = false
  /** PreparingRebalance: when the join phase ends at the latest. */
  joinDeadline = Number.POSITIVE_INFINITY
  /** The join phase is an initial delay (the group was Empty) that only time ends. */
  initialDelay = false
  joinPhaseStartMs = 0
  /** Members that have not sent SyncGroup for this generation, and until when they may. */
  readonly awaitingSync = new Set<string>()
  syncDeadline = Number.POSITIVE_INFINITY

  constructor(id: string) {
    this.id = id
  }

  get rebalanceTimeoutMs(): number {
    let max = 0
    for (const m of this.members.values()) max = Math.max(max, m.rebalanceTimeoutMs)
    return max
  }
}

export class GroupCoordinator {
  readonly #clock: Clock
  readonly #store: OffsetStore
  readonly #logger: Logger
  readonly #initialDelayMs: number
  readonly #minSessionMs: number
  readonly #maxSessionMs: number
  readonly #maxGroupSize: number
  readonly #maxMetadataBytes: number
  readonly #offsetsRetentionMs: number
  readonly #retentionCheckIntervalMs: number
  #lastRetentionCheck = Number.NEGATIVE_INFINITY
  readonly #scheduler: WakeScheduler | undefined
  readonly #newMemberId: (clientId: string) => string
  readonly #groups = new Map<string, Group>()
  #status: 'loading' | 'open' | 'closed' = 'loading'

  constructor(options: GroupCoordinatorOptions) {
    this.#clock = options.clock
    this.#store = options.store
    this.#logger = options.logger ?? silentLogger
    this.#initialDelayMs = options.initialRebalanceDelayMs ?? brokerOptions.groupInitialRebalanceDelayMs.default
    this.#minSessionMs = options.minSessionTimeoutMs ?? brokerOptions.groupMinSessionTimeoutMs.default
    this.#maxSessionMs = options.maxSessionTimeoutMs ?? brokerOptions.groupMaxSessionTimeoutMs.default
    this.#maxGroupSize = options.maxGroupSize ?? brokerOptions.groupMaxSize.default
    this.#maxMetadataBytes = options.maxOffsetMetadataBytes ?? 4096
    this.#offsetsRetentionMs = options.offsetsRetentionMs ?? brokerOptions.groupOffsetsRetentionMs.default
    this.#retentionCheckIntervalMs = options.offsetsRetentionCheckIntervalMs ?? brokerOptions.groupOffsetsRetentionCheckIntervalMs.default
    this.#scheduler = options.scheduler
    this.#newMemberId = options.newMemberId ?? ((clientId) => `${clientIdPrefix(clientId)}-${randomUUID()}`)
  }

  /**
   * Reads committed offsets and the groups' membership; until it finishes, group requests get
   * COORDINATOR_LOAD_IN_PROGRESS. A group that was Stable comes back Stable with its members and
   * generation, and their sessions start afresh (as when Kafka moves a coordinator), so members
   * carry on without a rebalance; a member that did not survive the restart times out as usual.
   */
  async load(): Promise<void> {
    const { offsets: allOffsets, snapshots } = await this.#store.load()
    for (const [groupId, offsets] of allOffsets) {
      const group = new Group(groupId)
      group.offsets = offsets
      // An empty group's snapshot says when it emptied; without one, its last commit is the
      // latest it can have been.
      group.emptySinceWallMs = lastCommitWallMs(offsets)
      this.#groups.set(groupId, group)
    }
    for (const [groupId, snapshot] of snapshots) {
      let group = this.#groups.get(groupId)
      if (!group) {
        if (snapshot.members.length === 0) continue // nothing worth keeping (the store drops it below)
        this.#groups.set(groupId, (group = new Group(groupId)))
      }
      this.#restore(group, snapshot)
    }
    if (this.#status === 'loading') this.#status = 'open'
    this.#logger.info('group coordinator loaded', { groups: this.#groups.size })
  }

  #restore(group: Group, snapshot: GroupSnapshot): void {
    group.snapshotStored = true
    group.generationId = snapshot.generationId
    group.protocolType = snapshot.protocolType
    if (snapshot.members.length === 0) {
      group.emptySinceWallMs = snapshot.wallMs
      return
    }
    group.state = 'Stable'
    group.protocolName = snapshot.protocolName
    group.leaderId = snapshot.leaderId
    const now = this.#now()
    for (const m of snapshot.members) {
      group.members.set(m.memberId, {
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        protocolType: snapshot.protocolType ?? '',
        protocols: [{ name: snapshot.protocolName ?? '', metadata: m.metadata }],
        assignment: m.assignment,
        lastSeenMs: now,
        awaitingJoin: false,
        joinWaiter: undefined,
        syncWaiter: undefined,
      })
      if (m.groupInstanceId !== null) group.staticMembers.set(m.groupInstanceId, m.memberId)
      this.#wakeAt(now + m.sessionTimeoutMs)
    }
  }

  /**
   * Records the group's membership (after a completed rebalance, a static member's new id, or
   * becoming empty) without holding up the request that changed it: if the broker dies first,
   * the restarted one knows the previous generation, and members of the new one are told to
   * rejoin (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID), which costs a rebalance, never an offset.
   */
  #saveSnapshot(group: Group): void {
    const failed = (err: unknown) => this.#storeFailed('group snapshot', group.id, err)
    if (group.members.size === 0 && group.offsets.size === 0) {
      // It is about to be forgotten: drop the snapshot too, so a restart does not revive it.
      if (group.snapshotStored) this.#store.deleteGroup(group.id).catch(failed)
      group.snapshotStored = false
      return
    }
    const snapshot: GroupSnapshot = {
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leaderId: group.leaderId,
      wallMs: this.#clock.wallMs(),
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        metadata: metadataFor(m, group.protocolName),
        assignment: m.assignment,
      })),
    }
    group.snapshotStored = true
    this.#store.saveGroup(group.id, snapshot).catch(failed)
  }

  /** Answers parked requests with COORDINATOR_NOT_AVAILABLE, then closes the offset store. */
  async close(): Promise<void> {
    if (this.#status === 'closed') return
    this.#status = 'closed'
    this.#scheduler?.stop()
    for (const group of this.#groups.values()) {
      for (const m of group.members.values()) {
        m.joinWaiter?.(joinError(m.memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE))
        m.syncWaiter?.({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, assignment: EMPTY })
      }
    }
    await this.#store.close()
  }

  /** The error every group request gets while the coordinator cannot serve, or NONE. */
  #unavailable(): number {
    if (this.#status === 'loading') return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    if (this.#status === 'closed') return ErrorCode.COORDINATOR_NOT_AVAILABLE
    return ErrorCode.NONE
  }

  #wakeAt(monotonicMs: number): void {
    this.#scheduler?.wakeAt(monotonicMs)
  }

  #now(): number {
    return this.#clock.monotonicMs()
  }

  /** A sign of life from the member: its session restarts now. */
  #touch(member: Member): void {
    member.lastSeenMs = this.#now()
    this.#wakeAt(member.lastSeenMs + member.sessionTimeoutMs)
  }

  // -------------------------------------------------------------------------------------------
  // JoinGroup

  /** Resolves when the member's join completes (or at once with an error or MEMBER_ID_REQUIRED). */
  join(req: JoinRequest, signal?: AbortSignal): Promise<JoinResult> {
    const unavailable = this.#unavailable()
    if (unavailable) return Promise.resolve(joinError(req.memberId, unavailable))
    if (req.groupId === '') return Promise.resolve(joinError(req.memberId, ErrorCode.INVALID_GROUP_ID))
    if (req.sessionTimeoutMs < this.#minSessionMs || req.sessionTimeoutMs > this.#maxSessionMs) {
      return Promise.resolve(joinError(req.memberId, ErrorCode.INVALID_SESSION_TIMEOUT))
    }
    let group = this.#groups.get(req.groupId)
    if (!group) {
      if (req.memberId !== '') return Promise.resolve(joinError(req.memberId, ErrorCode.UNKNOWN_MEMBER_ID))
      group = new Group(req.groupId)
      this.#groups.set(req.groupId, group)
    }
    const result = this.#supportsProtocols(group, req)
      ? req.memberId === ''
        ? this.#joinNewMember(group, req, signal)
        : this.#joinKnownMember(group, req, signal)
      : Promise.resolve(joinError(req.memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
    this.#forgetIfUnused(group)
    return result
  }

  #joinNewMember(group: Group, req: JoinRequest, signal: AbortSignal | undefined): Promise<JoinResult> {
    const oldId = req.groupInstanceId === null ? undefined : group.staticMembers.get(req.groupInstanceId)
    const old = oldId === undefined ? undefined : group.members.get(oldId)
    if (old) return this.#replaceStaticMember(group, old, this.#newMemberId(req.clientId), req, signal)
    if (group.members.size + group.pending.size >= this.#maxGroupSize) {
      return Promise.resolve(joinError('', ErrorCode.GROUP_MAX_SIZE_REACHED))
    }
    const memberId = this.#newMemberId(req.clientId)
    if (req.groupInstanceId !== null) return this.#addMember(group, memberId, req, signal)
    if (req.requireKnownMemberId) {
      const expiry = this.#now() + req.sessionTimeoutMs
      group.pending.set(memberId, expiry)
      this.#wakeAt(expiry)
      return Promise.resolve(joinError(memberId, ErrorCode.MEMBER_ID_REQUIRED))
    }
    return this.#addMember(group, memberId, req, signal)
  }

  #joinKnownMember(group: Group, req: JoinRequest, signal: AbortSignal | undefined): Promise<JoinResult> {
    if (group.pending.delete(req.memberId)) return this.#addMember(group, req.memberId, req, signal)
    if (isFenced(group, req.groupInstanceId, req.memberId)) {
      return Promise.resolve(joinError(req.memberId, ErrorCode.FENCED_INSTANCE_ID))
    }
    const member = group.members.get(req.memberId)
    if (!member) return Promise.resolve(joinError(req.memberId, ErrorCode.UNKNOWN_MEMBER_ID))
    this.#touch(member)
    switch (group.state) {
      case 'PreparingRebalance':
        return this.#updateMemberAndRebalance(group, member, req, signal)
      case 'CompletingRebalance':
        // Same metadata: it most likely lost our answer, so repeat it for this generation.
        if (sameProtocols(member.protocols, req.protocols)) return Promise.resolve(this.#currentJoinResult(group, member, false))
        return this.#updateMemberAndRebalance(group, member, req, signal)
      case 'Stable':
        if (member.memberId === group.leaderId || !sameProtocols(member.protocols, req.protocols)) {
          return this.#updateMemberAndRebalance(group, member, req, signal)
        }
        return Promise.resolve(this.#currentJoinResult(group, member, false))
      default:
        return Promise.resolve(joinError(req.memberId, ErrorCode.UNKNOWN_MEMBER_ID))
    }
  }

  #addMember(group: Group, memberId: string, req: JoinRequest, signal: AbortSignal | undefined): Promise<JoinResult> {
    const now = this.#now()
    const member: Member = {
      memberId,
      groupInstanceId: req.groupInstanceId,
      clientId: req.clientId,
      clientHost: req.clientHost ?? '',
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols,
      assignment: EMPTY,
      lastSeenMs: now,
      awaitingJoin: false,
      joinWaiter: undefined,
      syncWaiter: undefined,
    }
    if (group.members.size === 0) group.protocolType = req.protocolType
    group.members.set(memberId, member)
    if (req.groupInstanceId !== null) group.staticMembers.set(req.groupInstanceId, memberId)
    const joined = this.#parkJoin(member, signal)
    if (group.state === 'PreparingRebalance' && group.initialDelay) {
      // Kafka's InitialDelayedJoin: each newcomer buys the others one more delay, within the
      // rebalance timeout counted from the start of the phase.
      group.joinDeadline = Math.min(now + this.#initialDelayMs, group.joinPhaseStartMs + group.rebalanceTimeoutMs)
      this.#wakeAt(group.joinDeadline)
    }
    this.#maybePrepareRebalance(group, `member ${memberId} joined`)
    this.#tryCompleteJoin(group)
    return joined
  }

  #updateMemberAndRebalance(group: Group, member: Member, req: JoinRequest, signal: AbortSignal | undefined): Promise<JoinResult> {
    updateMember(member, req)
    if (group.members.size === 1) group.protocolType = req.protocolType
    const joined = this.#parkJoin(member, signal)
    this.#maybePrepareRebalance(group, `member ${member.memberId} rejoined`)
    this.#tryCompleteJoin(group)
    return joined
  }

  /** KIP-345: a static member came back with no id; it takes a new one and the old is fenced. */
  #replaceStaticMember(
    group: Group,
    old: Member,
    newId: string,
    req: JoinRequest,
    signal: AbortSignal | undefined,
  ): Promise<JoinResult> {
    old.joinWaiter?.(joinError(old.memberId, ErrorCode.FENCED_INSTANCE_ID))
    old.syncWaiter?.({ errorCode: ErrorCode.FENCED_INSTANCE_ID, assignment: EMPTY })
    const unchanged = sameProtocols(old.protocols, req.protocols) && old.protocolType === req.protocolType
    const previousLeader = group.leaderId ?? ''
    const member: Member = { ...old, memberId: newId, joinWaiter: undefined, syncWaiter: undefined }
    updateMember(member, req)
    this.#touch(member)
    group.members.delete(old.memberId)
    group.members.set(newId, member)
    group.staticMembers.set(req.groupInstanceId!, newId)
    if (group.leaderId === old.memberId) group.leaderId = newId
    if (group.awaitingSync.delete(old.memberId)) group.awaitingSync.add(newId)
    this.#logger.info('static member rejoined with a new member id', {
      group: group.id,
      groupInstanceId: req.groupInstanceId,
      oldMemberId: old.memberId,
      memberId: newId,
    })

    if (group.state === 'Stable' && unchanged && selectProtocol(group.members.values()) === group.protocolName) {
      this.#saveSnapshot(group)
      // No rebalance. The old leader id is returned on purpose: a static leader rejoining here
      // must not believe it leads and run an assignment a Stable group would not hand out.
      return Promise.resolve({
        errorCode: ErrorCode.NONE,
        generationId: group.generationId,
        protocolName: group.protocolName ?? '',
        leader: previousLeader,
        memberId: newId,
        members: [],
      })
    }
    const joined = this.#parkJoin(member, signal)
    this.#maybePrepareRebalance(group, `static member ${req.groupInstanceId} rejoined with changed metadata`)
    this.#tryCompleteJoin(group)
    return joined
  }

  #parkJoin(member: Member, signal: AbortSignal | undefined): Promise<JoinResult> {
    member.joinWaiter?.(joinError(member.memberId, ErrorCode.REBALANCE_IN_PROGRESS))
    member.awaitingJoin = true
    // If the connection goes away the request is released, but the member still counts as
    // joined, as in Kafka; if it does not come back, its session expires after the join completes.
    return park<JoinResult>(
      { get: () => member.joinWaiter, set: (waiter) => (member.joinWaiter = waiter) },
      signal,
      joinError(member.memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE),
    )
  }

  #currentJoinResult(group: Group, member: Member, withMembers: boolean): JoinResult {
    const isLeader = member.memberId === group.leaderId
    return {
      errorCode: ErrorCode.NONE,
      generationId: group.generationId,
      protocolName: group.protocolName ?? '',
      leader: group.leaderId ?? '',
      memberId: member.memberId,
      members: isLeader || withMembers ? this.#memberList(group) : [],
    }
  }

  #memberList(group: Group): JoinedMember[] {
    return [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: metadataFor(m, group.protocolName),
    }))
  }

  #supportsProtocols(group: Group, req: JoinRequest): boolean {
    if (req.protocolType === '' || req.protocols.length === 0) return false
    const others = [...group.members.values()].filter((m) => m.memberId !== req.memberId)
    if (others.length === 0) return true
    if (req.protocolType !== group.protocolType) return false
    return req.protocols.some((p) => others.every((m) => m.protocols.some((q) => q.name === p.name)))
  }

  // -------------------------------------------------------------------------------------------
  // Rebalance phases

  #maybePrepareRebalance(group: Group, reason: string): void {
    if (group.state === 'Stable' || group.state === 'CompletingRebalance' || group.state === 'Empty') {
      this.#prepareRebalance(group, reason)
    }
  }

  #prepareRebalance(group: Group, reason: string): void {
    const now = this.#now()
    if (group.state === 'CompletingRebalance') {
      // The assignment of this generation will never arrive: tell the parked followers.
      for (const m of group.members.values()) {
        m.assignment = EMPTY
        m.syncWaiter?.({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: EMPTY })
      }
    }
    group.awaitingSync.clear()
    group.syncDeadline = Number.POSITIVE_INFINITY
    const wasEmpty = group.state === 'Empty'
    group.state = 'PreparingRebalance'
    group.joinPhaseStartMs = now
    const timeout = group.rebalanceTimeoutMs
    group.initialDelay = wasEmpty && this.#initialDelayMs > 0
    group.joinDeadline = now + (group.initialDelay ? Math.min(this.#initialDelayMs, timeout) : timeout)
    this.#wakeAt(group.joinDeadline)
    this.#logger.info('preparing rebalance', { group: group.id, generation: group.generationId, reason })
  }

  #tryCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance' || group.initialDelay) return
    if (group.pending.size > 0) return
    for (const m of group.members.values()) if (!m.awaitingJoin) return
    this.#completeJoin(group)
  }

  #completeJoin(group: Group): void {
    const now = this.#now()
    for (const m of group.members.values()) {
      if (!m.awaitingJoin && m.groupInstanceId === null) this.#dropMember(group, m, ErrorCode.UNKNOWN_MEMBER_ID)
    }
    group.initialDelay = false
    if (group.members.size === 0) {
      group.state = 'Empty'
      group.generationId++
      group.protocolName = null
      group.leaderId = null
      group.joinDeadline = Number.POSITIVE_INFINITY
      group.emptySinceWallMs = this.#clock.wallMs()
      this.#logger.info('group is empty', { group: group.id, generation: group.generationId })
      this.#saveSnapshot(group)
      this.#forgetIfUnused(group)
      return
    }
    const joined = [...group.members.values()].filter((m) => m.awaitingJoin)
    if (joined.length === 0) {
      // Only static members that have not rejoined remain: wait for them, or for their sessions
      // to expire (Kafka does the same).
      group.joinDeadline = now + group.rebalanceTimeoutMs
      this.#wakeAt(group.joinDeadline)
      return
    }
    group.generationId++
    group.protocolName = selectProtocol(group.members.values())
    if (!group.leaderId || !group.members.get(group.leaderId)?.awaitingJoin) group.leaderId = joined[0]!.memberId
    group.state = 'CompletingRebalance'
    group.joinDeadline = Number.POSITIVE_INFINITY
    for (const id of group.members.keys()) group.awaitingSync.add(id)
    group.syncDeadline = now + group.rebalanceTimeoutMs
    this.#wakeAt(group.syncDeadline)
    this.#logger.info('group rebalanced', {
      group: group.id,
      generation: group.generationId,
      protocol: group.protocolName,
      leader: group.leaderId,
      members: group.members.size,
    })
    const everyone = this.#memberList(group)
    for (const m of joined) {
      m.awaitingJoin = false
      this.#touch(m)
      m.joinWaiter?.({
        errorCode: ErrorCode.NONE,
        generationId: group.generationId,
        protocolName: group.protocolName,
        leader: group.leaderId,
        memberId: m.memberId,
        members: m.memberId === group.leaderId ? everyone : [],
      })
    }
  }

  /** Removes a member, answers its parked requests with `errorCode`, and starts a rebalance. */
  #removeMember(group: Group, member: Member, errorCode: number, reason: string): void {
    this.#dropMember(group, member, errorCode)
    this.#logger.info('member removed', { group: group.id, memberId: member.memberId, reason })
    if (group.state === 'Stable' || group.state === 'CompletingRebalance') this.#prepareRebalance(group, reason)
    this.#tryCompleteJoin(group)
  }

  #dropMember(group: Group, member: Member, errorCode: number): void {
    group.members.delete(member.memberId)
    if (member.groupInstanceId !== null && group.staticMembers.get(member.groupInstanceId) === member.memberId) {
      group.staticMembers.delete(member.groupInstanceId)
    }
    group.awaitingSync.delete(member.memberId)
    member.joinWaiter?.(joinError(member.memberId, errorCode))
    member.syncWaiter?.({ errorCode, assignment: EMPTY })
  }

  // -------------------------------------------------------------------------------------------
  // SyncGroup, Heartbeat, LeaveGroup

  /** Resolves with the member's assignment once the leader has sent it. */
  sync(req: SyncRequest, signal?: AbortSignal): Promise<SyncResult> {
    const fail = (errorCode: number) => Promise.resolve({ errorCode, assignment: EMPTY })
    const unavailable = this.#unavailable()
    if (unavailable) return fail(unavailable)
    const group = this.#groups.get(req.groupId)
    if (!group) return fail(ErrorCode.UNKNOWN_MEMBER_ID)
    if (isFenced(group, req.groupInstanceId, req.memberId)) return fail(ErrorCode.FENCED_INSTANCE_ID)
    const member = group.members.get(req.memberId)
    if (!member) return fail(ErrorCode.UNKNOWN_MEMBER_ID)
    if (req.generationId !== group.generationId) return fail(ErrorCode.ILLEGAL_GENERATION)
    switch (group.state) {
      case 'PreparingRebalance':
        return fail(ErrorCode.REBALANCE_IN_PROGRESS)
      case 'Stable':
        this.#touch(member)
        this.#synced(group, member)
        return Promise.resolve({ errorCode: ErrorCode.NONE, assignment: member.assignment })
      case 'CompletingRebalance': {
        this.#touch(member)
        this.#synced(group, member)
        const assigned = this.#parkSync(member, signal)
        if (member.memberId === group.leaderId) {
          const byMember = new Map(req.assignments.map((a) => [a.memberId, a.assignment]))
          group.state = 'Stable'
          for (const m of group.members.values()) {
            m.assignment = byMember.get(m.memberId) ?? EMPTY
            if (m.syncWaiter) {
              this.#touch(m)
              m.syncWaiter({ errorCode: ErrorCode.NONE, assignment: m.assignment })
            }
          }
          this.#logger.debug('group stable', { group: group.id, generation: group.generationId })
          this.#saveSnapshot(group)
        }
        return assigned
      }
      default:
        return fail(ErrorCode.UNKNOWN_MEMBER_ID)
    }
  }

  #synced(group: Group, member: Member): void {
    group.awaitingSync.delete(member.memberId)
    if (group.awaitingSync.size === 0) group.syncDeadline = Number.POSITIVE_INFINITY
  }

  #parkSync(member: Member, signal: AbortSignal | undefined): Promise<SyncResult> {
    member.syncWaiter?.({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: EMPTY })
    return park<SyncResult>(
      { get: () => member.syncWaiter, set: (waiter) => (member.syncWaiter = waiter) },
      signal,
      { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, assignment: EMPTY },
    )
  }

  heartbeat(req: MemberRef): number {
    const unavailable = this.#unavailable()
    if (unavailable) return unavailable
    const group = this.#groups.get(req.groupId)
    if (!group || group.state === 'Empty') return ErrorCode.UNKNOWN_MEMBER_ID
    if (isFenced(group, req.groupInstanceId, req.memberId)) return ErrorCode.FENCED_INSTANCE_ID
    const member = group.members.get(req.memberId)
    if (!member) return ErrorCode.UNKNOWN_MEMBER_ID
    if (req.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION
    this.#touch(member)
    return group.state === 'PreparingRebalance' ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE
  }

  leave(groupId: string, leaving: readonly LeavingMember[]): LeaveResult {
    const unavailable = this.#unavailable()
    if (unavailable) return { errorCode: unavailable, members: [] }
    const group = this.#groups.get(groupId)
    const members = leaving.map((l) => ({
      memberId: l.memberId,
      groupInstanceId: l.groupInstanceId,
      errorCode: group ? this.#leaveOne(group, l) : ErrorCode.UNKNOWN_MEMBER_ID,
    }))
    if (group) this.#forgetIfUnused(group)
    return { errorCode: ErrorCode.NONE, members }
  }

  #leaveOne(group: Group, leaving: LeavingMember): number {
    if (leaving.groupInstanceId !== null) {
      const mapped = group.staticMembers.get(leaving.groupInstanceId)
      if (mapped === undefined) return ErrorCode.UNKNOWN_MEMBER_ID
      if (leaving.memberId !== '' && leaving.memberId !== mapped) return ErrorCode.FENCED_INSTANCE_ID
      const member = group.members.get(mapped)
      if (member) this.#removeMember(group, member, ErrorCode.UNKNOWN_MEMBER_ID, 'left the group')
      return ErrorCode.NONE
    }
    if (group.pending.delete(leaving.memberId)) {
      this.#tryCompleteJoin(group)
      return ErrorCode.NONE
    }
    const member = group.members.get(leaving.memberId)
    if (!member) return ErrorCode.UNKNOWN_MEMBER_ID
    this.#removeMember(group, member, ErrorCode.UNKNOWN_MEMBER_ID, 'left the group')
    return ErrorCode.NONE
  }

  // -------------------------------------------------------------------------------------------
  // Time

  /** Expires sessions, pending member ids and rebalance phases whose time has come. */
  tick(): void {
    if (this.#status !== 'open') return
    const now = this.#now()
    for (const group of this.#groups.values()) {
      let pendingLapsed = false
      for (const [memberId, expiry] of group.pending) {
        if (now >= expiry) {
          group.pending.delete(memberId)
          pendingLapsed = true
        }
      }
      for (const m of group.members.values()) {
        if (!m.awaitingJoin && !m.syncWaiter && now >= m.lastSeenMs + m.sessionTimeoutMs) {
          this.#removeMember(group, m, ErrorCode.UNKNOWN_MEMBER_ID, 'session timed out')
        }
      }
      if (pendingLapsed) this.#tryCompleteJoin(group)
      if (group.state === 'PreparingRebalance' && now >= group.joinDeadline) this.#completeJoin(group)
      if ((group.state === 'CompletingRebalance' || group.state === 'Stable') && now >= group.syncDeadline) {
        const laggards = [...group.awaitingSync]
        group.awaitingSync.clear()
        group.syncDeadline = Number.POSITIVE_INFINITY
        for (const id of laggards) {
          const m = group.members.get(id)
          if (m) this.#removeMember(group, m, ErrorCode.REBALANCE_IN_PROGRESS, 'did not sync within the rebalance timeout')
        }
      }
      this.#forgetIfUnused(group)
    }
    if (now - this.#lastRetentionCheck >= this.#retentionCheckIntervalMs) {
      this.#lastRetentionCheck = now
      this.#expireOffsets()
    }
    const next = this.nextDeadline()
    if (next !== undefined) this.#wakeAt(next)
  }

  /** The earliest monotonic time at which `tick()` has something to do, if any. */
  nextDeadline(): number | undefined {
    let next = Number.POSITIVE_INFINITY
    for (const group of this.#groups.values()) {
      for (const expiry of group.pending.values()) next = Math.min(next, expiry)
      for (const m of group.members.values()) {
        if (!m.awaitingJoin && !m.syncWaiter) next = Math.min(next, m.lastSeenMs + m.sessionTimeoutMs)
      }
      next = Math.min(next, group.joinDeadline, group.syncDeadline)
    }
    return Number.isFinite(next) ? next : undefined
  }

  /** An Empty group with no members and no offsets is forgotten (Kafka: at its next cleanup). */
  /**
   * Deletes the offsets of groups that have been Empty for the retention period (KIP-211: the
   * clock starts when the group empties, not at the commit). A commit made to an empty group
   * (an admin reset) counts as activity. The delete is queued before any later commit, so a
   * group that comes back meanwhile keeps what it commits.
   */
  #expireOffsets(): void {
    const wallNow = this.#clock.wallMs()
    for (const group of this.#groups.values()) {
      if (group.state !== 'Empty' || group.members.size > 0 || group.offsets.size === 0) continue
      const since = Math.max(group.emptySinceWallMs, lastCommitWallMs(group.offsets))
      if (wallNow - since < this.#offsetsRetentionMs) continue
      this.#logger.info('expiring the offsets of an empty group', { group: group.id, emptySince: new Date(since).toISOString() })
      group.offsets = new Map()
      group.snapshotStored = false
      this.#forgetIfUnused(group)
      this.#store.deleteGroup(group.id).catch((err: unknown) => this.#storeFailed('offset expiry', group.id, err))
    }
  }

  #forgetIfUnused(group: Group): void {
    if (group.state === 'Empty' && group.members.size === 0 && group.pending.size === 0 && group.offsets.size === 0) {
      if (this.#groups.get(group.id) === group) this.#groups.delete(group.id)
    }
  }

  // -------------------------------------------------------------------------------------------
  // Offsets

  /** Validates and durably stores a commit; one error code per partition, in request order. */
  async commitOffsets(req: CommitRequest): Promise<TopicPartitionErrors[]> {
    const everyPartition = (errorCode: number) =>
      req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })) }))
    const unavailable = this.#unavailable()
    if (unavailable) return everyPartition(unavailable)
    if (req.groupId === '') return everyPartition(ErrorCode.INVALID_GROUP_ID)

    let group = this.#groups.get(req.groupId)
    if (!group) {
      // Not under group management (admin tools, kcat): allowed with a negative generation.
      if (req.generationId >= 0) return everyPartition(ErrorCode.ILLEGAL_GENERATION)
      group = new Group(req.groupId)
      this.#groups.set(req.groupId, group)
    } else {
      const refusal = this.#commitRefusal(group, req)
      if (refusal !== ErrorCode.NONE) return everyPartition(refusal)
    }

    const commitTimestampMs = this.#clock.wallMs()
    const entries: OffsetCommitEntry[] = []
    const result = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        let errorCode: number = ErrorCode.NONE
        if (p.committedMetadata !== null && Buffer.byteLength(p.committedMetadata) > this.#maxMetadataBytes) {
          errorCode = ErrorCode.OFFSET_METADATA_TOO_LARGE
        } else {
          entries.push({
            topic: t.name,
            partition: p.partitionIndex,
            offset: p.committedOffset,
            leaderEpoch: p.committedLeaderEpoch,
            metadata: p.committedMetadata,
            commitTimestampMs,
          })
        }
        return { partitionIndex: p.partitionIndex, errorCode }
      }),
    }))
    try {
      await this.#store.commit(group.id, entries)
    } catch (err) {
      this.#storeFailed('offset commit', group.id, err)
      this.#forgetIfUnused(group)
      // Kafka answers a failed offsets append with COORDINATOR_NOT_AVAILABLE: clients retry.
      for (const t of result) for (const p of t.partitions) if (p.errorCode === ErrorCode.NONE) p.errorCode = ErrorCode.COORDINATOR_NOT_AVAILABLE
      return result
    }
    for (const e of entries) {
      let partitions = group.offsets.get(e.topic)
      if (!partitions) group.offsets.set(e.topic, (partitions = new Map()))
      partitions.set(e.partition, e)
    }
    this.#forgetIfUnused(group)
    return result
  }

  #commitRefusal(group: Group, req: MemberRef): number {
    if (isFenced(group, req.groupInstanceId, req.memberId)) return ErrorCode.FENCED_INSTANCE_ID
    if (req.generationId < 0 && group.state === 'Empty') return ErrorCode.NONE
    const member = group.members.get(req.memberId)
    if (!member) return ErrorCode.UNKNOWN_MEMBER_ID
    if (req.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION
    // The member has its join answer but the assignment is not out yet (Kafka does the same).
    if (group.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS
    this.#touch(member)
    return ErrorCode.NONE
  }

  /** Committed offsets; -1 where nothing is committed. `topics` null: all the group has. */
  fetchOffsets(groupId: string, topics: readonly { name: string; partitionIndexes: readonly number[] }[] | null): FetchOffsetsResult {
    const unavailable = this.#unavailable()
    if (unavailable) return { errorCode: unavailable, topics: [] }
    if (groupId === '') return { errorCode: ErrorCode.INVALID_GROUP_ID, topics: [] }
    const offsets = this.#groups.get(groupId)?.offsets ?? new Map<string, Map<number, CommittedOffset>>()
    const describe = (partitionIndex: number, committed: CommittedOffset | undefined): FetchedPartition => ({
      partitionIndex,
      committedOffset: committed?.offset ?? NO_OFFSET,
      committedLeaderEpoch: committed?.leaderEpoch ?? -1,
      metadata: committed ? committed.metadata : '',
      errorCode: ErrorCode.NONE,
    })
    if (topics === null) {
      return {
        errorCode: ErrorCode.NONE,
        topics: [...offsets.keys()].sort().map((name) => ({
          name,
          partitions: [...offsets.get(name)!].sort((a, b) => a[0] - b[0]).map(([p, c]) => describe(p, c)),
        })),
      }
    }
    return {
      errorCode: ErrorCode.NONE,
      topics: topics.map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((p) => describe(p, offsets.get(t.name)?.get(p))),
      })),
    }
  }

  /**
   * Starts a group's position on partitions it has no offset for (pubsub topics: a subscriber
   * begins at the end). Commits durably, without member checks, only where nothing is committed
   * (a commit that lands meanwhile wins); resolves to the offset now committed for each entry,
   * in order, or rejects when the store fails.
   */
  async seedOffsets(groupId: string, entries: readonly { topic: string; partition: number; offset: bigint }[]): Promise<bigint[]> {
    let group = this.#groups.get(groupId)
    if (!group) this.#groups.set(groupId, (group = new Group(groupId)))
    const target = group
    const missing = entries.filter((e) => target.offsets.get(e.topic)?.get(e.partition) === undefined)
    const commitTimestampMs = this.#clock.wallMs()
    const seeded = missing.map((e) => ({ topic: e.topic, partition: e.partition, offset: e.offset, leaderEpoch: -1, metadata: null, commitTimestampMs }))
    if (seeded.length > 0) {
      await this.#store.commit(groupId, seeded)
      for (const e of seeded) {
        let partitions = target.offsets.get(e.topic)
        if (!partitions) target.offsets.set(e.topic, (partitions = new Map()))
        if (!partitions.has(e.partition)) partitions.set(e.partition, e)
      }
    }
    return entries.map((e) => target.offsets.get(e.topic)?.get(e.partition)?.offset ?? e.offset)
  }

  /** The lowest offset any group has committed on a partition, or undefined when none has. */
  minCommittedOffset(topic: string, partition: number): bigint | undefined {
    let min: bigint | undefined
    for (const group of this.#groups.values()) {
      const committed = group.offsets.get(topic)?.get(partition)?.offset
      if (committed !== undefined && (min === undefined || committed < min)) min = committed
    }
    return min
  }

  /** OffsetDelete: refused for topics a member of the group subscribes to (KIP-496). */
  async deleteOffsets(
    groupId: string,
    topics: readonly { name: string; partitions: readonly number[] }[],
  ): Promise<{ errorCode: number; topics: TopicPartitionErrors[] }> {
    const unavailable = this.#unavailable()
    if (unavailable) return { errorCode: unavailable, topics: [] }
    if (groupId === '') return { errorCode: ErrorCode.INVALID_GROUP_ID, topics: [] }
    const group = this.#groups.get(groupId)
    if (!group) return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, topics: [] }
    let subscribed: (topic: string) => boolean = () => false
    if (group.members.size > 0) {
      if (group.protocolType !== 'consumer') return { errorCode: ErrorCode.NON_EMPTY_GROUP, topics: [] }
      subscribed = subscriptionsOf(group)
    }
    const keys: OffsetKey[] = []
    const result = topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((partitionIndex) => {
        if (subscribed(t.name)) return { partitionIndex, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC as number }
        keys.push({ topic: t.name, partition: partitionIndex })
        return { partitionIndex, errorCode: ErrorCode.NONE as number }
      }),
    }))
    try {
      await this.#store.deleteOffsets(groupId, keys)
    } catch (err) {
      this.#storeFailed('offset delete', groupId, err)
      return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, topics: [] }
    }
    for (const k of keys) {
      const partitions = group.offsets.get(k.topic)
      partitions?.delete(k.partition)
      if (partitions?.size === 0) group.offsets.delete(k.topic)
    }
    this.#forgetIfUnused(group)
    return { errorCode: ErrorCode.NONE, topics: result }
  }

  /** The store logs its own fencing once; each refused change after that is only debug noise. */
  #storeFailed(what: string, groupId: string, err: unknown): void {
    const level = isTidewayError(err, 'TIDEWAY_ERR_STORAGE_FENCED') || isTidewayError(err, 'TIDEWAY_ERR_CLOSED') ? 'debug' : 'error'
    this.#logger[level](`${what} failed`, { group: groupId, err })
  }

  // -------------------------------------------------------------------------------------------
  // Admin

  listGroups(statesFilter: readonly string[] = []): { errorCode: number; groups: ListedGroup[] } {
    const unavailable = this.#unavailable()
    if (unavailable) return { errorCode: unavailable, groups: [] }
    const wanted = new Set(statesFilter.map((s) => s.toLowerCase()))
    const groups = [...this.#groups.values()]
      .filter((g) => wanted.size === 0 || wanted.has(g.state.toLowerCase()))
      .map((g) => ({ groupId: g.id, protocolType: g.protocolType ?? '', groupState: g.state }))
    return { errorCode: ErrorCode.NONE, groups }
  }

  describeGroup(groupId: string): DescribedGroup {
    const unavailable = this.#unavailable()
    const group = this.#groups.get(groupId)
    if (unavailable || !group) {
      // An unknown group is described as Dead with no error, as Kafka does up to v5.
      return { errorCode: unavailable, groupId, groupState: 'Dead', protocolType: '', protocolData: '', members: [] }
    }
    const stable = group.state === 'Stable'
    return {
      errorCode: ErrorCode.NONE,
      groupId,
      groupState: group.state,
      protocolType: group.protocolType ?? '',
      protocolData: stable ? (group.protocolName ?? '') : '',
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: stable ? metadataFor(m, group.protocolName) : EMPTY,
        memberAssignment: stable ? m.assignment : EMPTY,
      })),
    }
  }

  /** Deletes member-less groups and their offsets, durably. */
  async deleteGroups(groupIds: readonly string[]): Promise<{ groupId: string; errorCode: number }[]> {
    const unavailable = this.#unavailable()
    return Promise.all(
      groupIds.map(async (groupId) => {
        if (unavailable) return { groupId, errorCode: unavailable }
        if (groupId === '') return { groupId, errorCode: ErrorCode.INVALID_GROUP_ID }
        const group = this.#groups.get(groupId)
        if (!group) return { groupId, errorCode: ErrorCode.GROUP_ID_NOT_FOUND }
        if (group.members.size > 0) return { groupId, errorCode: ErrorCode.NON_EMPTY_GROUP }
        group.state = 'Dead'
        this.#groups.delete(groupId)
        try {
          await this.#store.deleteGroup(groupId)
        } catch (err) {
          this.#storeFailed('group delete', groupId, err)
          group.state = 'Empty'
          if (!this.#groups.has(groupId)) this.#groups.set(groupId, group)
          return { groupId, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE }
        }
        return { groupId, errorCode: ErrorCode.NONE }
      }),
    )
  }

  /** The state of one group, for tests and diagnostics. */
  stateOf(groupId: string): { state: GroupState; generationId: number; leaderId: string | null; protocolName: string | null; memberIds: string[] } | undefined {
    const g = this.#groups.get(groupId)
    if (!g) return undefined
    return { state: g.state, generationId: g.generationId, leaderId: g.leaderId, protocolName: g.protocolName, memberIds: [...g.members.keys()] }
  }
}

// ---------------------------------------------------------------------------------------------

function joinError(memberId: string, errorCode: number): JoinResult {
  return { errorCode, generationId: -1, protocolName: '', leader: '', memberId, members: [] }
}

/** A request naming a static instance whose current member id is another one. */
function isFenced(group: Group, groupInstanceId: string | null, memberId: string): boolean {
  if (groupInstanceId === null) return false
  const mapped = group.staticMembers.get(groupInstanceId)
  return mapped !== undefined && mapped !== memberId
}

function updateMember(member: Member, req: JoinRequest): void {
  member.clientId = req.clientId
  if (req.clientHost !== undefined) member.clientHost = req.clientHost
  member.sessionTimeoutMs = req.sessionTimeoutMs
  member.rebalanceTimeoutMs = req.rebalanceTimeoutMs
  member.protocolType = req.protocolType
  member.protocols = req.protocols
}

function sameProtocols(a: readonly JoinProtocol[], b: readonly JoinProtocol[]): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata))
}

/**
 * Kafka's vote: the candidates are the protocols every member supports; each member votes for
 * the first candidate in its own order of preference, and the most votes wins (a tie goes to
 * the candidate the first member prefers).
 */
export function selectProtocol(members: Iterable<{ protocols: readonly JoinProtocol[] }>): string {
  const all = [...members]
  const first = all[0]
  if (!first) return ''
  const candidates = first.protocols.map((p) => p.name).filter((name) => all.every((m) => m.protocols.some((p) => p.name === name)))
  const votes = new Map<string, number>(candidates.map((c) => [c, 0]))
  for (const m of all) {
    const choice = m.protocols.find((p) => votes.has(p.name))
    if (choice) votes.set(choice.name, votes.get(choice.name)! + 1)
  }
  let best = candidates[0] ?? ''
  for (const c of candidates) if (votes.get(c)! > votes.get(best)!) best = c
  return best
}

function metadataFor(member: Member, protocolName: string | null): Buffer {
  return member.protocols.find((p) => p.name === protocolName)?.metadata ?? EMPTY
}

/** Which topics the group's members subscribe to; unreadable metadata counts as "all". */
function subscriptionsOf(group: Group): (topic: string) => boolean {
  const topics = new Set<string>()
  for (const m of group.members.values()) {
    const protocols = group.protocolName ? m.protocols.filter((p) => p.name === group.protocolName) : m.protocols
    for (const p of protocols) {
      const parsed = subscribedTopics(p.metadata)
      if (!parsed) return () => true
      for (const t of parsed) topics.add(t)
    }
  }
  return (topic) => topics.has(topic)
}

/**
 * Parks a JoinGroup or SyncGroup until the coordinator calls the waiter it leaves in `slot`, or
 * until the request's connection goes away (then it is answered with `abandoned`).
 */
function park<T>(
  slot: { get(): ((result: T) => void) | undefined; set(waiter: ((result: T) => void) | undefined): void },
  signal: AbortSignal | undefined,
  abandoned: T,
): Promise<T> {
  return new Promise<T>((resolve) => {
    const onAbort = () => {
      if (slot.get() !== waiter) return
      slot.set(undefined)
      resolve(abandoned)
    }
    const waiter = (result: T) => {
      slot.set(undefined)
      signal?.removeEventListener('abort', onAbort)
      resolve(result)
    }
    slot.set(waiter)
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
  })
}

function lastCommitWallMs(offsets: GroupOffsets): number {
  let last = 0
  for (const partitions of offsets.values()) for (const o of partitions.values()) last = Math.max(last, o.commitTimestampMs)
  return last
}

/** Characters of the client id a member id starts with (Kafka: all of it). */
const MEMBER_ID_CLIENT_CHARS = 200

/**
 * Member ids are "<client id>-<uuid>", as Kafka makes them, but with the client id cut short: a
 * client id may fill a whole protocol string, and the member id must still fit one.
 */
function clientIdPrefix(clientId: string): string {
  if (clientId.length <= MEMBER_ID_CLIENT_CHARS) return clientId
  return Array.from(clientId.slice(0, 2 * MEMBER_ID_CLIENT_CHARS)).slice(0, MEMBER_ID_CLIENT_CHARS).join('')
}
