// The classic group state machine, driven by hand on a ManualClock (time moves only when a test
// says so, and `tick()` runs whatever fell due). Error codes are Kafka's numbers, named.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { GroupCoordinator } from '../../../src/broker/groups/coordinator.ts'
import { ManualClock } from '../../../src/clock.ts'
import { ErrorCode } from '../../../src/protocol/error-codes.ts'
import {
  coordinator,
  joinRequest,
  protocols,
  REBALANCE_MS,
  SESSION_MS,
  settle,
  startJoin,
  subscription,
  track,
} from './helpers.ts'

const opts = { timeout: 10_000 }

async function stableGroupOfOne() {
  const env = await coordinator()
  const joined = await env.groups.join(joinRequest())
  assert.equal(joined.errorCode, ErrorCode.NONE)
  const synced = await env.groups.sync({
    groupId: 'g',
    generationId: joined.generationId,
    memberId: joined.memberId,
    groupInstanceId: null,
    assignments: [{ memberId: joined.memberId, assignment: Buffer.from('all') }],
  })
  assert.equal(synced.errorCode, ErrorCode.NONE)
  return { ...env, joined }
}

/** Three members joined in one generation, synced, Stable. */
async function stableGroupOfThree() {
  const env = await coordinator({ initialRebalanceDelayMs: 100 })
  const a = await startJoin(env.groups, { clientId: 'a' })
  const b = await startJoin(env.groups, { clientId: 'b' })
  const c = await startJoin(env.groups, { clientId: 'c' })
  env.advance(100)
  await settle()
  const results = [a.value!, b.value!, c.value!]
  const leader = results.find((r) => r.memberId === r.leader)!
  const followers = results.filter((r) => r !== leader)
  const syncs = followers.map((f) =>
    track(env.groups.sync({ groupId: 'g', generationId: f.generationId, memberId: f.memberId, groupInstanceId: null, assignments: [] })),
  )
  await env.groups.sync({
    groupId: 'g',
    generationId: leader.generationId,
    memberId: leader.memberId,
    groupInstanceId: null,
    assignments: results.map((r) => ({ memberId: r.memberId, assignment: Buffer.from(`for ${r.memberId}`) })),
  })
  await settle()
  return { ...env, results, leader, followers, syncs }
}

