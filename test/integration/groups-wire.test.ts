// The group APIs at the versions no JavaScript client in our tests sends, checked on the wire:
// v0 of JoinGroup/SyncGroup/LeaveGroup (members added without MEMBER_ID_REQUIRED), v0 of
// ListGroups and DescribeGroups (librdkafka's legacy rd_kafka_list_groups sends only those),
// the batched FindCoordinator v4, and an admin-style commit (generation -1) read back with
// OffsetFetch v1 and v8, then surviving a broker restart.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import {
  CreateTopics,
  DeleteGroups,
  DescribeGroups,
  FindCoordinator,
  JoinGroup,
  LeaveGroup,
  ListGroups,
  OffsetCommit,
  OffsetFetch,
  SyncGroup,
} from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { restartableBroker, uniqueName } from '../helpers/embedded.ts'

const dir = tempDir()
const brokers = restartableBroker(dir.path, { groupInitialRebalanceDelayMs: 0 })
const start = brokers.start
after(async () => {
  await brokers.closeAll()
  dir.remove()
})

test('old and batched group API versions work on the wire, and committed offsets survive a restart', { timeout: 60_000 }, async () => {
  let { broker, client } = await start()
  const groupId = uniqueName('wire-group')
  const topic = uniqueName('wire-topic')

  const v4 = await client.request(FindCoordinator, 4, { keyType: 0, coordinatorKeys: [groupId, 'other'] })
  assert.deepEqual(
    v4.coordinators.map((c) => [c.key, c.nodeId, c.host, c.port, c.errorCode]),
    [groupId, 'other'].map((key) => [key, broker.config.nodeId, broker.host, broker.port, ErrorCode.NONE]),
  )
  const v0 = await client.request(FindCoordinator, 0, { key: groupId })
  assert.deepEqual([v0.errorCode, v0.host, v0.port], [ErrorCode.NONE, broker.host, broker.port])

  const join = await client.request(JoinGroup, 0, {
    groupId,
    sessionTimeoutMs: 10_000,
    memberId: '',
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from([0, 0, 0, 0, 0, 0]) }],
  })
  assert.equal(join.errorCode, ErrorCode.NONE, 'v0 adds the member directly')
  assert.equal(join.leader, join.memberId)
  const sync = await client.request(SyncGroup, 0, {
    groupId,
    generationId: join.generationId,
    memberId: join.memberId,
    assignments: [{ memberId: join.memberId, assignment: Buffer.from('assigned') }],
  })
  assert.deepEqual([sync.errorCode, sync.assignment.toString()], [ErrorCode.NONE, 'assigned'])

  const listed = await client.request(ListGroups, 0, {})
  assert.ok(listed.groups.some((g) => g.groupId === groupId && g.protocolType === 'consumer'))
  const described = await client.request(DescribeGroups, 0, { groups: [groupId] })
  const group = described.groups[0]!
  assert.deepEqual([group.errorCode, group.groupState, group.protocolData], [ErrorCode.NONE, 'Stable', 'range'])
  assert.equal(group.members[0]!.clientId, 'raw-client')
  assert.equal(group.members[0]!.clientHost, '/127.0.0.1', 'the peer address, printed as Kafka does')
  assert.equal(group.members[0]!.memberAssignment.toString(), 'assigned')

  const left = await client.request(LeaveGroup, 0, { groupId, memberId: join.memberId })
  assert.equal(left.errorCode, ErrorCode.NONE)
  const leftAgain = await client.request(LeaveGroup, 0, { groupId, memberId: join.memberId })
  assert.equal(leftAgain.errorCode, ErrorCode.UNKNOWN_MEMBER_ID, 'v0-2 carry the member\'s error at the top')

  const created = await client.request(CreateTopics, 2, { topics: [{ name: topic, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000 })
  assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE)
  const committed = await client.request(OffsetCommit, 2, {
    groupId,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    topics: [
      { name: topic, partitions: [{ partitionIndex: 1, committedOffset: 42n, committedMetadata: 'kept' }] },
      { name: 'no-such-topic', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: null }] },
    ],
  })
  assert.deepEqual(
    committed.topics.map((t) => t.partitions[0]!.errorCode),
    [ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
  )

  await broker.close()
  ;({ broker, client } = await start())

  const v1 = await client.request(OffsetFetch, 1, { groupId, topics: [{ name: topic, partitionIndexes: [0, 1] }] })
  assert.deepEqual(
    v1.topics[0]!.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.metadata, p.errorCode]),
    [
      [0, -1n, '', ErrorCode.NONE],
      [1, 42n, 'kept', ErrorCode.NONE],
    ],
  )
  const v8 = await client.request(OffsetFetch, 8, { groups: [{ groupId, topics: null }, { groupId: 'never-committed', topics: null }] })
  assert.deepEqual(
    v8.groups.map((g) => [g.groupId, g.errorCode, g.topics.flatMap((t) => t.partitions.map((p) => [t.name, p.partitionIndex, p.committedOffset]))]),
    [
      [groupId, ErrorCode.NONE, [[topic, 1, 42n]]],
      ['never-committed', ErrorCode.NONE, []],
    ],
  )

  const deleted = await client.request(DeleteGroups, 1, { groupsNames: [groupId] })
  assert.equal(deleted.results[0]!.errorCode, ErrorCode.NONE)
  const gone = await client.request(OffsetFetch, 1, { groupId, topics: [{ name: topic, partitionIndexes: [1] }] })
  assert.equal(gone.topics[0]!.partitions[0]!.committedOffset, -1n)
})
