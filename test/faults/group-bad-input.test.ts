// Bad group requests next to a live group: two KafkaJS consumers share a topic while a raw client
// sends a JoinGroup with an unknown protocol type, one with no assignor in common, a SyncGroup
// from a stale generation, commits and heartbeats from members that do not exist or from the
// wrong generation, and a few malformed joins. Each gets the error code Kafka gives; afterwards
// the group has the same generation and members (no rebalance was triggered), the intruders'
// commits changed nothing, and the consumers keep receiving records.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { DescribeGroups, Heartbeat, JoinGroup, LeaveGroup, OffsetCommit, OffsetFetch, SyncGroup } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { createTopic } from '../helpers/admin.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs

let broker: EmbeddedBroker
let raw: RawClient
const toClose: { disconnect(): Promise<void> }[] = []

before(async () => {
  broker = await embeddedBroker()
  raw = await RawClient.connect(broker.bootstrap)
})
after(async () => {
  for (const c of toClose.splice(0).reverse()) await c.disconnect().catch(() => {})
  raw?.socket.destroy()
  await broker?.dispose()
})

const consumerMetadata = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) // version 0, no topics, no user data

test('bad group requests get the right error codes and leave a live group undisturbed', { timeout: 90_000 }, async () => {
  const topic = uniqueName('bad-group-topic')
  const groupId = uniqueName('bad-group')
  await createTopic(broker.bootstrap, topic, 2)
  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'bad-group-test', logLevel: logLevel.NOTHING })
  const producer = kafka.producer()
  toClose.push(producer)
  await producer.connect()

  const received = new Set<string>()
  const joins = [0, 0]
  for (const index of [0, 1]) {
    const consumer = kafka.consumer({ groupId, heartbeatInterval: 300, maxWaitTimeInMs: 100 })
    toClose.push(consumer)
    consumer.on(consumer.events.GROUP_JOIN, () => joins[index]!++)
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void received.add(message.value!.toString()) })
  }
  const stable = await waitFor(
    async () => {
      const { groups } = await raw.request(DescribeGroups, 5, { groups: [groupId], includeAuthorizedOperations: false })
      const g = groups[0]!
      return g.groupState === 'Stable' && g.members.length === 2 && joins.every((n) => n > 0) ? g : undefined
    },
    { timeoutMs: 30_000, what: 'two consumers in a stable group' },
  )
  await producer.send({ topic, acks: -1, messages: Array.from({ length: 20 }, (_, i) => ({ value: `before-${i}` })) })
  await waitFor(() => received.size === 20, { timeoutMs: 20_000, what: 'the first records' })
  // KafkaJS commits after handing the records over: wait until its own commits cover all 20, so
  // nothing the live consumers commit later is mistaken for an intruder's commit.
  const committedBefore = await waitFor(
    async () => {
      const offsets = await committedOffsets(groupId, topic)
      return offsets.reduce((sum, o) => sum + (o > 0n ? o : 0n), 0n) === 20n ? offsets : undefined
    },
    { timeoutMs: 20_000, intervalMs: 50, what: 'the consumers to commit the first records' },
  )
  const joinsBefore = [...joins]
  const [memberA] = stable.members.map((m) => m.memberId)
  const { generationId } = await currentGeneration(groupId, memberA!)

  const join = (overrides: Partial<Parameters<typeof raw.request<typeof JoinGroup>>[2]>) =>
    raw.request(JoinGroup, 5, {
      groupId,
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId: '',
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'RoundRobinAssigner', metadata: consumerMetadata }],
      ...overrides,
    })

  // Joins that must be refused before they touch the group.
  assert.equal((await join({ protocolType: 'connect' })).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL, 'unknown protocol type')
  assert.equal((await join({ protocols: [{ name: 'no-such-assignor', metadata: consumerMetadata }] })).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL, 'no assignor in common')
  assert.equal((await join({ protocols: [] })).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL, 'no protocols at all')
  assert.equal((await join({ sessionTimeoutMs: 1 })).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT, 'session timeout below the minimum')
  assert.equal((await join({ groupId: '' })).errorCode, ErrorCode.INVALID_GROUP_ID, 'empty group id')
  assert.equal((await join({ memberId: 'made-up-member' })).errorCode, ErrorCode.UNKNOWN_MEMBER_ID, 'a member id the group never gave out')

  // A real member's id from a stale generation, and members that do not exist.
  const staleSync = await raw.request(SyncGroup, 4, { groupId, generationId: generationId - 1, memberId: memberA!, groupInstanceId: null, assignments: [] })
  assert.equal(staleSync.errorCode, ErrorCode.ILLEGAL_GENERATION, 'SyncGroup from a stale generation')
  const unknownSync = await raw.request(SyncGroup, 4, { groupId, generationId, memberId: 'intruder', groupInstanceId: null, assignments: [] })
  assert.equal(unknownSync.errorCode, ErrorCode.UNKNOWN_MEMBER_ID, 'SyncGroup from an unknown member')
  const staleHeartbeat = await raw.request(Heartbeat, 4, { groupId, generationId: generationId - 1, memberId: memberA!, groupInstanceId: null })
  assert.equal(staleHeartbeat.errorCode, ErrorCode.ILLEGAL_GENERATION, 'Heartbeat from a stale generation')
  const unknownHeartbeat = await raw.request(Heartbeat, 4, { groupId, generationId, memberId: 'intruder', groupInstanceId: null })
  assert.equal(unknownHeartbeat.errorCode, ErrorCode.UNKNOWN_MEMBER_ID, 'Heartbeat from an unknown member')

  const commit = (memberId: string, generation: number) =>
    raw.request(OffsetCommit, 8, {
      groupId,
      generationIdOrMemberEpoch: generation,
      memberId,
      groupInstanceId: null,
      topics: [{ name: topic, partitions: [0, 1].map((partitionIndex) => ({ partitionIndex, committedOffset: 999n, committedLeaderEpoch: -1, committedMetadata: null })) }],
    })
  const unknownCommit = await commit('intruder', generationId)
  assert.deepEqual(unknownCommit.topics[0]!.partitions.map((p) => p.errorCode), [ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.UNKNOWN_MEMBER_ID], 'commit from an unknown member')
  const staleCommit = await commit(memberA!, generationId - 1)
  assert.deepEqual(staleCommit.topics[0]!.partitions.map((p) => p.errorCode), [ErrorCode.ILLEGAL_GENERATION, ErrorCode.ILLEGAL_GENERATION], 'commit from a stale generation')

  const leave = await raw.request(LeaveGroup, 4, { groupId, members: [{ memberId: 'intruder', groupInstanceId: null }] })
  assert.deepEqual([leave.errorCode, leave.members[0]!.errorCode], [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID], 'LeaveGroup of an unknown member')

  // The group did not notice.
  const { groups } = await raw.request(DescribeGroups, 5, { groups: [groupId], includeAuthorizedOperations: false })
  assert.equal(groups[0]!.groupState, 'Stable')
  assert.deepEqual(groups[0]!.members.map((m) => m.memberId).sort(), stable.members.map((m) => m.memberId).sort())
  assert.equal((await currentGeneration(groupId, memberA!)).generationId, generationId, 'no rebalance')
  assert.deepEqual(await committedOffsets(groupId, topic), committedBefore, 'refused commits stored nothing')
  await producer.send({ topic, acks: -1, messages: Array.from({ length: 20 }, (_, i) => ({ value: `after-${i}` })) })
  await waitFor(() => received.size === 40, { timeoutMs: 20_000, what: 'records produced after the bad requests' })
  assert.deepEqual(joins, joinsBefore, 'the consumers never had to rejoin')
})

/** The generation, learned the way a member would: a heartbeat answered NONE carries no number,
 * so ask with candidate generations (DescribeGroups does not report it in these versions). */
async function currentGeneration(groupId: string, memberId: string): Promise<{ generationId: number }> {
  for (let generationId = 1; generationId < 100; generationId++) {
    const hb = await raw.request(Heartbeat, 4, { groupId, generationId, memberId, groupInstanceId: null })
    if (hb.errorCode === ErrorCode.NONE) return { generationId }
  }
  throw new Error('no generation answered')
}

async function committedOffsets(groupId: string, topic: string): Promise<bigint[]> {
  const fetched = await raw.request(OffsetFetch, 8, { groups: [{ groupId, topics: [{ name: topic, partitionIndexes: [0, 1] }] }], requireStable: false })
  return fetched.groups[0]!.topics[0]!.partitions.map((p) => p.committedOffset)
}
