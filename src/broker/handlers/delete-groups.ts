// DeleteGroups (key 42), versions 0-2. Only a group without members can be deleted
// (NON_EMPTY_GROUP otherwise; GROUP_ID_NOT_FOUND for one we do not know); its committed offsets
// are deleted durably before the answer.
import { DeleteGroups } from '../../protocol/apis/delete-groups.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function deleteGroupsHandler(broker: BrokerServices) {
  return defineHandler(DeleteGroups, async (req) => ({
    throttleTimeMs: 0,
    results: await broker.groups.deleteGroups(req.groupsNames),
  }))
}
