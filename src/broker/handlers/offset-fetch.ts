// OffsetFetch (key 9), versions 1-8. Offset -1 (metadata "") where nothing is committed. v1 has
// no top-level error code, so a coordinator error is repeated on every requested partition;
// v2-7 report it once; v8 answers per group. require_stable (v7+) needs no waiting: there are
// no pending transactional offsets.
//
// pubsub topics: a group asking for a partition it has no offset on is subscribing, and starts
// at the end. The broker commits the partition's high watermark for it before answering, so the
// client never applies its own reset policy, and a consumer restarted before its first commit
// resumes from where the subscription began rather than from the then-current end.
import { OffsetFetch } from '../../protocol/apis/offset-fetch.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import type { FetchOffsetsResult } from '../groups/coordinator.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function offsetFetchHandler(broker: BrokerServices) {
  return defineHandler(OffsetFetch, async (req, ctx) => {
    if (ctx.apiVersion >= 8) {
      return {
        throttleTimeMs: 0,
        groups: await Promise.all(
          req.groups.map(async (g) => {
            const result = await fetchWithSubscriptions(broker, g.groupId, g.topics)
            return { groupId: g.groupId, topics: result.topics, errorCode: result.errorCode }
          }),
        ),
      }
    }
    const result = await fetchWithSubscriptions(broker, req.groupId, req.topics)
    if (result.errorCode !== ErrorCode.NONE && ctx.apiVersion === 1) {
      return {
        topics: (req.topics ?? []).map((t) => ({
          name: t.name,
          partitions: t.partitionIndexes.map((partitionIndex) => ({
            partitionIndex,
            committedOffset: -1n,
            metadata: '',
            errorCode: result.errorCode,
          })),
        })),
      }
    }
    return { throttleTimeMs: 0, topics: result.topics, errorCode: result.errorCode }
  })
}

async function fetchWithSubscriptions(
  broker: BrokerServices,
  groupId: string,
  topics: readonly { name: string; partitionIndexes: readonly number[] }[] | null,
): Promise<FetchOffsetsResult> {
  const result = broker.groups.fetchOffsets(groupId, topics)
  if (result.errorCode !== ErrorCode.NONE) return result
  const starts: { topic: string; partition: number; offset: bigint; answer: { committedOffset: bigint } }[] = []
  for (const t of result.topics) {
    if (broker.topics.getTopic(t.name)?.configs['tideway.topic.kind'] !== 'pubsub') continue
    for (const p of t.partitions) {
      const log = broker.topics.partition(t.name, p.partitionIndex)
      if (p.committedOffset < 0n && log) starts.push({ topic: t.name, partition: p.partitionIndex, offset: log.highWatermark, answer: p })
    }
  }
  if (starts.length === 0) return result
  try {
    const seeded = await broker.groups.seedOffsets(groupId, starts)
    starts.forEach((s, i) => (s.answer.committedOffset = seeded[i]!))
  } catch {
    // The offset log failed (it logs that itself): clients retry COORDINATOR_NOT_AVAILABLE.
    return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, topics: [] }
  }
  return result
}
