// DeleteTopics (key 20), versions 1-6. v1-5 name topics; v6 names them or gives their ids.
// Deletion is durable before the answer; a deleted name can be created again, empty.
import { DeleteTopics } from '../../protocol/apis/delete-topics.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { kafkaErrorFor, messageOf } from '../error-mapping.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

const ZERO_UUID = '00000000-0000-0000-0000-000000000000'

export function deleteTopicsHandler(broker: BrokerServices) {
  return defineHandler(DeleteTopics, async (req, ctx) => {
    const targets =
      ctx.apiVersion >= 6
        ? req.topics.map((t) => ({ name: t.name, topicId: t.topicId }))
        : req.topicNames.map((name) => ({ name, topicId: ZERO_UUID }))
    const responses = []
    for (const target of targets) {
      const byId = target.topicId !== ZERO_UUID
      const info = byId
        ? broker.topics.listTopics().find((t) => t.topicId === target.topicId)
        : target.name === null
          ? undefined
          : broker.topics.getTopic(target.name)
      const base = { name: info?.name ?? target.name, topicId: info?.topicId ?? target.topicId }
      if (!info) {
        responses.push({
          ...base,
          errorCode: byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          errorMessage: 'no such topic',
        })
        continue
      }
      try {
        await broker.topics.deleteTopic(info.name)
        ctx.logger.info('deleted topic', { topic: info.name })
        responses.push({ ...base, errorCode: ErrorCode.NONE, errorMessage: null })
      } catch (err) {
        responses.push({ ...base, errorCode: kafkaErrorFor(err, ctx.logger, { topic: info.name }), errorMessage: messageOf(err) })
      }
    }
    return { throttleTimeMs: 0, responses }
  })
}
