// CreateTopics (key 19). Served 2-7 (v5 flexible; v4 made partition count and replication
// factor optional (-1 = broker default); v5 returns the resulting configs; v7 the topic id).
import { api, array, bool, int16, int32, int8, string, struct, uuid } from '../schema.ts'

const CreatableTopicConfig = struct({ name: string, value: string.nullable() })
const CreatableReplicaAssignment = struct({ partitionIndex: int32, brokerIds: array(int32) })

const CreatableTopicConfigs = struct({
  name: string,
  value: string.nullable(),
  readOnly: bool,
  configSource: int8.default(-1).ignorable(),
  isSensitive: bool,
})

export const CreateTopics = api({
  key: 19,
  name: 'CreateTopics',
  versions: [2, 7],
  flexibleFrom: 5,
  request: struct({
    topics: array(
      struct({
        name: string,
        numPartitions: int32,
        replicationFactor: int16,
        assignments: array(CreatableReplicaAssignment),
        configs: array(CreatableTopicConfig),
      }),
    ),
    timeoutMs: int32.default(60000),
    validateOnly: bool.since(1).default(false),
  }),
  response: struct({
    throttleTimeMs: int32.since(2).ignorable(),
    topics: array(
      struct({
        name: string,
        topicId: uuid.since(7).ignorable(),
        errorCode: int16,
        errorMessage: string.since(1).nullable().default(null).ignorable().clipped(),
        topicConfigErrorCode: int16.since(5).tag(0).ignorable(),
        numPartitions: int32.since(5).default(-1).ignorable(),
        replicationFactor: int16.since(5).default(-1).ignorable(),
        configs: array(CreatableTopicConfigs).since(5).nullable(5).ignorable(),
      }),
    ),
  }),
})
