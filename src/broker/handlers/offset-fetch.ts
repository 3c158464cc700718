// OffsetFetch (key 9), versions 1-8. Offset -1 (metadata "") where nothing is committed. v1 has
// no top-level error code, so a coordinator error is repeated on every requested partition;
// v2-7 report it once; v8 answers per group. require_stable (v7+) needs no waiting: there are
// no pending transactional offsets.
import { OffsetFetch } from '../../protocol/apis/offset-fetch.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function offsetFetchHandler(broker: BrokerServices) {
  return defineHandler(OffsetFetch, (req, ctx) => {
    if (ctx.apiVersion >= 8) {
      return {
        throttleTimeMs: 0,
        groups: req.groups.map((g) => {
          const result = broker.groups.fetchOffsets(g.groupId, g.topics)
          return { groupId: g.groupId, topics: result.topics, errorCode: result.errorCode }
        }),
      }
    }
    const result = broker.groups.fetchOffsets(req.groupId, req.topics)
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
