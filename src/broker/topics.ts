// Topic lookups shared by handlers: auto-creation with the races and name errors handled once.
import { isTidewayError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { ErrorCode } from '../protocol/error-codes.ts'
import type { TopicInfo } from '../storage/topic-store.ts'
import type { BrokerServices } from './handler.ts'

/**
 * Returns the topic, creating it with the broker's default partition count if it is missing.
 * Concurrent callers for the same new name share one creation.
 */
export async function ensureTopic(
  broker: BrokerServices,
  name: string,
  logger: Logger,
): Promise<TopicInfo | { errorCode: number }> {
  const existing = broker.topics.getTopic(name)
  if (existing) return existing
  let inFlight = creatingByStore.get(broker.topics)
  if (!inFlight) creatingByStore.set(broker.topics, (inFlight = new Map()))
  const creating = inFlight
  let pending = creating.get(name)
  if (!pending) {
    pending = broker.topics
      .createTopic(name, { partitions: broker.config.defaultPartitions, configs: {} })
      .then((topic) => {
        logger.info('auto-created topic', { topic: name, partitions: topic.partitions })
        return topic
      })
      .finally(() => creating.delete(name))
    creating.set(name, pending)
  }
  try {
    return await pending
  } catch (err) {
    const raced = broker.topics.getTopic(name)
    if (raced) return raced
    if (isTidewayError(err, 'TIDEWAY_ERR_CONFIG')) return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION }
    logger.error('auto-creating a topic failed', { topic: name, err })
    return { errorCode: ErrorCode.KAFKA_STORAGE_ERROR }
  }
}

/** Creations in flight, per topic store (several brokers may share a process). */
const creatingByStore = new WeakMap<object, Map<string, Promise<TopicInfo>>>()
