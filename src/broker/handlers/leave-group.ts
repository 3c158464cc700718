// LeaveGroup (key 13), versions 0-4. Up to v2 one member leaves and its error is the answer's
// error; from v3 a batch, each member with its own error (by member id, or by group.instance.id
// for static members: a stale member id for the instance is FENCED_INSTANCE_ID). Leaving starts
// a rebalance at once.
import { LeaveGroup } from '../../protocol/apis/leave-group.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function leaveGroupHandler(broker: BrokerServices) {
  return defineHandler(LeaveGroup, (req, ctx) => {
    if (ctx.apiVersion <= 2) {
      const result = broker.groups.leave(req.groupId, [{ memberId: req.memberId, groupInstanceId: null }])
      return { throttleTimeMs: 0, errorCode: result.errorCode || (result.members[0]?.errorCode ?? 0) }
    }
    const result = broker.groups.leave(req.groupId, req.members)
    return { throttleTimeMs: 0, errorCode: result.errorCode, members: result.members }
  })
}
