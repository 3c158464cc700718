// ListOffsets (key 2), versions 1-5. -2 = earliest (log start offset), -1 = latest (high
// watermark, which is also the last stable offset: no transactions yet). A timestamp returns the
// first record at or after it, found by opening the one batch that holds it (see
// PartitionLog.offsetForTimestamp).
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, ListOffsets } from '../../protocol/apis/list-offsets.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { kafkaErrorFor } from '../error-mapping.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function listOffsetsHandler(broker: BrokerServices) {
  return defineHandler(ListOffsets, async (req, ctx) => ({
    throttleTimeMs: 0,
    topics: await Promise.all(
      req.topics.map(async (topic) => ({
        name: topic.name,
        partitions: await Promise.all(
          topic.partitions.map(async ({ partitionIndex, timestamp }) => {
            const log = broker.topics.partition(topic.name, partitionIndex)
            const answer = (errorCode: number, offset = -1n, ts = -1n) => ({
              partitionIndex,
              errorCode,
              timestamp: ts,
              offset,
              leaderEpoch: errorCode === ErrorCode.NONE && ctx.apiVersion >= 4 ? 0 : -1, // v4+ only, not ignorable
            })
            if (!log) return answer(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            if (timestamp === EARLIEST_TIMESTAMP) return answer(ErrorCode.NONE, log.logStartOffset)
            if (timestamp === LATEST_TIMESTAMP) return answer(ErrorCode.NONE, log.highWatermark)
            if (timestamp < 0n) return answer(ErrorCode.UNSUPPORTED_VERSION)
            try {
              const found = await log.offsetForTimestamp(timestamp)
              return found ? answer(ErrorCode.NONE, found.offset, found.timestampMs) : answer(ErrorCode.NONE)
            } catch (err) {
              return answer(kafkaErrorFor(err, ctx.logger, { topic: topic.name, partition: partitionIndex }))
            }
          }),
        ),
      })),
    ),
  }))
}