describe('joining and syncing', () => {
  test('a lone member joins, leads, gets its own assignment back and heartbeats without error', opts, async () => {
    const { groups, joined } = await stableGroupOfOne()
    assert.equal(joined.generationId, 1)
    assert.equal(joined.leader, joined.memberId)
    assert.equal(joined.protocolName, 'range')
    assert.deepEqual(joined.members.map((m) => m.memberId), [joined.memberId])
    assert.equal(groups.stateOf('g')!.state, 'Stable')
    const ref = { groupId: 'g', generationId: 1, memberId: joined.memberId, groupInstanceId: null }
    assert.equal(groups.heartbeat(ref), ErrorCode.NONE)
    const again = await groups.sync({ ...ref, assignments: [] })
    assert.deepEqual(again, { errorCode: ErrorCode.NONE, assignment: Buffer.from('all') })
  })

  test('JoinGroup v4+ hands a new dynamic member an id with MEMBER_ID_REQUIRED, and the rejoin with it completes', opts, async () => {
    const { groups } = await coordinator()
    const first = await groups.join(joinRequest({ requireKnownMemberId: true }))
    assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED)
    assert.notEqual(first.memberId, '')
    assert.equal(first.generationId, -1)
    assert.equal(groups.stateOf('g')!.memberIds.length, 0, 'a pending member is not yet a member')
    const second = await groups.join(joinRequest({ requireKnownMemberId: true, memberId: first.memberId }))
    assert.equal(second.errorCode, ErrorCode.NONE)
    assert.equal(second.memberId, first.memberId)
    assert.equal(second.generationId, 1)
  })

  test('JoinGroup v0-3 adds a member with no id directly', opts, async () => {
    const { groups } = await coordinator()
    const joined = await groups.join(joinRequest({ requireKnownMemberId: false }))
    assert.equal(joined.errorCode, ErrorCode.NONE)
    assert.match(joined.memberId, /^c-/)
  })

  test('a pending member id that is never used lapses after the session timeout', opts, async () => {
    const { groups, advance } = await coordinator()
    const first = await groups.join(joinRequest({ requireKnownMemberId: true }))
    advance(SESSION_MS)
    const late = await groups.join(joinRequest({ requireKnownMemberId: true, memberId: first.memberId }))
    assert.equal(late.errorCode, ErrorCode.UNKNOWN_MEMBER_ID)
  })

  test('three members land in one generation; the leader alone gets everyone\'s metadata', opts, async () => {
    const { results, leader, followers } = await stableGroupOfThree()
    assert.ok(results.every((r) => r.errorCode === ErrorCode.NONE && r.generationId === 1))
    assert.ok(results.every((r) => r.leader === leader.memberId))
    assert.deepEqual(leader.members.map((m) => m.memberId).sort(), results.map((r) => r.memberId).sort())
    assert.ok(leader.members.every((m) => m.metadata.equals(subscription('orders'))))
    for (const f of followers) assert.deepEqual(f.members, [])
  })

  test('followers\' SyncGroup waits for the leader\'s, then each gets its own assignment', opts, async () => {
    const env = await coordinator()
    const a = await startJoin(env.groups, { clientId: 'a' })
    await settle()
    // a is alone and Stable-bound; b joining starts generation 2, which a joins after its heartbeat says so.
    const aGen1 = a.value!
    await env.groups.sync({ groupId: 'g', generationId: 1, memberId: aGen1.memberId, groupInstanceId: null, assignments: [] })
    const b = await startJoin(env.groups, { clientId: 'b' })
    assert.equal(env.groups.heartbeat({ groupId: 'g', generationId: 1, memberId: aGen1.memberId, groupInstanceId: null }), ErrorCode.REBALANCE_IN_PROGRESS)
    const a2 = track(env.groups.join(joinRequest({ memberId: aGen1.memberId })))
    await settle()
    assert.equal(a2.value!.generationId, 2)
    assert.equal(a2.value!.leader, aGen1.memberId, 'the old leader keeps leadership when it rejoins')
    const bJoined = b.value!
    const bSync = track(env.groups.sync({ groupId: 'g', generationId: 2, memberId: bJoined.memberId, groupInstanceId: null, assignments: [] }))
    await settle()
    assert.equal(bSync.value, undefined, 'the follower waits for the leader')
    const aSync = await env.groups.sync({
      groupId: 'g',
      generationId: 2,
      memberId: aGen1.memberId,
      groupInstanceId: null,
      assignments: [{ memberId: bJoined.memberId, assignment: Buffer.from('b-part') }],
    })
    await settle()
    assert.deepEqual(bSync.value, { errorCode: ErrorCode.NONE, assignment: Buffer.from('b-part') })
    assert.deepEqual(aSync, { errorCode: ErrorCode.NONE, assignment: Buffer.alloc(0) }, 'a member the leader left out gets an empty assignment')
    assert.equal(env.groups.stateOf('g')!.state, 'Stable')
  })

  test('the first rebalance of an empty group waits the initial delay, extended by each newcomer', opts, async () => {
    const env = await coordinator({ initialRebalanceDelayMs: 300 })
    const a = await startJoin(env.groups, { clientId: 'a' })
    env.advance(200)
    const b = await startJoin(env.groups, { clientId: 'b' })
    env.advance(200)
    await settle()
    assert.equal(a.value, undefined, 'b extended the delay to 500 ms')
    env.advance(100)
    await settle()
    assert.equal(a.value!.generationId, 1)
    assert.equal(b.value!.generationId, 1)
  })

  test('a closed connection releases a parked JoinGroup', opts, async () => {
    const env = await coordinator({ initialRebalanceDelayMs: 1000 })
    const abort = new AbortController()
    const first = await env.groups.join(joinRequest({ requireKnownMemberId: true }))
    const parked = track(env.groups.join(joinRequest({ requireKnownMemberId: true, memberId: first.memberId }), abort.signal))
    await settle()
    assert.equal(parked.value, undefined)
    abort.abort()
    await settle()
    assert.equal(parked.value!.errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE)
  })

  test('requests before the offsets are loaded get COORDINATOR_LOAD_IN_PROGRESS', opts, async () => {
    const { GroupCoordinator } = await import('../../../src/broker/groups/coordinator.ts')
    const { MemoryOffsetStore } = await import('../../../src/broker/groups/offset-store.ts')
    const { ManualClock } = await import('../../../src/clock.ts')
    const groups = new GroupCoordinator({ clock: new ManualClock(), store: new MemoryOffsetStore() })
    assert.equal((await groups.join(joinRequest())).errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
    assert.equal(groups.fetchOffsets('g', null).errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
  })

  test('a session timeout outside the configured bounds is INVALID_SESSION_TIMEOUT', opts, async () => {
    const { groups } = await coordinator({ minSessionTimeoutMs: 6000, maxSessionTimeoutMs: 60_000 })
    assert.equal((await groups.join(joinRequest({ sessionTimeoutMs: 5999 }))).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT)
    assert.equal((await groups.join(joinRequest({ sessionTimeoutMs: 60_001 }))).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT)
    assert.equal((await groups.join(joinRequest({ sessionTimeoutMs: 30_000 }))).errorCode, ErrorCode.NONE)
  })

  test('an empty group id is INVALID_GROUP_ID', opts, async () => {
    const { groups } = await coordinator()
    assert.equal((await groups.join(joinRequest({ groupId: '' }))).errorCode, ErrorCode.INVALID_GROUP_ID)
  })
})

describe('protocol selection', () => {
  test('the protocol every member supports wins by vote of each member\'s first choice', opts, async () => {
    const env = await coordinator({ initialRebalanceDelayMs: 50 })
    const a = await startJoin(env.groups, { clientId: 'a', protocols: protocols('roundrobin', 'range', 'sticky') })
    const b = await startJoin(env.groups, { clientId: 'b', protocols: protocols('range', 'roundrobin') })
    const c = await startJoin(env.groups, { clientId: 'c', protocols: protocols('range', 'roundrobin', 'sticky') })
    env.advance(50)
    await settle()
    for (const r of [a, b, c]) assert.equal(r.value!.protocolName, 'range')
  })

  test('a member with no protocol in common with the group is INCONSISTENT_GROUP_PROTOCOL', opts, async () => {
    const { groups } = await stableGroupOfOne()
    const odd = await groups.join(joinRequest({ protocols: protocols('cooperative-sticky') }))
    assert.equal(odd.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
  })

  test('a member with another protocol type is INCONSISTENT_GROUP_PROTOCOL', opts, async () => {
    const { groups } = await stableGroupOfOne()
    const odd = await groups.join(joinRequest({ protocolType: 'connect' }))
    assert.equal(odd.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
  })

  test('a join with no protocols or an empty protocol type is INCONSISTENT_GROUP_PROTOCOL', opts, async () => {
    const { groups } = await coordinator()
    assert.equal((await groups.join(joinRequest({ protocols: [] }))).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
    assert.equal((await groups.join(joinRequest({ protocolType: '' }))).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
    assert.equal(groups.stateOf('g'), undefined, 'a refused join leaves no group behind')
  })
})

describe('member and generation checks', () => {
  test('a stale generation is ILLEGAL_GENERATION on SyncGroup, Heartbeat and OffsetCommit', opts, async () => {
    const { groups, joined } = await stableGroupOfOne()
    const stale = { groupId: 'g', generationId: joined.generationId - 1, memberId: joined.memberId, groupInstanceId: null }
    assert.equal((await groups.sync({ ...stale, assignments: [] })).errorCode, ErrorCode.ILLEGAL_GENERATION)
    assert.equal(groups.heartbeat(stale), ErrorCode.ILLEGAL_GENERATION)
    const commit = await groups.commitOffsets({
      ...stale,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 5n, committedLeaderEpoch: -1, committedMetadata: null }] }],
    })
    assert.equal(commit[0]!.partitions[0]!.errorCode, ErrorCode.ILLEGAL_GENERATION)
  })

  test('an unknown member is UNKNOWN_MEMBER_ID on JoinGroup, SyncGroup, Heartbeat and OffsetCommit', opts, async () => {
    const { groups, joined } = await stableGroupOfOne()
    const ghost = { groupId: 'g', generationId: joined.generationId, memberId: 'ghost', groupInstanceId: null }
    assert.equal((await groups.join(joinRequest({ memberId: 'ghost' }))).errorCode, ErrorCode.UNKNOWN_MEMBER_ID)
    assert.equal((await groups.sync({ ...ghost, assignments: [] })).errorCode, ErrorCode.UNKNOWN_MEMBER_ID)
    assert.equal(groups.heartbeat(ghost), ErrorCode.UNKNOWN_MEMBER_ID)
    assert.equal(groups.heartbeat({ ...ghost, groupId: 'nope' }), ErrorCode.UNKNOWN_MEMBER_ID)
    const commit = await groups.commitOffsets({
      ...ghost,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 5n, committedLeaderEpoch: -1, committedMetadata: null }] }],
    })
    assert.equal(commit[0]!.partitions[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID)
  })

  test('during a rebalance Heartbeat and SyncGroup get REBALANCE_IN_PROGRESS; OffsetCommit waits for the assignment', opts, async () => {
    const { groups, joined } = await stableGroupOfOne()
    const ref = { groupId: 'g', generationId: 1, memberId: joined.memberId, groupInstanceId: null }
    const offsets = [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 7n, committedLeaderEpoch: -1, committedMetadata: null }] }]
    const newcomer = await startJoin(groups, { clientId: 'b' })
    assert.equal(groups.stateOf('g')!.state, 'PreparingRebalance')
    assert.equal(groups.heartbeat(ref), ErrorCode.REBALANCE_IN_PROGRESS)
    assert.equal((await groups.sync({ ...ref, assignments: [] })).errorCode, ErrorCode.REBALANCE_IN_PROGRESS)
    // Kafka accepts commits of the old generation while the rebalance prepares, so eager
    // consumers can commit what they processed before they rejoin.
    assert.equal((await groups.commitOffsets({ ...ref, topics: offsets }))[0]!.partitions[0]!.errorCode, ErrorCode.NONE)
    const rejoined = await groups.join(joinRequest({ memberId: joined.memberId }))
    await settle()
    assert.equal(newcomer.value!.generationId, 2)
    assert.equal(groups.stateOf('g')!.state, 'CompletingRebalance')
    const early = await groups.commitOffsets({ ...ref, generationId: rejoined.generationId, topics: offsets })
    assert.equal(early[0]!.partitions[0]!.errorCode, ErrorCode.REBALANCE_IN_PROGRESS)
  })
})

