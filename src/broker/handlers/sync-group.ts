// SyncGroup (key 14), versions 0-4. Followers wait until the leader's assignment arrives; the
// request's signal releases the wait when the connection closes or the broker stops.
import { SyncGroup } from '../../protocol/apis/sync-group.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function syncGroupHandler(broker: BrokerServices) {
  return defineHandler(SyncGroup, async (req, ctx) => {
    const result = await broker.groups.sync(
      {
        groupId: req.groupId,
        generationId: req.generationId,
        memberId: req.memberId,
        groupInstanceId: req.groupInstanceId,
        assignments: req.assignments,
      },
      ctx.signal,
    )
    return { throttleTimeMs: 0, errorCode: result.errorCode, assignment: result.assignment }
  })
}
