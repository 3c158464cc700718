// CreatePartitions (key 37), versions 0-3. Partitions are only ever added; `count` is the new
// total. Existing partitions and their offsets are untouched (keys may map differently after).
import { CreatePartitions } from '../../protocol/apis/create-partitions.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { MAX_PARTITIONS_PER_TOPIC } from '../../storage/topic-store.ts'
import { kafkaErrorFor, messageOf } from '../error-mapping.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function createPartitionsHandler(broker: BrokerServices) {
  return defineHandler(CreatePartitions, async (req, ctx) => {
    const results = []
    for (const t of req.topics) {
      const info = broker.topics.getTopic(t.name)
      const fail = (errorCode: number, errorMessage: string) => results.push({ name: t.name, errorCode, errorMessage })
      if (!info) {
        fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${t.name} does not exist`)
        continue
      }
      if (t.count <= info.partitions) {
        fail(ErrorCode.INVALID_PARTITIONS, `topic ${t.name} has ${info.partitions} partitions; the new count must be larger, got ${t.count}`)
        continue
      }
      if (t.count > MAX_PARTITIONS_PER_TOPIC) {
        fail(ErrorCode.INVALID_PARTITIONS, `a topic may have at most ${MAX_PARTITIONS_PER_TOPIC} partitions, got ${t.count}`)
        continue
      }
      if (t.assignments && t.assignments.some((a) => a.brokerIds.some((id) => id !== broker.config.nodeId))) {
        fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `assignments may only name broker ${broker.config.nodeId}`)
        continue
      }
      if (req.validateOnly) {
        results.push({ name: t.name, errorCode: ErrorCode.NONE, errorMessage: null })
        continue
      }
      try {
        await broker.topics.addPartitions(t.name, t.count)
        ctx.logger.info('added partitions', { topic: t.name, partitions: t.count })
        results.push({ name: t.name, errorCode: ErrorCode.NONE, errorMessage: null })
      } catch (err) {
        fail(kafkaErrorFor(err, ctx.logger, { topic: t.name }), messageOf(err))
      }
    }
    return { throttleTimeMs: 0, results }
  })
}