describe('liveness', () => {
  test('a member whose session expires is removed and the others rebalance without it', opts, async () => {
    const { groups, advance, results, leader, followers } = await stableGroupOfThree()
    const [quiet, chatty] = followers
    const hb = (r: typeof leader) => groups.heartbeat({ groupId: 'g', generationId: r.generationId, memberId: r.memberId, groupInstanceId: null })
    advance(SESSION_MS - 1)
    assert.equal(hb(leader), ErrorCode.NONE)
    assert.equal(hb(chatty!), ErrorCode.NONE)
    advance(1)
    assert.deepEqual(groups.stateOf('g')!.memberIds.sort(), [leader.memberId, chatty!.memberId].sort())
    assert.equal(hb(leader), ErrorCode.REBALANCE_IN_PROGRESS)
    assert.equal(hb(quiet!), ErrorCode.UNKNOWN_MEMBER_ID)
    const l = track(groups.join(joinRequest({ memberId: leader.memberId })))
    const c = track(groups.join(joinRequest({ memberId: chatty!.memberId })))
    await settle()
    assert.equal(l.value!.generationId, 2)
    assert.equal(l.value!.members.length, 2)
    assert.equal(c.value!.generationId, 2)
    assert.equal(results.length, 3)
  })

  test('a member parked in JoinGroup is not expired by its session timeout', opts, async () => {
    const { groups, advance, leader, followers } = await stableGroupOfThree()
    // The leader's rejoin starts a rebalance and parks it; the followers keep heartbeating
    // (each heartbeat says REBALANCE_IN_PROGRESS) but have not rejoined yet.
    const parked = track(groups.join(joinRequest({ memberId: leader.memberId })))
    for (let t = 0; t <= SESSION_MS; t += SESSION_MS / 4) {
      for (const f of followers) groups.heartbeat({ groupId: 'g', generationId: 1, memberId: f.memberId, groupInstanceId: null })
      advance(SESSION_MS / 4)
    }
    await settle()
    assert.equal(parked.value, undefined, 'still waiting for the followers')
    assert.equal(groups.stateOf('g')!.memberIds.length, 3, 'the parked leader was not expired')
  })

  test('the rebalance timeout ends the join phase without members that did not rejoin', opts, async () => {
    const { groups, advance, leader, followers } = await stableGroupOfThree()
    const keepAlive = () => {
      for (const r of [leader, ...followers]) groups.heartbeat({ groupId: 'g', generationId: 1, memberId: r.memberId, groupInstanceId: null })
    }
    const l = track(groups.join(joinRequest({ memberId: leader.memberId })))
    const f0 = track(groups.join(joinRequest({ memberId: followers[0]!.memberId })))
    // followers[1] keeps heartbeating (it has not noticed) but never rejoins.
    for (let t = 0; t < REBALANCE_MS; t += SESSION_MS / 2) {
      keepAlive()
      advance(SESSION_MS / 2)
    }
    await settle()
    assert.equal(l.value!.generationId, 2)
    assert.equal(f0.value!.generationId, 2)
    assert.deepEqual(groups.stateOf('g')!.memberIds.sort(), [leader.memberId, followers[0]!.memberId].sort())
  })

  test('a leader that never syncs is removed after the rebalance timeout and the group starts over', opts, async () => {
    const env = await coordinator({ initialRebalanceDelayMs: 10 })
    // Sessions longer than the rebalance timeout, so only the sync deadline can remove anyone.
    const a = await startJoin(env.groups, { clientId: 'a', sessionTimeoutMs: 2 * REBALANCE_MS })
    const b = await startJoin(env.groups, { clientId: 'b', sessionTimeoutMs: 2 * REBALANCE_MS })
    env.advance(10)
    await settle()
    const leader = [a.value!, b.value!].find((r) => r.leader === r.memberId)!
    const follower = [a.value!, b.value!].find((r) => r !== leader)!
    const parked = track(env.groups.sync({ groupId: 'g', generationId: 1, memberId: follower.memberId, groupInstanceId: null, assignments: [] }))
    env.advance(REBALANCE_MS)
    await settle()
    assert.equal(parked.value!.errorCode, ErrorCode.REBALANCE_IN_PROGRESS)
    assert.deepEqual(env.groups.stateOf('g')!.memberIds, [follower.memberId])
  })

  test('LeaveGroup starts a rebalance at once; the last member leaving empties the group', opts, async () => {
    const { groups, leader, followers } = await stableGroupOfThree()
    const left = groups.leave('g', [{ memberId: followers[0]!.memberId, groupInstanceId: null }])
    assert.deepEqual(left.members.map((m) => m.errorCode), [ErrorCode.NONE])
    assert.equal(groups.stateOf('g')!.state, 'PreparingRebalance')
    assert.equal(groups.heartbeat({ groupId: 'g', generationId: 1, memberId: leader.memberId, groupInstanceId: null }), ErrorCode.REBALANCE_IN_PROGRESS)
    const unknown = groups.leave('g', [{ memberId: 'ghost', groupInstanceId: null }])
    assert.equal(unknown.members[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID)
    groups.leave('g', [
      { memberId: leader.memberId, groupInstanceId: null },
      { memberId: followers[1]!.memberId, groupInstanceId: null },
    ])
    assert.equal(groups.stateOf('g'), undefined, 'an empty group without offsets is forgotten')
  })
})

describe('membership across a coordinator restart', () => {
  test('a Stable group comes back Stable with its generation and members; one that stays silent times out', opts, async () => {
    const { store, leader, followers } = await stableGroupOfThree()
    await settle()
    // A new coordinator on the same store: what a restarted broker does.
    const clock = new ManualClock()
    const restarted = new GroupCoordinator({ clock, store, initialRebalanceDelayMs: 0 })
    await restarted.load()
    const state = restarted.stateOf('g')!
    assert.equal(state.state, 'Stable')
    assert.equal(state.generationId, leader.generationId)
    assert.equal(state.leaderId, leader.memberId)
    assert.deepEqual(state.memberIds.sort(), [leader, ...followers].map((m) => m.memberId).sort())
    const described = restarted.describeGroup('g')
    assert.equal(described.members.find((m) => m.memberId === leader.memberId)!.memberAssignment.toString(), `for ${leader.memberId}`)
    const commit = await restarted.commitOffsets({
      groupId: 'g',
      generationId: leader.generationId,
      memberId: followers[0]!.memberId,
      groupInstanceId: null,
      topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 3n, committedLeaderEpoch: -1, committedMetadata: null }] }],
    })
    assert.equal(commit[0]!.partitions[0]!.errorCode, ErrorCode.NONE, 'members commit in their generation as before')
    // Two members keep heartbeating; the third died with the old broker.
    const beat = (memberId: string) => restarted.heartbeat({ groupId: 'g', generationId: leader.generationId, memberId, groupInstanceId: null })
    clock.advance(SESSION_MS / 2)
    restarted.tick()
    assert.equal(beat(leader.memberId), ErrorCode.NONE)
    assert.equal(beat(followers[0]!.memberId), ErrorCode.NONE)
    clock.advance(SESSION_MS / 2)
    restarted.tick()
    assert.equal(restarted.stateOf('g')!.state, 'PreparingRebalance')
    assert.equal(beat(leader.memberId), ErrorCode.REBALANCE_IN_PROGRESS)
    await restarted.close()
  })

  test('an emptied group without offsets is not revived by a restart', opts, async () => {
    const { store, groups, leader, followers } = await stableGroupOfThree()
    groups.leave('g', [leader, ...followers].map((m) => ({ memberId: m.memberId, groupInstanceId: null })))
    await settle()
    const restarted = new GroupCoordinator({ clock: new ManualClock(), store, initialRebalanceDelayMs: 0 })
    await restarted.load()
    assert.equal(restarted.stateOf('g'), undefined)
    assert.equal(store.snapshots.has('g'), false)
  })
})

