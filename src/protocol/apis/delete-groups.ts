// DeleteGroups (key 42). Served 0-2 (v2 flexible). A group can be deleted only while it has no
// members; its committed offsets go with it.
import { api, array, int16, int32, string, struct } from '../schema.ts'

export const DeleteGroups = api({
  key: 42,
  name: 'DeleteGroups',
  versions: [0, 2],
  flexibleFrom: 2,
  request: struct({
    groupsNames: array(string),
  }),
  response: struct({
    throttleTimeMs: int32,
    results: array(struct({ groupId: string, errorCode: int16 })),
  }),
})
