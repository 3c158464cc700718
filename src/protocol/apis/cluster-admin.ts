// The cluster-shaped admin APIs, which on a single node have one obvious answer each:
// DescribeCluster (key 60: this broker, also the controller), DescribeLogDirs (key 35: the data
// directory and each partition's size), OffsetForLeaderEpoch (key 23: the end offset of the one
// leader epoch there is), ElectLeaders (key 43: every partition already has its only leader) and
// DescribeProducers (key 61: the idempotent producers each partition remembers).
import { api, array, bool, int16, int32, int64, int8, string, struct } from '../schema.ts'

export const DescribeCluster = api({
  key: 60,
  name: 'DescribeCluster',
  versions: [0, 1],
  flexibleFrom: 0,
  request: struct({
    includeClusterAuthorizedOperations: bool,
    endpointType: int8.since(1).default(1).ignorable(),
  }),
  response: struct({
    throttleTimeMs: int32,
    errorCode: int16,
    errorMessage: string.nullable().default(null).clipped(),
    endpointType: int8.since(1).default(1).ignorable(),
    clusterId: string,
    controllerId: int32,
    brokers: array(struct({ brokerId: int32, host: string, port: int32, rack: string.nullable().default(null) })),
    clusterAuthorizedOperations: int32,
  }),
})

export const DescribeLogDirs = api({
  key: 35,
  name: 'DescribeLogDirs',
  versions: [1, 4],
  flexibleFrom: 2,
  request: struct({
    topics: array(struct({ topic: string, partitions: array(int32) })).nullable(),
  }),
  response: struct({
    throttleTimeMs: int32,
    errorCode: int16.since(3).ignorable(),
    results: array(
      struct({
        errorCode: int16,
        logDir: string,
        topics: array(
          struct({
            name: string,
            partitions: array(struct({ partitionIndex: int32, partitionSize: int64, offsetLag: int64, isFutureKey: bool })),
          }),
        ),
        totalBytes: int64.since(4).default(-1n).ignorable(),
        usableBytes: int64.since(4).default(-1n).ignorable(),
      }),
    ),
  }),
})

export const OffsetForLeaderEpoch = api({
  key: 23,
  name: 'OffsetForLeaderEpoch',
  versions: [2, 4],
  flexibleFrom: 4,
  request: struct({
    replicaId: int32.since(3).default(-2).ignorable(),
    topics: array(
      struct({
        topic: string,
        partitions: array(struct({ partition: int32, currentLeaderEpoch: int32, leaderEpoch: int32 })),
      }),
    ),
  }),
  response: struct({
    throttleTimeMs: int32,
    topics: array(
      struct({
        topic: string,
        partitions: array(struct({ errorCode: int16, partition: int32, leaderEpoch: int32, endOffset: int64 })),
      }),
    ),
  }),
})

export const ElectLeaders = api({
  key: 43,
  name: 'ElectLeaders',
  versions: [0, 2],
  flexibleFrom: 2,
  request: struct({
    electionType: int8.since(1).default(0),
    topicPartitions: array(struct({ topic: string, partitions: array(int32) })).nullable(),
    timeoutMs: int32,
  }),
  response: struct({
    throttleTimeMs: int32,
    errorCode: int16.since(1),
    replicaElectionResults: array(
      struct({
        topic: string,
        partitionResult: array(struct({ partitionId: int32, errorCode: int16, errorMessage: string.nullable().clipped() })),
      }),
    ),
  }),
})

export const DescribeProducers = api({
  key: 61,
  name: 'DescribeProducers',
  versions: [0, 0],
  flexibleFrom: 0,
  request: struct({ topics: array(struct({ name: string, partitionIndexes: array(int32) })) }),
  response: struct({
    throttleTimeMs: int32,
    topics: array(
      struct({
        name: string,
        partitions: array(
          struct({
            partitionIndex: int32,
            errorCode: int16,
            errorMessage: string.nullable().default(null).clipped(),
            activeProducers: array(
              struct({
                producerId: int64,
                producerEpoch: int32,
                lastSequence: int32,
                lastTimestamp: int64,
                coordinatorEpoch: int32,
                currentTxnStartOffset: int64,
              }),
            ),
          }),
        ),
      }),
    ),
  }),
})
