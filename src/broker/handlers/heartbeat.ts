// Heartbeat (key 12), versions 0-4. Answers at once: NONE, or REBALANCE_IN_PROGRESS while the
// group is preparing a rebalance (the member's cue to rejoin), or the member/generation error.
import { Heartbeat } from '../../protocol/apis/heartbeat.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function heartbeatHandler(broker: BrokerServices) {
  return defineHandler(Heartbeat, (req) => ({
    throttleTimeMs: 0,
    errorCode: broker.groups.heartbeat({
      groupId: req.groupId,
      generationId: req.generationId,
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
    }),
  }))
}
