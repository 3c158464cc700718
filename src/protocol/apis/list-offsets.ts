// ListOffsets (key 2). Served 1-5 (librdkafka 2.0 needs a minimum of at most 2; v6 would be
// flexible). Timestamp -2 asks for the earliest offset, -1 for the latest; a real timestamp for
// the first offset whose record timestamp is at or after it.
import { api, array, int16, int32, int64, int8, string, struct } from '../schema.ts'

const ListOffsetsPartition = struct({
  partitionIndex: int32,
  currentLeaderEpoch: int32.since(4).default(-1).ignorable(),
  timestamp: int64,
})

const ListOffsetsPartitionResponse = struct({
  partitionIndex: int32,
  errorCode: int16,
  timestamp: int64.since(1).default(-1n),
  offset: int64.since(1).default(-1n),
  leaderEpoch: int32.since(4).default(-1),
})

export const ListOffsets = api({
  key: 2,
  name: 'ListOffsets',
  versions: [1, 5],
  request: struct({
    replicaId: int32,
    isolationLevel: int8.since(2),
    topics: array(struct({ name: string, partitions: array(ListOffsetsPartition) })),
  }),
  response: struct({
    throttleTimeMs: int32.since(2).ignorable(),
    topics: array(struct({ name: string, partitions: array(ListOffsetsPartitionResponse) })),
  }),
})

export const EARLIEST_TIMESTAMP = -2n
export const LATEST_TIMESTAMP = -1n
