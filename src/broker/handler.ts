// What every API handler sees. A handler takes the decoded request and returns the response
// value (or NO_RESPONSE for acks=0 produce); it reports failures as per-partition error codes
// and never throws for a condition it understands. Anything it throws is our bug: the
// connection logs it at error level and closes, and the client retries on a new connection.

import type { Clock } from '../clock.ts'
import type { Logger } from '../logger.ts'
import type { Api, RequestOf, ResponseInput } from '../protocol/schema.ts'
import type { TopicStore } from '../storage/topic-store.ts'
import type { BrokerConfig } from './config.ts'
import type { GroupCoordinator } from './groups/coordinator.ts'
import type { BrokerMetrics } from './metrics/broker-metrics.ts'
import type { ProducerIdAllocator } from './producer-ids.ts'

export const NO_RESPONSE: unique symbol = Symbol('no response')

export interface RequestContext {
  readonly apiVersion: number
  readonly clientId: string | null
  /** The peer's address as Kafka reports it in DescribeGroups: "/127.0.0.1". */
  readonly clientHost: string
  readonly logger: Logger
  /** Aborted when the connection closes or the broker shuts down: long polls end early. */
  readonly signal: AbortSignal
}

/** Broker-wide services handlers are given (storage, config, identity). */
export interface BrokerServices {
  readonly config: BrokerConfig
  readonly clock: Clock
  readonly logger: Logger
  readonly clusterId: string
  /** The address clients are told to use in Metadata and FindCoordinator. */
  readonly advertised: { readonly host: string; readonly port: number }
  readonly topics: TopicStore
  /** Consumer groups and their committed offsets. */
  readonly groups: GroupCoordinator
  /** Hands out idempotent producers' ids, never the same twice (InitProducerId). */
  readonly producerIds: ProducerIdAllocator
  readonly handlers: ReadonlyMap<number, HandlerEntry>
  readonly metrics: BrokerMetrics
}

export interface HandlerEntry<A extends Api = Api> {
  readonly api: A
  handle(
    request: RequestOf<A>,
    ctx: RequestContext,
  ): Promise<ResponseInput<A> | typeof NO_RESPONSE> | ResponseInput<A> | typeof NO_RESPONSE
}

export function defineHandler<A extends Api>(
  api: A,
  handle: (request: RequestOf<A>, ctx: RequestContext) => Promise<ResponseInput<A> | typeof NO_RESPONSE> | ResponseInput<A> | typeof NO_RESPONSE,
): HandlerEntry<A> {
  return { api, handle }
}
