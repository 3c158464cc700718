// The table of served APIs. Adding an API means adding its handler here; ApiVersions advertises
// exactly this table.
import type { BrokerServices, HandlerEntry } from '../handler.ts'
import { apiVersionsHandler } from './api-versions.ts'
import { createPartitionsHandler } from './create-partitions.ts'
import { createTopicsHandler } from './create-topics.ts'
import { deleteTopicsHandler } from './delete-topics.ts'
import { describeConfigsHandler } from './describe-configs.ts'
import { fetchHandler } from './fetch.ts'
import { listOffsetsHandler } from './list-offsets.ts'
import { metadataHandler } from './metadata.ts'
import { produceHandler } from './produce.ts'

export function buildHandlers(broker: BrokerServices): Map<number, HandlerEntry> {
  const entries = [
    produceHandler(broker),
    fetchHandler(broker),
    listOffsetsHandler(broker),
    metadataHandler(broker),
    apiVersionsHandler(broker),
    createTopicsHandler(broker),
    deleteTopicsHandler(broker),
    describeConfigsHandler(broker),
    createPartitionsHandler(broker),
  ] as unknown as HandlerEntry[]
  return new Map(entries.map((e) => [e.api.key, e]))
}
