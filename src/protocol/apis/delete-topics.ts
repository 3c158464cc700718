// DeleteTopics (key 20). Served 1-6 (v4 flexible). Up to v5 topics are a list of names; v6 sends
// (name, topic id) pairs where either may identify the topic.
import { api, array, int16, int32, string, struct, uuid } from '../schema.ts'

export const DeleteTopics = api({
  key: 20,
  name: 'DeleteTopics',
  versions: [1, 6],
  flexibleFrom: 4,
  request: struct({
    topics: array(struct({ name: string.nullable().default(null), topicId: uuid })).since(6),
    topicNames: array(string).until(5).ignorable(),
    timeoutMs: int32,
  }),
  response: struct({
    throttleTimeMs: int32.since(1).ignorable(),
    responses: array(
      struct({
        name: string.nullable(6),
        topicId: uuid.since(6).ignorable(),
        errorCode: int16,
        errorMessage: string.since(5).nullable(5).default(null).ignorable().clipped(),
      }),
    ),
  }),
})
