// Produce (key 0). Advertised 0-8, served 3-8: v0-2 (the pre-RecordBatch message formats) stay
// in the advertised range only because librdkafka < 2.11 disables gzip/snappy/lz4 unless
// Produce v0 is in range (KAFKA-18659); the handler answers them UNSUPPORTED_VERSION, as Kafka
// 4.0 does. v3 brought RecordBatch v2 and transactional_id, v7 zstd, v8 record errors.
import { api, array, int16, int32, int64, records, string, struct } from '../schema.ts'

const PartitionProduceData = struct({ index: int32, records })
const TopicProduceData = struct({ name: string, partitionData: array(PartitionProduceData) })

const BatchIndexAndErrorMessage = struct({
  batchIndex: int32,
  batchIndexErrorMessage: string.nullable().default(null).clipped(),
})

const PartitionProduceResponse = struct({
  index: int32,
  errorCode: int16,
  baseOffset: int64,
  logAppendTimeMs: int64.since(2).default(-1n).ignorable(),
  logStartOffset: int64.since(5).default(-1n).ignorable(),
  recordErrors: array(BatchIndexAndErrorMessage).since(8).ignorable(),
  errorMessage: string.since(8).nullable(8).default(null).ignorable().clipped(),
})

export const Produce = api({
  key: 0,
  name: 'Produce',
  versions: [0, 8],
  request: struct({
    transactionalId: string.since(3).nullable(3).default(null),
    /** 0: no response at all; 1: leader ack; -1: all in-sync replicas (here: fsynced). */
    acks: int16,
    timeoutMs: int32,
    topicData: array(TopicProduceData),
  }),
  response: struct({
    responses: array(struct({ name: string, partitionResponses: array(PartitionProduceResponse) })),
    throttleTimeMs: int32.since(1).ignorable(),
  }),
})
