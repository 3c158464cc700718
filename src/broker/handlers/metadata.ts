// Metadata (key 3), versions 1-9. One broker (ourselves) leads every partition with epoch 0.
// Auto-creation: a named topic that does not exist is created with the default partition count
// when the broker allows it (autoCreateTopics) and the request does too (v4+); the answer then
// already carries the new topic, so clients need no second round trip.
import { Metadata } from '../../protocol/apis/metadata.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import type { TopicInfo } from '../../storage/topic-store.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'
import { ensureTopic } from '../topics.ts'

export function metadataHandler(broker: BrokerServices) {
  return defineHandler(Metadata, async (req, ctx) => {
    const nodeId = broker.config.nodeId
    const describe = (topic: TopicInfo) => ({
      errorCode: ErrorCode.NONE,
      name: topic.name,
      isInternal: false,
      partitions: Array.from({ length: topic.partitions }, (_, index) => ({
        errorCode: ErrorCode.NONE,
        partitionIndex: index,
        leaderId: nodeId,
        leaderEpoch: 0,
        replicaNodes: [nodeId],
        isrNodes: [nodeId],
        offlineReplicas: [],
      })),
    })

    let topics
    if (req.topics === null) {
      topics = broker.topics.listTopics().map(describe)
    } else {
      const autoCreate = broker.config.autoCreateTopics && req.allowAutoTopicCreation
      topics = await Promise.all(
        req.topics.map(async ({ name }) => {
          const found = autoCreate ? await ensureTopic(broker, name, ctx.logger) : broker.topics.getTopic(name)
          if ('errorCode' in (found ?? {})) return { ...(found as { errorCode: number }), name, partitions: [] }
          if (!found) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, partitions: [] }
          return describe(found as TopicInfo)
        }),
      )
    }
    return {
      throttleTimeMs: 0,
      brokers: [{ nodeId, host: broker.advertised.host, port: broker.advertised.port, rack: null }],
      clusterId: broker.clusterId,
      controllerId: nodeId,
      topics,
    }
  })
}
