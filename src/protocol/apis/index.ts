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

export { ApiVersions, CreatePartitions, CreateTopics, DeleteTopics, DescribeConfigs, Fetch, ListOffsets, Metadata, Produce }

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
] as unknown as readonly Api[]

export function apiByKey(key: number): Api | undefined {
  return allApis.find((a) => a.key === key)
}
