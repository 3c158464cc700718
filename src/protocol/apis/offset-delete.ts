// OffsetDelete (key 47). Served 0 only (Kafka has no other version; not flexible). Deletes a
// group's committed offsets for some partitions, refused per partition while a member of the
// group is subscribed to the topic (KIP-496).
import { api, array, int16, int32, string, struct } from '../schema.ts'

export const OffsetDelete = api({
  key: 47,
  name: 'OffsetDelete',
  versions: [0, 0],
  request: struct({
    groupId: string,
    topics: array(struct({ name: string, partitions: array(struct({ partitionIndex: int32 })) })),
  }),
  response: struct({
    errorCode: int16,
    throttleTimeMs: int32.ignorable(),
    topics: array(
      struct({
        name: string,
        partitions: array(struct({ partitionIndex: int32, errorCode: int16 })),
      }),
    ),
  }),
})
