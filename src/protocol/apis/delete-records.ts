// DeleteRecords (key 21, v2 flexible): moves each partition's log start offset up to the given
// offset (-1: the high watermark); the answer's low watermark is the new start.
import { api, array, int16, int32, int64, string, struct } from '../schema.ts'

export const DeleteRecords = api({
  key: 21,
  name: 'DeleteRecords',
  versions: [0, 2],
  flexibleFrom: 2,
  request: struct({
    topics: array(struct({ name: string, partitions: array(struct({ partitionIndex: int32, offset: int64 })) })),
    timeoutMs: int32,
  }),
  response: struct({
    throttleTimeMs: int32,
    topics: array(
      struct({
        name: string,
        partitions: array(struct({ partitionIndex: int32, lowWatermark: int64, errorCode: int16 })),
      }),
    ),
  }),
})
