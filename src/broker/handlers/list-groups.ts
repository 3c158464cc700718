// ListGroups (key 16), versions 0-4. Every group the coordinator knows: ones with members and
// member-less ones that still have committed offsets. v4 filters by state (case-insensitive)
// and reports it. v0 must work: librdkafka's legacy rd_kafka_list_groups always sends it.
import { ListGroups } from '../../protocol/apis/list-groups.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function listGroupsHandler(broker: BrokerServices) {
  return defineHandler(ListGroups, (req) => {
    const result = broker.groups.listGroups(req.statesFilter)
    return { throttleTimeMs: 0, errorCode: result.errorCode, groups: result.groups }
  })
}
