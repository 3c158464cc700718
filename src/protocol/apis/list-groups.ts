// ListGroups (key 16). Served 0-4 (v3 flexible); v4 filters by state and reports each group's
// state. librdkafka's legacy rd_kafka_list_groups always sends v0.
import { api, array, int16, int32, string, struct } from '../schema.ts'

export const ListGroups = api({
  key: 16,
  name: 'ListGroups',
  versions: [0, 4],
  flexibleFrom: 3,
  request: struct({
    /** State names to keep (case-insensitive); empty keeps every group. */
    statesFilter: array(string).since(4),
  }),
  response: struct({
    throttleTimeMs: int32.since(1).ignorable(),
    errorCode: int16,
    groups: array(
      struct({
        groupId: string,
        protocolType: string,
        groupState: string.since(4).ignorable(),
      }),
    ),
  }),
})
