// Shared set-up for the group coordinator's unit tests: a coordinator on a ManualClock with an
// in-memory offset store, predictable member ids, and small builders for requests.
import { setImmediate as turn } from 'node:timers/promises'
import { ManualClock } from '../../../src/clock.ts'
import {
  GroupCoordinator,
  type GroupCoordinatorOptions,
  type JoinProtocol,
  type JoinRequest,
  type JoinResult,
} from '../../../src/broker/groups/coordinator.ts'
import { MemoryOffsetStore } from '../../../src/broker/groups/offset-store.ts'

export const SESSION_MS = 10_000
export const REBALANCE_MS = 30_000

export async function coordinator(options: Partial<GroupCoordinatorOptions> = {}) {
  const clock = new ManualClock()
  const store = new MemoryOffsetStore()
  let ids = 0
  const groups = new GroupCoordinator({
    clock,
    store,
    initialRebalanceDelayMs: 0,
    newMemberId: (clientId) => `${clientId}-${++ids}`,
    ...options,
  })
  await groups.load()
  /** Moves time and runs whatever fell due. */
  const advance = (ms: number) => {
    clock.advance(ms)
    groups.tick()
  }
  return { clock, store, groups, advance }
}

/** ConsumerProtocolSubscription v0: version, topics, user data (null). */
export function subscription(...topics: string[]): Buffer {
  const parts = [Buffer.from([0, 0]), int32(topics.length)]
  for (const t of topics) {
    const name = Buffer.from(t, 'utf8')
    const len = Buffer.alloc(2)
    len.writeInt16BE(name.length)
    parts.push(len, name)
  }
  parts.push(int32(-1))
  return Buffer.concat(parts)
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}

export function protocols(...names: string[]): JoinProtocol[] {
  return names.map((name) => ({ name, metadata: subscription('orders') }))
}

export function joinRequest(overrides: Partial<JoinRequest> = {}): JoinRequest {
  return {
    groupId: 'g',
    memberId: '',
    groupInstanceId: null,
    clientId: 'c',
    sessionTimeoutMs: SESSION_MS,
    rebalanceTimeoutMs: REBALANCE_MS,
    protocolType: 'consumer',
    protocols: protocols('range'),
    requireKnownMemberId: false,
    ...overrides,
  }
}

/** A promise whose outcome can be inspected without awaiting it. */
export interface Tracked<T> {
  readonly promise: Promise<T>
  value: T | undefined
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked: Tracked<T> = { promise, value: undefined }
  promise.then((v) => {
    tracked.value = v
  })
  return tracked
}

/** Lets already-resolved promises run their callbacks (no time passes). */
export async function settle(): Promise<void> {
  await turn()
}

/** Joins one member (v4 style, with the MEMBER_ID_REQUIRED step) without waiting for the phase to end. */
export async function startJoin(groups: GroupCoordinator, overrides: Partial<JoinRequest> = {}): Promise<Tracked<JoinResult>> {
  const first = await groups.join(joinRequest({ requireKnownMemberId: true, ...overrides }))
  if (first.errorCode !== 79) return track(Promise.resolve(first))
  return track(groups.join(joinRequest({ requireKnownMemberId: true, ...overrides, memberId: first.memberId })))
}
