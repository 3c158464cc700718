// Fetch (key 1). Served 4-12 (v12 flexible). v4 added isolation level, last stable offset and
// aborted transactions; v5 log start offset; v7 fetch sessions (we always answer session 0,
// "no session", which every client accepts); v11 rack id and preferred read replica (must be -1
// or librdkafka drops the data); v13 would switch to topic IDs, so we stop at 12.
import { api, array, int16, int32, int64, int8, records, string, struct } from '../schema.ts'

const FetchPartition = struct({
  partition: int32,
  currentLeaderEpoch: int32.since(9).default(-1).ignorable(),
  fetchOffset: int64,
  lastFetchedEpoch: int32.since(12).default(-1),
  logStartOffset: int64.since(5).default(-1n).ignorable(),
  partitionMaxBytes: int32,
})

const ForgottenTopic = struct({ topic: string, partitions: array(int32) })

const EpochEndOffset = struct({ epoch: int32.default(-1), endOffset: int64.default(-1n) })
const LeaderIdAndEpoch = struct({ leaderId: int32.default(-1), leaderEpoch: int32.default(-1) })
const SnapshotId = struct({ endOffset: int64.default(-1n), epoch: int32.default(-1) })
const AbortedTransaction = struct({ producerId: int64, firstOffset: int64 })

const PartitionData = struct({
  partitionIndex: int32,
  errorCode: int16,
  highWatermark: int64,
  lastStableOffset: int64.since(4).default(-1n).ignorable(),
  logStartOffset: int64.since(5).default(-1n).ignorable(),
  divergingEpoch: EpochEndOffset.since(12).tag(0),
  currentLeader: LeaderIdAndEpoch.since(12).tag(1),
  snapshotId: SnapshotId.since(12).tag(2),
  abortedTransactions: array(AbortedTransaction).since(4).nullable(4).ignorable(),
  preferredReadReplica: int32.since(11).default(-1),
  records,
})

export const Fetch = api({
  key: 1,
  name: 'Fetch',
  versions: [4, 12],
  flexibleFrom: 12,
  request: struct({
    clusterId: string.since(12).nullable(12).tag(0).default(null).ignorable(),
    replicaId: int32.default(-1),
    maxWaitMs: int32,
    minBytes: int32,
    maxBytes: int32.since(3).default(0x7fffffff).ignorable(),
    /** 0 read_uncommitted, 1 read_committed. */
    isolationLevel: int8.since(4).default(0).ignorable(),
    sessionId: int32.since(7).default(0).ignorable(),
    sessionEpoch: int32.since(7).default(-1).ignorable(),
    topics: array(struct({ topic: string, partitions: array(FetchPartition) })),
    forgottenTopicsData: array(ForgottenTopic).since(7),
    rackId: string.since(11).default('').ignorable(),
  }),
  response: struct({
    throttleTimeMs: int32.since(1).ignorable(),
    errorCode: int16.since(7).ignorable(),
    sessionId: int32.since(7).default(0),
    responses: array(struct({ topic: string, partitions: array(PartitionData) })),
  }),
})
