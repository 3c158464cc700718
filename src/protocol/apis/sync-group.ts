// SyncGroup (key 14). Served 0-4 (v4 flexible). The leader sends every member's assignment, the
// others send none; all are answered with their own assignment once the leader's has arrived.
// v3 added group.instance.id; v5 (protocol type and name, checked by the broker) is not served.
import { api, array, bytes, int16, int32, string, struct } from '../schema.ts'

export const SyncGroup = api({
  key: 14,
  name: 'SyncGroup',
  versions: [0, 4],
  flexibleFrom: 4,
  request: struct({
    groupId: string,
    generationId: int32,
    memberId: string,
    groupInstanceId: string.since(3).nullable(3).default(null),
    /** Filled by the leader only. */
    assignments: array(struct({ memberId: string, assignment: bytes })),
  }),
  response: struct({
    throttleTimeMs: int32.since(1).ignorable(),
    errorCode: int16,
    assignment: bytes,
  }),
})
