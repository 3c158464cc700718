// OffsetCommit (key 8), versions 2-8. Acknowledged only once the offsets are fsynced
// (src/broker/groups/offset-store.ts). Partitions of unknown topics get
// UNKNOWN_TOPIC_OR_PARTITION; the rest are validated against the group (generation -1 on a
// member-less group is an admin/kcat commit; otherwise member and generation must match) and
// stored. The v2-4 retention time is ignored: offsets live until deleted. If the offset log
// cannot be written, the answer is COORDINATOR_NOT_AVAILABLE (as Kafka answers a failed offsets
// append), which clients retry.
import { OffsetCommit } from '../../protocol/apis/offset-commit.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

const keyOf = (topic: string, partition: number) => `${partition}:${topic}`

export function offsetCommitHandler(broker: BrokerServices) {
  return defineHandler(OffsetCommit, async (req) => {
    const exists = (topic: string, partition: number) => {
      const info = broker.topics.getTopic(topic)
      return info !== undefined && partition >= 0 && partition < info.partitions
    }
    const known = req.topics
      .map((t) => ({ name: t.name, partitions: t.partitions.filter((p) => exists(t.name, p.partitionIndex)) }))
      .filter((t) => t.partitions.length > 0)
    const results = await broker.groups.commitOffsets({
      groupId: req.groupId,
      generationId: req.generationIdOrMemberEpoch,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
      topics: known,
    })
    const codes = new Map<string, number>()
    for (const t of results) for (const p of t.partitions) codes.set(keyOf(t.name, p.partitionIndex), p.errorCode)
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: codes.get(keyOf(t.name, p.partitionIndex)) ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        })),
      })),
    }
  })
}
