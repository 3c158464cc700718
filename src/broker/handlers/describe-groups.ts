// DescribeGroups (key 15), versions 0-5. An unknown group is described as "Dead" with no error,
// as Kafka does in these versions. Member metadata and assignments are filled only while the
// group is Stable. Client hosts are "/<address>" as Kafka prints them. Deviation: authorized
// operations are never computed (no ACLs), whatever the request asks for.
import { DescribeGroups } from '../../protocol/apis/describe-groups.ts'
import { defineHandler, type BrokerServices } from '../handler.ts'

export function describeGroupsHandler(broker: BrokerServices) {
  return defineHandler(DescribeGroups, (req) => ({
    throttleTimeMs: 0,
    groups: req.groups.map((groupId) => broker.groups.describeGroup(groupId)),
  }))
}
