// DeleteRecords (key 21, 0-2): moves each partition's log start offset, durably, before the
// answer (storage: PartitionLog.deleteRecordsBefore). -1 means the high watermark; an offset past
// it is OFFSET_OUT_OF_RANGE, as in Kafka. A fetch below the new start is OFFSET_OUT_OF_RANGE too.
import { DeleteRecords } from '../../protocol/apis/delete-records.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { kafkaErrorFor } from '../error-mapping.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function deleteRecordsHandler(broker: BrokerServices) {
  return defineHandler(DeleteRecords, async (req, ctx) => ({
    throttleTimeMs: 0,
    topics: await Promise.all(
      req.topics.map(async (topic) => ({
        name: topic.name,
        partitions: await Promise.all(
          topic.partitions.map(async ({ partitionIndex, offset }) => {
            const log = broker.topics.partition(topic.name, partitionIndex)
            if (!log) return { partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }
            try {
              return { partitionIndex, lowWatermark: await log.deleteRecordsBefore(offset), errorCode: ErrorCode.NONE }
            } catch (err) {
              const errorCode = kafkaErrorFor(err, ctx.logger, { topic: topic.name, partition: partitionIndex })
              return { partitionIndex, lowWatermark: -1n, errorCode }
            }
          }),
        ),
      })),
    ),
  }))
}
