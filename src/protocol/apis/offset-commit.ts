// OffsetCommit (key 8). Served 2-8 (v8 flexible). v2-4 carry a retention time, which we accept
// and ignore (committed offsets are kept until the group or the offsets are deleted); v6 added
// the leader epoch; v7 group.instance.id. A generation of -1 with no member id is a commit from
// outside group management (admin tools, kcat), allowed while the group has no members.
import { api, array, int16, int32, int64, string, struct } from '../schema.ts'

export const OffsetCommit = api({
  key: 8,
  name: 'OffsetCommit',
  versions: [2, 8],
  flexibleFrom: 8,
  request: struct({
    groupId: string,
    generationIdOrMemberEpoch: int32.default(-1),
    memberId: string,
    groupInstanceId: string.since(7).nullable(7).default(null),
    retentionTimeMs: int64.until(4).default(-1n).ignorable(),
    topics: array(
      struct({
        name: string,
        partitions: array(
          struct({
            partitionIndex: int32,
            /** The next offset to consume, by convention. */
            committedOffset: int64,
            committedLeaderEpoch: int32.since(6).default(-1).ignorable(),
            committedMetadata: string.nullable(),
          }),
        ),
      }),
    ),
  }),
  response: struct({
    throttleTimeMs: int32.since(3).ignorable(),
    topics: array(
      struct({
        name: string,
        partitions: array(struct({ partitionIndex: int32, errorCode: int16 })),
      }),
    ),
  }),
})
