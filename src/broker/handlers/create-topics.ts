// CreateTopics (key 19), versions 2-7. Single node: the replication factor must be 1 or -1
// (default); a manual assignment may name only this broker. Configs are validated against the
// topic config table before anything is created; validateOnly runs every check and stops there.
import { CreateTopics } from '../../protocol/apis/create-topics.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { isTidewayError } from '../../errors.ts'
import { parseTopicConfig } from '../../storage/topic-config.ts'
import { MAX_PARTITIONS_PER_TOPIC } from '../../storage/topic-store.ts'
import { kafkaErrorFor, messageOf } from '../error-mapping.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'
import { describeTopicConfigs } from './describe-configs.ts'

export function createTopicsHandler(broker: BrokerServices) {
  return defineHandler(CreateTopics, async (req, ctx) => {
    const nodeId = broker.config.nodeId
    const topics = []
    for (const t of req.topics) {
      const failure = (errorCode: number, errorMessage: string) => ({ name: t.name, errorCode, errorMessage })
      if (req.topics.filter((other) => other.name === t.name).length > 1) {
        topics.push(failure(ErrorCode.INVALID_REQUEST, `topic ${t.name} appears more than once in the request`))
        continue
      }
      if (t.replicationFactor !== -1 && t.replicationFactor !== 1 && t.assignments.length === 0) {
        topics.push(
          failure(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${t.replicationFactor} > 1 needs more brokers; Tideway is single-node`),
        )
        continue
      }
      if (t.assignments.some((a) => a.brokerIds.length !== 1 || a.brokerIds[0] !== nodeId)) {
        topics.push(failure(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `assignments may only name broker ${nodeId}`))
        continue
      }
      const partitions =
        t.assignments.length > 0 ? t.assignments.length : t.numPartitions === -1 ? broker.config.defaultPartitions : t.numPartitions
      if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS_PER_TOPIC) {
        topics.push(failure(ErrorCode.INVALID_PARTITIONS, `partition count must be between 1 and ${MAX_PARTITIONS_PER_TOPIC}, got ${partitions}`))
        continue
      }
      const entries: Record<string, string> = {}
      for (const c of t.configs) if (c.value !== null) entries[c.name] = c.value
      try {
        parseTopicConfig(entries)
      } catch (err) {
        topics.push(failure(ErrorCode.INVALID_CONFIG, messageOf(err)))
        continue
      }
      if (broker.topics.getTopic(t.name)) {
        topics.push(failure(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${t.name} already exists`))
        continue
      }
      try {
        const info = req.validateOnly
          ? null
          : await broker.topics.createTopic(t.name, { partitions, configs: entries })
        if (info) ctx.logger.info('created topic', { topic: info.name, partitions: info.partitions })
        topics.push({
          name: t.name,
          topicId: info?.topicId,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          numPartitions: partitions,
          replicationFactor: 1,
          configs: describeTopicConfigs(entries, null, false).map((c) => ({
            name: c.name,
            value: c.value,
            readOnly: c.readOnly,
            configSource: c.configSource,
            isSensitive: false,
          })),
        })
      } catch (err) {
        if (isTidewayError(err, 'TIDEWAY_ERR_CONFIG')) {
          topics.push(failure(ErrorCode.INVALID_TOPIC_EXCEPTION, messageOf(err)))
        } else if (broker.topics.getTopic(t.name)) {
          topics.push(failure(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${t.name} already exists`))
        } else {
          topics.push(failure(kafkaErrorFor(err, ctx.logger, { topic: t.name }), messageOf(err)))
        }
      }
    }
    return { throttleTimeMs: 0, topics }
  })
}
