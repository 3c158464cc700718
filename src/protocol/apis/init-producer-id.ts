// InitProducerId (key 22). Served 0-4 (v2+ flexible; v3 added the current producer id and epoch,
// KIP-360; v4 only changed which errors a client may retry). KafkaJS sends 0-1, librdkafka 2.0
// up to 4, @platformatic/kafka 3+. Hands an idempotent producer its producer id and epoch.
import { api, int16, int32, int64, string, struct } from '../schema.ts'

export const InitProducerId = api({
  key: 22,
  name: 'InitProducerId',
  versions: [0, 4],
  flexibleFrom: 2,
  request: struct({
    transactionalId: string.nullable(0),
    transactionTimeoutMs: int32,
    producerId: int64.since(3).default(-1n),
    producerEpoch: int16.since(3).default(-1),
  }),
  response: struct({
    throttleTimeMs: int32.ignorable(),
    errorCode: int16,
    producerId: int64.default(-1n),
    producerEpoch: int16,
  }),
})
