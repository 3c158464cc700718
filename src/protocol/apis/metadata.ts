// Metadata (key 3). Served 1-8. Capped below v10 so topic IDs never become the way clients
// address topics (KIP-516); librdkafka 2.0 needs a minimum of at most 4. Capped below v9 too:
// @platformatic/kafka 2.x treats a Metadata answer of v9 or more as carrying topic ids (which
// arrive in v10) and, with none there, keys every topic by the same zero id, so a consumer of
// two topics fetches one of them twice and the other never; at v8 and below it keys topics by
// name. v9 (the first flexible version) adds nothing else.
import { api, array, bool, int16, int32, string, struct } from '../schema.ts'

const MetadataRequestTopic = struct({ name: string })

const Broker = struct({
  nodeId: int32,
  host: string,
  port: int32,
  rack: string.since(1).nullable(1).default(null).ignorable(),
})

const Partition = struct({
  errorCode: int16,
  partitionIndex: int32,
  leaderId: int32,
  leaderEpoch: int32.since(7).default(-1).ignorable(),
  replicaNodes: array(int32),
  isrNodes: array(int32),
  offlineReplicas: array(int32).since(5).ignorable(),
})

const Topic = struct({
  errorCode: int16,
  name: string,
  isInternal: bool.since(1).default(false).ignorable(),
  partitions: array(Partition),
  topicAuthorizedOperations: int32.since(8).default(-2147483648),
})

export const Metadata = api({
  key: 3,
  name: 'Metadata',
  versions: [1, 8],
  flexibleFrom: 9,
  request: struct({
    /** null: all topics (v1+); an empty array: no topics. */
    topics: array(MetadataRequestTopic).nullable(1),
    allowAutoTopicCreation: bool.since(4).default(true),
    includeClusterAuthorizedOperations: bool.since(8),
    includeTopicAuthorizedOperations: bool.since(8),
  }),
  response: struct({
    throttleTimeMs: int32.since(3).ignorable(),
    brokers: array(Broker),
    clusterId: string.since(2).nullable(2).default(null).ignorable(),
    controllerId: int32.since(1).default(-1).ignorable(),
    topics: array(Topic),
    clusterAuthorizedOperations: int32.since(8).default(-2147483648),
  }),
})
