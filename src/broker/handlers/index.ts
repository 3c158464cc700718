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
import { findCoordinatorHandler } from './find-coordinator.ts'
import { joinGroupHandler } from './join-group.ts'
import { syncGroupHandler } from './sync-group.ts'
import { heartbeatHandler } from './heartbeat.ts'
import { leaveGroupHandler } from './leave-group.ts'
import { offsetCommitHandler } from './offset-commit.ts'
import { offsetFetchHandler } from './offset-fetch.ts'
import { listGroupsHandler } from './list-groups.ts'
import { describeGroupsHandler } from './describe-groups.ts'
import { deleteGroupsHandler } from './delete-groups.ts'
import { offsetDeleteHandler } from './offset-delete.ts'
import { initProducerIdHandler } from './init-producer-id.ts'
import { alterConfigsHandler, incrementalAlterConfigsHandler } from './alter-configs.ts'
import { deleteRecordsHandler } from './delete-records.ts'
import {
  describeClusterHandler,
  describeLogDirsHandler,
  describeProducersHandler,
  electLeadersHandler,
  offsetForLeaderEpochHandler,
} from './cluster-admin.ts'

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
    findCoordinatorHandler(broker),
    joinGroupHandler(broker),
    syncGroupHandler(broker),
    heartbeatHandler(broker),
    leaveGroupHandler(broker),
    offsetCommitHandler(broker),
    offsetFetchHandler(broker),
    listGroupsHandler(broker),
    describeGroupsHandler(broker),
    deleteGroupsHandler(broker),
    offsetDeleteHandler(broker),
    initProducerIdHandler(broker),
    deleteRecordsHandler(broker),
    offsetForLeaderEpochHandler(broker),
    alterConfigsHandler(broker),
    describeLogDirsHandler(broker),
    electLeadersHandler(broker),
    incrementalAlterConfigsHandler(broker),
    describeClusterHandler(broker),
    describeProducersHandler(broker),
  ] as unknown as HandlerEntry[]
  return new Map(entries.map((e) => [e.api.key, e]))
}