describe('static membership (KIP-345)', () => {
  async function stableStatic() {
    const env = await coordinator()
    const joined = await env.groups.join(joinRequest({ groupInstanceId: 'instance-1', requireKnownMemberId: false }))
    assert.equal(joined.errorCode, ErrorCode.NONE)
    await env.groups.sync({ groupId: 'g', generationId: 1, memberId: joined.memberId, groupInstanceId: 'instance-1', assignments: [{ memberId: joined.memberId, assignment: Buffer.from('mine') }] })
    return { ...env, joined }
  }

  test('a known instance rejoining with unchanged metadata gets a new id, the same generation and no rebalance', opts, async () => {
    const { groups, joined } = await stableStatic()
    const again = await groups.join(joinRequest({ groupInstanceId: 'instance-1' }))
    assert.equal(again.errorCode, ErrorCode.NONE)
    assert.notEqual(again.memberId, joined.memberId)
    assert.equal(again.generationId, 1)
    assert.notEqual(again.leader, again.memberId, 'it must not re-run an assignment a Stable group would not hand out')
    assert.equal(groups.stateOf('g')!.state, 'Stable')
    const sync = await groups.sync({ groupId: 'g', generationId: 1, memberId: again.memberId, groupInstanceId: 'instance-1', assignments: [] })
    assert.deepEqual(sync, { errorCode: ErrorCode.NONE, assignment: Buffer.from('mine') }, 'its assignment is kept')
  })

  test('the replaced member id is fenced with FENCED_INSTANCE_ID', opts, async () => {
    const { groups, joined } = await stableStatic()
    await groups.join(joinRequest({ groupInstanceId: 'instance-1' }))
    const old = { groupId: 'g', generationId: 1, memberId: joined.memberId, groupInstanceId: 'instance-1' }
    assert.equal(groups.heartbeat(old), ErrorCode.FENCED_INSTANCE_ID)
    assert.equal((await groups.sync({ ...old, assignments: [] })).errorCode, ErrorCode.FENCED_INSTANCE_ID)
    assert.equal((await groups.join(joinRequest({ memberId: joined.memberId, groupInstanceId: 'instance-1' }))).errorCode, ErrorCode.FENCED_INSTANCE_ID)
    assert.equal(groups.leave('g', [{ memberId: joined.memberId, groupInstanceId: 'instance-1' }]).members[0]!.errorCode, ErrorCode.FENCED_INSTANCE_ID)
  })

  test('a known instance rejoining with changed metadata starts a rebalance', opts, async () => {
    const { groups } = await stableStatic()
    const changed = await groups.join(
      joinRequest({ groupInstanceId: 'instance-1', protocols: [{ name: 'range', metadata: subscription('orders', 'payments') }] }),
    )
    assert.equal(changed.errorCode, ErrorCode.NONE)
    assert.equal(changed.generationId, 2)
    assert.equal(changed.leader, changed.memberId)
  })

  test('a static member may leave by instance id alone', opts, async () => {
    const { groups } = await stableStatic()
    const left = groups.leave('g', [{ memberId: '', groupInstanceId: 'instance-1' }])
    assert.equal(left.members[0]!.errorCode, ErrorCode.NONE)
    assert.equal(groups.stateOf('g'), undefined)
  })
})

