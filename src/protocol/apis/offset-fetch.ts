// OffsetFetch (key 9). Served 1-8 (v6 flexible). v2 allows null topics ("all committed") and
// adds a top-level error code; v5 the leader epoch; v7 require_stable (we have no pending
// transactional offsets, so every offset is stable); v8 asks for several groups at once and
// moves everything into a per-group list. An offset of -1 means "nothing committed".
import { api, array, bool, int16, int32, int64, string, struct } from '../schema.ts'

const RequestTopic = struct({ name: string, partitionIndexes: array(int32) })

const ResponsePartition = struct({
  partitionIndex: int32,
  committedOffset: int64,
  committedLeaderEpoch: int32.since(5).default(-1).ignorable(),
  metadata: string.nullable(),
  errorCode: int16,
})

const GroupPartition = struct({
  partitionIndex: int32,
  committedOffset: int64,
  committedLeaderEpoch: int32.default(-1).ignorable(),
  metadata: string.nullable(),
  errorCode: int16,
})

export const OffsetFetch = api({
  key: 9,
  name: 'OffsetFetch',
  versions: [1, 8],
  flexibleFrom: 6,
  request: struct({
    groupId: string.until(7),
    /** null (v2+): every partition the group has committed. */
    topics: array(RequestTopic).until(7).nullable(2),
    groups: array(
      struct({
        groupId: string,
        topics: array(RequestTopic).nullable(8),
      }),
    ).since(8),
    requireStable: bool.since(7).default(false),
  }),
  response: struct({
    throttleTimeMs: int32.since(3).ignorable(),
    topics: array(struct({ name: string, partitions: array(ResponsePartition) })).until(7),
    errorCode: int16.since(2).until(7).default(0).ignorable(),
    groups: array(
      struct({
        groupId: string,
        topics: array(struct({ name: string, partitions: array(GroupPartition) })),
        errorCode: int16.default(0),
      }),
    ).since(8),
  }),
})
