// InitProducerId (key 22), versions 0-4. An idempotent producer (no transactional id) gets a
// fresh producer id with epoch 0, also when it asks again with its current id and epoch (v3+,
// KIP-360: a producer that lost track of its sequences starts over under a new id, as Kafka
// does for non-transactional producers). Transactions are not supported: a transactional id is
// refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients report at once rather than
// retry.
import { InitProducerId } from '../../protocol/apis/init-producer-id.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { kafkaErrorFor } from '../error-mapping.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function initProducerIdHandler(broker: BrokerServices) {
  return defineHandler(InitProducerId, async (req, ctx) => {
    const answer = (errorCode: number, producerId = -1n, producerEpoch = -1) => ({ throttleTimeMs: 0, errorCode, producerId, producerEpoch })
    if (req.transactionalId !== null) {
      ctx.logger.info('refused a transactional producer: transactions are not supported', { transactionalId: req.transactionalId })
      return answer(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    }
    try {
      return answer(ErrorCode.NONE, await broker.producerIds.next(), 0)
    } catch (err) {
      return answer(kafkaErrorFor(err, ctx.logger, { api: 'InitProducerId' }))
    }
  })
}