describe('offsets', () => {
  const offsetsFor = (offset: bigint, metadata: string | null = null) => [
    { name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: 3, committedMetadata: metadata }] },
  ]

  test('a commit with generation -1 on a group without members is accepted (admin tools, kcat)', opts, async () => {
    const { groups, store } = await coordinator()
    const result = await groups.commitOffsets({ groupId: 'admin', generationId: -1, memberId: '', groupInstanceId: null, topics: offsetsFor(42n, 'note') })
    assert.equal(result[0]!.partitions[0]!.errorCode, ErrorCode.NONE)
    assert.equal(store.state.get('admin')!.get('orders')!.get(0)!.offset, 42n)
    const fetched = groups.fetchOffsets('admin', [{ name: 'orders', partitionIndexes: [0] }])
    assert.deepEqual(fetched.topics[0]!.partitions[0], {
      partitionIndex: 0,
      committedOffset: 42n,
      committedLeaderEpoch: 3,
      metadata: 'note',
      errorCode: ErrorCode.NONE,
    })
    assert.deepEqual(groups.listGroups().groups.map((g) => g.groupId), ['admin'], 'the group exists while it has offsets')
  })

  test('offsets of a group empty for the retention period expire; members or a recent commit keep them', opts, async () => {
    const DAY = 24 * 60 * 60 * 1000
    const env = await coordinator({ offsetsRetentionMs: 7 * DAY, offsetsRetentionCheckIntervalMs: 60_000, maxSessionTimeoutMs: 2 * DAY })
    const { groups, store, advance } = env
    // 'kept' has a member throughout (heartbeating daily); 'idle' has only an admin commit;
    // 'reset' gets a second admin commit on day 6.
    const member = await groups.join(joinRequest({ groupId: 'kept', sessionTimeoutMs: 2 * DAY }))
    await groups.sync({ groupId: 'kept', generationId: member.generationId, memberId: member.memberId, groupInstanceId: null, assignments: [] })
    await groups.commitOffsets({ groupId: 'kept', generationId: member.generationId, memberId: member.memberId, groupInstanceId: null, topics: offsetsFor(5n) })
    for (const groupId of ['idle', 'reset']) {
      await groups.commitOffsets({ groupId, generationId: -1, memberId: '', groupInstanceId: null, topics: offsetsFor(7n) })
    }
    const keepAlive = () => groups.heartbeat({ groupId: 'kept', generationId: member.generationId, memberId: member.memberId, groupInstanceId: null })
    for (let day = 0; day < 6; day++) {
      advance(DAY)
      assert.equal(keepAlive(), ErrorCode.NONE)
    }
    await groups.commitOffsets({ groupId: 'reset', generationId: -1, memberId: '', groupInstanceId: null, topics: offsetsFor(9n) })
    advance(DAY + 60_000)
    assert.equal(keepAlive(), ErrorCode.NONE)
    await settle()
    assert.equal(store.state.has('idle'), false, 'expired durably')
    assert.equal(groups.stateOf('idle'), undefined)
    assert.equal(groups.fetchOffsets('idle', [{ name: 'orders', partitionIndexes: [0] }]).topics[0]!.partitions[0]!.committedOffset, -1n)
    assert.equal(groups.fetchOffsets('reset', [{ name: 'orders', partitionIndexes: [0] }]).topics[0]!.partitions[0]!.committedOffset, 9n, 'the later commit restarted its clock')
    assert.equal(groups.fetchOffsets('kept', [{ name: 'orders', partitionIndexes: [0] }]).topics[0]!.partitions[0]!.committedOffset, 5n, 'a group with members keeps its offsets')
    advance(6 * DAY)
    await settle()
    assert.equal(store.state.has('reset'), false, 'and expires a retention period after that commit')
  })

  test('a commit with generation -1 to a group that has members is refused', opts, async () => {
    const { groups } = await stableGroupOfOne()
    const result = await groups.commitOffsets({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null, topics: offsetsFor(1n) })
    assert.equal(result[0]!.partitions[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID)
  })

  test('a commit with a real generation to an unknown group is ILLEGAL_GENERATION', opts, async () => {
    const { groups } = await coordinator()
    const result = await groups.commitOffsets({ groupId: 'nope', generationId: 3, memberId: 'm', groupInstanceId: null, topics: offsetsFor(1n) })
    assert.equal(result[0]!.partitions[0]!.errorCode, ErrorCode.ILLEGAL_GENERATION)
  })

  test('oversized offset metadata is OFFSET_METADATA_TOO_LARGE for that partition only', opts, async () => {
    const { groups } = await coordinator({ maxOffsetMetadataBytes: 8 })
    const result = await groups.commitOffsets({
      groupId: 'admin',
      generationId: -1,
      memberId: '',
      groupInstanceId: null,
      topics: [
        {
          name: 'orders',
          partitions: [
            { partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: 'x'.repeat(9) },
            { partitionIndex: 1, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: 'ok' },
          ],
        },
      ],
    })
    assert.deepEqual(result[0]!.partitions.map((p) => p.errorCode), [ErrorCode.OFFSET_METADATA_TOO_LARGE, ErrorCode.NONE])
  })

  test('OffsetFetch answers -1 where nothing is committed, and null topics lists every commit', opts, async () => {
    const { groups } = await stableGroupOfOne()
    await groups.commitOffsets({ groupId: 'g', generationId: 1, memberId: groups.stateOf('g')!.memberIds[0]!, groupInstanceId: null, topics: offsetsFor(9n) })
    const some = groups.fetchOffsets('g', [{ name: 'orders', partitionIndexes: [0, 1] }, { name: 'other', partitionIndexes: [0] }])
    assert.deepEqual(
      some.topics.map((t) => t.partitions.map((p) => [t.name, p.partitionIndex, p.committedOffset, p.metadata])),
      [[['orders', 0, 9n, null], ['orders', 1, -1n, '']], [['other', 0, -1n, '']]],
    )
    const unknownGroup = groups.fetchOffsets('never', [{ name: 'orders', partitionIndexes: [0] }])
    assert.equal(unknownGroup.topics[0]!.partitions[0]!.committedOffset, -1n)
    const all = groups.fetchOffsets('g', null)
    assert.deepEqual(all.topics.map((t) => [t.name, t.partitions.map((p) => p.committedOffset)]), [['orders', [9n]]])
  })

  test('OffsetDelete refuses topics a member subscribes to and deletes the rest', opts, async () => {
    const { groups } = await stableGroupOfOne()
    const memberId = groups.stateOf('g')!.memberIds[0]!
    await groups.commitOffsets({
      groupId: 'g',
      generationId: 1,
      memberId,
      groupInstanceId: null,
      topics: [...offsetsFor(5n), { name: 'old', partitions: [{ partitionIndex: 0, committedOffset: 3n, committedLeaderEpoch: -1, committedMetadata: null }] }],
    })
    const result = await groups.deleteOffsets('g', [
      { name: 'orders', partitions: [0] },
      { name: 'old', partitions: [0] },
    ])
    assert.equal(result.errorCode, ErrorCode.NONE)
    assert.deepEqual(result.topics.map((t) => t.partitions[0]!.errorCode), [ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, ErrorCode.NONE])
    assert.deepEqual(groups.fetchOffsets('g', null).topics.map((t) => t.name), ['orders'])
    assert.equal((await groups.deleteOffsets('missing', [])).errorCode, ErrorCode.GROUP_ID_NOT_FOUND)
  })
})

