// DescribeGroups (key 15). Served 0-5 (v5 flexible); v3 added authorized operations (we have no
// ACLs and answer "not requested"), v4 group.instance.id. librdkafka's legacy group listing
// always sends v0.
import { api, array, bool, bytes, int16, int32, string, struct } from '../schema.ts'

const DescribedMember = struct({
  memberId: string,
  groupInstanceId: string.since(4).nullable(4).default(null).ignorable(),
  clientId: string,
  clientHost: string,
  /** The member's metadata for the selected protocol (empty unless the group is Stable). */
  memberMetadata: bytes,
  memberAssignment: bytes,
})

export const DescribeGroups = api({
  key: 15,
  name: 'DescribeGroups',
  versions: [0, 5],
  flexibleFrom: 5,
  request: struct({
    groups: array(string),
    includeAuthorizedOperations: bool.since(3),
  }),
  response: struct({
    throttleTimeMs: int32.since(1).ignorable(),
    groups: array(
      struct({
        errorCode: int16,
        groupId: string,
        groupState: string,
        protocolType: string,
        /** The selected protocol's name while Stable, otherwise empty. */
        protocolData: string,
        members: array(DescribedMember),
        authorizedOperations: int32.since(3).default(-2147483648),
      }),
    ),
  }),
})
