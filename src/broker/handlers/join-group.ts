// JoinGroup (key 11), versions 0-6. The answer waits until the rebalance's join phase ends
// (src/broker/groups/coordinator.ts); a closed connection or a broker shutdown releases the wait
// through the request's signal. v0 has no rebalance timeout: the session timeout stands in for
// it, as in Kafka. v4+ dynamic members take the MEMBER_ID_REQUIRED round trip (KIP-394).
import { JoinGroup } from '../../protocol/apis/join-group.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function joinGroupHandler(broker: BrokerServices) {
  return defineHandler(JoinGroup, async (req, ctx) => {
    const result = await broker.groups.join(
      {
        groupId: req.groupId,
        memberId: req.memberId,
        groupInstanceId: req.groupInstanceId,
        clientId: ctx.clientId ?? '',
        clientHost: ctx.clientHost,
        sessionTimeoutMs: req.sessionTimeoutMs,
        rebalanceTimeoutMs: ctx.apiVersion === 0 || req.rebalanceTimeoutMs < 0 ? req.sessionTimeoutMs : req.rebalanceTimeoutMs,
        protocolType: req.protocolType,
        protocols: req.protocols,
        requireKnownMemberId: ctx.apiVersion >= 4 && req.groupInstanceId === null,
      },
      ctx.signal,
    )
    return { throttleTimeMs: 0, ...result, members: [...result.members] }
  })
}