describe('admin', () => {
  test('ListGroups and DescribeGroups report state, protocol and members', opts, async () => {
    const { groups, joined } = await stableGroupOfOne()
    assert.deepEqual(groups.listGroups().groups, [{ groupId: 'g', protocolType: 'consumer', groupState: 'Stable' }])
    assert.deepEqual(groups.listGroups(['empty']).groups, [])
    assert.equal(groups.listGroups(['STABLE']).groups.length, 1)
    const described = groups.describeGroup('g')
    assert.equal(described.groupState, 'Stable')
    assert.equal(described.protocolData, 'range')
    assert.equal(described.members[0]!.memberId, joined.memberId)
    assert.equal(described.members[0]!.clientId, 'c')
    assert.deepEqual(described.members[0]!.memberAssignment, Buffer.from('all'))
    assert.deepEqual(groups.describeGroup('nope'), {
      errorCode: ErrorCode.NONE,
      groupId: 'nope',
      groupState: 'Dead',
      protocolType: '',
      protocolData: '',
      members: [],
    })
  })

  test('DeleteGroups refuses a group with members and unknown groups, and deletes an empty one with its offsets', opts, async () => {
    const { groups, store } = await stableGroupOfOne()
    await groups.commitOffsets({ groupId: 'idle', generationId: -1, memberId: '', groupInstanceId: null, topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: null }] }] })
    const results = await groups.deleteGroups(['g', 'idle', 'never'])
    assert.deepEqual(results, [
      { groupId: 'g', errorCode: ErrorCode.NON_EMPTY_GROUP },
      { groupId: 'idle', errorCode: ErrorCode.NONE },
      { groupId: 'never', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
    ])
    assert.equal(store.state.has('idle'), false)
    assert.equal(groups.fetchOffsets('idle', [{ name: 't', partitionIndexes: [0] }]).topics[0]!.partitions[0]!.committedOffset, -1n)
  })

  test('close answers parked requests with COORDINATOR_NOT_AVAILABLE', opts, async () => {
    const env = await coordinator({ initialRebalanceDelayMs: 1000 })
    const parked = await startJoin(env.groups)
    await env.groups.close()
    await settle()
    assert.equal(parked.value!.errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE)
    assert.equal(env.groups.heartbeat({ groupId: 'g', generationId: 0, memberId: 'x', groupInstanceId: null }), ErrorCode.COORDINATOR_NOT_AVAILABLE)
  })
})
