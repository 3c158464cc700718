// The SDK: producers and consumers with their delivery guarantee as one word, the retry policy,
// failure classes, dead letters and the store contract. Talks to any Kafka-protocol cluster
// through @platformatic/kafka; imports nothing of the broker.
export { consumerContract, DeliveryMode, IDEMPOTENCY_KEY_HEADER, producerContract } from './delivery.ts'
export { createConsumer, TidewayConsumer, type ConsumerOptions, type ConsumerStats, type Handler, type HandlerContext, type IncomingMessage, type Middleware } from './consumer.ts'
export { createProducer, TidewayProducer, type OutgoingMessage, type ProducerOptions, type SentMessage } from './producer.ts'
export { AttemptTimeout, classifyFailure, ExpectedFailure, FailureKind, PermanentFailure, TransientFailure, type Classifier } from './failures.ts'
export { backoffDelay, defaultRetryPolicy, RetriesExhausted, retryPolicy, withRetry, type RetryPolicy, type Scheduler } from './retry.ts'
export { deadLetterTopicOf, type DeadLetterOptions } from './dead-letter.ts'
export { CopyHeader } from './copies.ts'
export { retryTopicOf, type RetryTopicOptions } from './retry-topic.ts'
export type { Store, StoreTransaction, StoredOffset, OutboxMessage, OutboxRow } from './store.ts'
export { createOutboxRelay, enqueueEvent, OutboxRelay, type OutboxEvent, type OutboxRelayOptions } from './outbox.ts'
export { handleIdempotently, type IdempotentOutcome, type RequestIdentity, type ResponseCodec } from './idempotent-request.ts'
export { childContext, consumeChannel, formatTraceparent, parseTraceparent, TRACEPARENT_HEADER, type TraceContext } from './trace.ts'
export { defaultRetention, scheduleCleanup, type CleanupSchedule } from './cleanup.ts'
