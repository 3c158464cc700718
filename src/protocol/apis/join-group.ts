// JoinGroup (key 11). Served 0-6 (v6 flexible). v1 added the rebalance timeout (v0 members use
// the session timeout for both); v4 made a dynamic member with no id take a second round trip
// (MEMBER_ID_REQUIRED, KIP-394); v5 added group.instance.id for static members (KIP-345). v7
// would add the protocol type to the response; we stop at 6.
import { api, array, bytes, int16, int32, string, struct } from '../schema.ts'

const JoinProtocol = struct({
  /** An assignor name, e.g. "range", "roundrobin", "RoundRobinAssigner". */
  name: string,
  /** Opaque to the broker (a consumer's subscription for protocol type "consumer"). */
  metadata: bytes,
})

const JoinedMember = struct({
  memberId: string,
  groupInstanceId: string.since(5).nullable(5).default(null).ignorable(),
  /** The member's metadata for the selected protocol. */
  metadata: bytes,
})

export const JoinGroup = api({
  key: 11,
  name: 'JoinGroup',
  versions: [0, 6],
  flexibleFrom: 6,
  request: struct({
    groupId: string,
    sessionTimeoutMs: int32,
    /** How long the coordinator waits for every member to rejoin (-1 in v0: session timeout). */
    rebalanceTimeoutMs: int32.since(1).default(-1).ignorable(),
    /** Empty on a member's first join. */
    memberId: string,
    groupInstanceId: string.since(5).nullable(5).default(null),
    protocolType: string,
    /** In the member's order of preference. */
    protocols: array(JoinProtocol),
  }),
  response: struct({
    throttleTimeMs: int32.since(2).ignorable(),
    errorCode: int16,
    generationId: int32.default(-1),
    protocolName: string,
    /** The leader's member id; the member whose id this is runs the assignment. */
    leader: string,
    memberId: string,
    /** Every member with its metadata for the leader, empty for the others. */
    members: array(JoinedMember),
  }),
})
