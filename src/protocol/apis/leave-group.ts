// LeaveGroup (key 13). Served 0-4 (v4 flexible). Up to v2 one member leaves and the answer has
// one error code; from v3 a batch of members (by member id and/or group.instance.id, KIP-345)
// with an error code each. v5 (a reason per member) is not served.
import { api, array, int16, int32, string, struct } from '../schema.ts'

export const LeaveGroup = api({
  key: 13,
  name: 'LeaveGroup',
  versions: [0, 4],
  flexibleFrom: 4,
  request: struct({
    groupId: string,
    memberId: string.until(2),
    members: array(struct({ memberId: string, groupInstanceId: string.nullable(3).default(null) })).since(3),
  }),
  response: struct({
    throttleTimeMs: int32.since(1).ignorable(),
    errorCode: int16,
    members: array(struct({ memberId: string, groupInstanceId: string.nullable(3), errorCode: int16 })).since(3),
  }),
})
