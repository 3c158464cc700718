// Every API description this broker serves, by key. ApiVersions answers from this table, so
// what we advertise cannot drift from what we can decode.
import type { Api } from '../schema.ts'
import { ApiVersions } from './api-versions.ts'
import { CreatePartitions } from './create-partitions.ts'
import { CreateTopics } from './create-topics.ts'
import { DeleteTopics } from './delete-topics.ts'
import { DescribeConfigs } from './describe-configs.ts'
import { Fetch } from './fetch.ts'
import { ListOffsets } from './list-offsets.ts'
import { Metadata } from './metadata.ts'
import { Produce } from './produce.ts'
import { FindCoordinator } from './find-coordinator.ts'
import { JoinGroup } from './join-group.ts'
import { SyncGroup } from './sync-group.ts'
import { Heartbeat } from './heartbeat.ts'
import { LeaveGroup } from './leave-group.ts'
import { OffsetCommit } from './offset-commit.ts'
import { OffsetFetch } from './offset-fetch.ts'
import { ListGroups } from './list-groups.ts'
import { DescribeGroups } from './describe-groups.ts'
import { DeleteGroups } from './delete-groups.ts'
import { OffsetDelete } from './offset-delete.ts'
import { InitProducerId } from './init-producer-id.ts'
import { AlterConfigs, IncrementalAlterConfigs } from './alter-configs.ts'
import { DeleteRecords } from './delete-records.ts'
import { DescribeCluster, DescribeLogDirs, DescribeProducers, ElectLeaders, OffsetForLeaderEpoch } from './cluster-admin.ts'

export { ApiVersions, CreatePartitions, CreateTopics, DeleteTopics, DescribeConfigs, Fetch, ListOffsets, Metadata, Produce }
export { AlterConfigs, IncrementalAlterConfigs, DeleteRecords, DescribeCluster, DescribeLogDirs, DescribeProducers, ElectLeaders, OffsetForLeaderEpoch }
export { FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete, InitProducerId }

export const allApis: readonly Api[] = [
  Produce,
  Fetch,
  ListOffsets,
  Metadata,
  ApiVersions,
  CreateTopics,
  DeleteTopics,
  DescribeConfigs,
  CreatePartitions,
  FindCoordinator,
  JoinGroup,
  SyncGroup,
  Heartbeat,
  LeaveGroup,
  OffsetCommit,
  OffsetFetch,
  ListGroups,
  DescribeGroups,
  DeleteGroups,
  OffsetDelete,
  InitProducerId,
  DeleteRecords,
  OffsetForLeaderEpoch,
  AlterConfigs,
  DescribeLogDirs,
  ElectLeaders,
  IncrementalAlterConfigs,
  DescribeCluster,
  DescribeProducers,
] as unknown as readonly Api[]

export function apiByKey(key: number): Api | undefined {
  return allApis.find((a) => a.key === key)
}
