// FindCoordinator (key 10). Served 0-4 (v3 flexible). v1 added the key type (0 group,
// 1 transaction); v4 asks for several keys at once and answers one coordinator per key
// (KIP-699), so the single-key fields exist only up to v3. librdkafka 2.0 enables group
// coordination only when v0 is inside our range, so the minimum stays at 0.
import { api, array, int16, int32, int8, string, struct } from '../schema.ts'

const Coordinator = struct({
  key: string,
  nodeId: int32,
  host: string,
  port: int32,
  errorCode: int16,
  errorMessage: string.nullable(4).default(null).ignorable().clipped(),
})

export const FindCoordinator = api({
  key: 10,
  name: 'FindCoordinator',
  versions: [0, 4],
  flexibleFrom: 3,
  request: struct({
    /** The group id or transactional id (v0-3). */
    key: string.until(3),
    /** 0: consumer group, 1: transactional id. */
    keyType: int8.since(1).default(0),
    /** v4+: every key to locate, all of the same key type. */
    coordinatorKeys: array(string).since(4),
  }),
  response: struct({
    throttleTimeMs: int32.since(1).ignorable(),
    errorCode: int16.until(3),
    errorMessage: string.since(1).until(3).nullable(1).ignorable().clipped(),
    nodeId: int32.until(3),
    host: string.until(3),
    port: int32.until(3),
    coordinators: array(Coordinator).since(4),
  }),
})
