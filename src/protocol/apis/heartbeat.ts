// Heartbeat (key 12). Served 0-4 (v4 flexible); v3 added group.instance.id. Keeps a member's
// session alive and is how a member learns of a rebalance (REBALANCE_IN_PROGRESS).
import { api, int16, int32, string, struct } from '../schema.ts'

export const Heartbeat = api({
  key: 12,
  name: 'Heartbeat',
  versions: [0, 4],
  flexibleFrom: 4,
  request: struct({
    groupId: string,
    generationId: int32,
    memberId: string,
    groupInstanceId: string.since(3).nullable(3).default(null),
  }),
  response: struct({
    throttleTimeMs: int32.since(1).ignorable(),
    errorCode: int16,
  }),
})
