// Admin APIs that ask about a cluster's shape. On one node each has one honest answer:
// - DescribeCluster: this broker, which is also the controller.
// - DescribeLogDirs: the data directory, each partition's bytes on disk, and the file system's
//   total and usable bytes (v4).
// - OffsetForLeaderEpoch: there is one leader epoch (0), so the end offset of epoch 0 is the high
//   watermark; a later epoch is unknown (-1, -1), and a client claiming a current epoch other
//   than 0 is told FENCED_LEADER_EPOCH (older) or UNKNOWN_LEADER_EPOCH (newer), as Kafka does.
// - ElectLeaders: every partition already has its only replica as leader: ELECTION_NOT_NEEDED
//   for each partition named; asked for all partitions, an empty list (Kafka leaves out the
//   partitions that needed nothing).
// - DescribeProducers: the idempotent producers each partition remembers (no transactions).
import { statfs } from 'node:fs/promises'
import { resolve } from 'node:path'
import { DescribeCluster, DescribeLogDirs, DescribeProducers, ElectLeaders, OffsetForLeaderEpoch } from '../../protocol/apis/cluster-admin.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { LEADER_EPOCH } from '../../storage/partition-log.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

/** Kafka's "authorized operations not requested" (INT32_MIN). */
const OPERATIONS_NOT_REQUESTED = -2147483648
/** Every cluster operation allowed, as a bit field (no ACLs here): ALTER(4) … IDEMPOTENT_WRITE(12). */
const ALL_CLUSTER_OPERATIONS = [4, 5, 7, 8, 9, 10, 11, 12].reduce((bits, op) => bits | (1 << op), 0)

export function describeClusterHandler(broker: BrokerServices) {
  return defineHandler(DescribeCluster, (req) => ({
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    endpointType: req.endpointType,
    clusterId: broker.clusterId,
    controllerId: broker.config.nodeId,
    brokers: [{ brokerId: broker.config.nodeId, host: broker.advertised.host, port: broker.advertised.port, rack: null }],
    clusterAuthorizedOperations: req.includeClusterAuthorizedOperations ? ALL_CLUSTER_OPERATIONS : OPERATIONS_NOT_REQUESTED,
  }))
}

export function describeLogDirsHandler(broker: BrokerServices) {
  return defineHandler(DescribeLogDirs, async (req) => {
    const wanted =
      req.topics ??
      broker.topics.listTopics().map((t) => ({ topic: t.name, partitions: Array.from({ length: t.partitions }, (_, i) => i) }))
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, results: [await describeDataDir(broker, wanted)] }
  })
}

/** The data directory with the given partitions, leaving out those that do not exist (as Kafka does). */
async function describeDataDir(broker: BrokerServices, wanted: readonly { topic: string; partitions: readonly number[] }[]) {
  let totalBytes = -1n
  let usableBytes = -1n
  try {
    const fs = await statfs(broker.config.dataDir, { bigint: true })
    totalBytes = fs.blocks * fs.bsize
    usableBytes = fs.bavail * fs.bsize
  } catch {
    // Sizes are informational; the partitions are still described.
  }
  return {
    errorCode: ErrorCode.NONE,
    logDir: resolve(broker.config.dataDir),
    topics: wanted.filter(({ topic }) => broker.topics.getTopic(topic)).map(({ topic, partitions }) => ({
      name: topic,
      partitions: partitions.flatMap((partitionIndex) => {
        const log = broker.topics.partition(topic, partitionIndex)
        return log ? [{ partitionIndex, partitionSize: BigInt(log.size()), offsetLag: 0n, isFutureKey: false }] : []
      }),
    })),
    totalBytes,
    usableBytes,
  }
}

export function offsetForLeaderEpochHandler(broker: BrokerServices) {
  return defineHandler(OffsetForLeaderEpoch, (req) => ({
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map(({ partition, currentLeaderEpoch, leaderEpoch }) => {
        const answer = (errorCode: number, epoch = -1, endOffset = -1n) => ({ errorCode, partition, leaderEpoch: epoch, endOffset })
        const log = broker.topics.partition(t.topic, partition)
        if (!log) return answer(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        if (currentLeaderEpoch >= 0 && currentLeaderEpoch < LEADER_EPOCH) return answer(ErrorCode.FENCED_LEADER_EPOCH)
        if (currentLeaderEpoch > LEADER_EPOCH) return answer(ErrorCode.UNKNOWN_LEADER_EPOCH)
        if (leaderEpoch > LEADER_EPOCH) return answer(ErrorCode.NONE)
        return answer(ErrorCode.NONE, LEADER_EPOCH, log.highWatermark)
      }),
    })),
  }))
}

export function electLeadersHandler(broker: BrokerServices) {
  return defineHandler(ElectLeaders, (req) => ({
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    replicaElectionResults: (req.topicPartitions ?? []).map((t) => ({
      topic: t.topic,
      partitionResult: t.partitions.map((partitionId) =>
        broker.topics.partition(t.topic, partitionId)
          ? { partitionId, errorCode: ErrorCode.ELECTION_NOT_NEEDED, errorMessage: 'the only replica is already the leader' }
          : { partitionId, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `unknown topic-partition ${t.topic}-${partitionId}` },
      ),
    })),
  }))
}

export function describeProducersHandler(broker: BrokerServices) {
  return defineHandler(DescribeProducers, (req) => ({
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((partitionIndex) => {
        const log = broker.topics.partition(t.name, partitionIndex)
        if (!log) {
          return { partitionIndex, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `unknown topic-partition ${t.name}-${partitionIndex}`, activeProducers: [] }
        }
        return {
          partitionIndex,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          activeProducers: log.activeProducers().map((p) => ({
            producerId: p.producerId,
            producerEpoch: p.epoch,
            lastSequence: p.lastSequence,
            lastTimestamp: BigInt(p.lastWriteMs),
            coordinatorEpoch: -1,
            currentTxnStartOffset: -1n,
          })),
        }
      }),
    })),
  }))
}
