// CreatePartitions (key 37). Served 0-3 (v2 flexible). Partitions can only be added, never
// removed; `count` is the new total.
import { api, array, bool, int16, int32, string, struct } from '../schema.ts'

export const CreatePartitions = api({
  key: 37,
  name: 'CreatePartitions',
  versions: [0, 3],
  flexibleFrom: 2,
  request: struct({
    topics: array(
      struct({
        name: string,
        count: int32,
        assignments: array(struct({ brokerIds: array(int32) })).nullable(),
      }),
    ),
    timeoutMs: int32,
    validateOnly: bool,
  }),
  response: struct({
    throttleTimeMs: int32,
    results: array(struct({ name: string, errorCode: int16, errorMessage: string.nullable().default(null).clipped() })),
  }),
})
