// OffsetDelete (key 47), version 0. Deletes a group's committed offsets for the listed
// partitions, durably. While the group has members, partitions of topics a member subscribes to
// are refused with GROUP_SUBSCRIBED_TO_TOPIC (KIP-496); a group with members that is not a
// "consumer" group is refused as a whole (NON_EMPTY_GROUP), as Kafka does.
import { OffsetDelete } from '../../protocol/apis/offset-delete.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function offsetDeleteHandler(broker: BrokerServices) {
  return defineHandler(OffsetDelete, async (req) => {
    const result = await broker.groups.deleteOffsets(
      req.groupId,
      req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => p.partitionIndex) })),
    )
    return { errorCode: result.errorCode, throttleTimeMs: 0, topics: result.topics }
  })
}
