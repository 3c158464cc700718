// The pure parts of `tideway groups`: reset targets and how they meet a partition's offsets, lag
// per partition, and the tables.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseDuration as parseFlagDuration } from '../../../src/cli/args.ts'
import { UsageError } from '../../../src/cli/errors.ts'

const parseDuration = (text: string) => parseFlagDuration('--by-duration', text)
import {
  formatAssignment,
  formatGroupList,
  formatGroupView,
  formatResetTable,
  parseDateTime,
  parseResetTarget,
  partitionLags,
  planReset,
  totalLag,
  type MemberView,
} from '../../../src/cli/groups-plan.ts'

const NOW = Date.parse('2026-11-22T12:00:00Z')

test('each target flag becomes where to move the offsets', () => {
  assert.deepEqual(parseResetTarget({ 'to-earliest': true }, NOW), { kind: 'beginning' })
  assert.deepEqual(parseResetTarget({ 'to-latest': true }, NOW), { kind: 'end' })
  assert.deepEqual(parseResetTarget({ 'to-offset': '42' }, NOW), { kind: 'offset', offset: 42n })
  assert.deepEqual(parseResetTarget({ 'to-offset': '9223372036854775807' }, NOW), { kind: 'offset', offset: 2n ** 63n - 1n })
  assert.deepEqual(parseResetTarget({ 'to-datetime': '2026-11-22T10:00:00Z' }, NOW), {
    kind: 'timestamp',
    timestampMs: BigInt(Date.parse('2026-11-22T10:00:00Z')),
  })
  assert.deepEqual(parseResetTarget({ 'by-duration': '90m' }, NOW), { kind: 'timestamp', timestampMs: BigInt(NOW - 90 * 60_000) })
})

test('no target, two targets, or a bad value is a usage error', () => {
  assert.throws(() => parseResetTarget({}, NOW), { name: 'UsageError', message: /^say where to reset to: --to-earliest/ })
  assert.throws(() => parseResetTarget({ 'to-earliest': false }, NOW), UsageError)
  assert.throws(() => parseResetTarget({ 'to-earliest': true, 'to-offset': '3' }, NOW), {
    message: '--to-earliest and --to-offset cannot be combined; choose one',
  })
  for (const bad of ['', '-1', '1.5', '0x10', 'ten']) {
    assert.throws(() => parseResetTarget({ 'to-offset': bad }, NOW), { name: 'UsageError', message: /^--to-offset must be a whole number/ }, bad)
  }
})

test('a date-time is ISO 8601; without a zone it is local time, a bare date is local midnight', () => {
  assert.equal(parseDateTime('2026-11-22T10:00:00.250+01:00'), Date.parse('2026-11-22T09:00:00.250Z'))
  assert.equal(parseDateTime('2026-11-22T10:00:00'), new Date(2026, 10, 22, 10, 0, 0).getTime())
  assert.equal(parseDateTime('2026-11-22T10:00'), new Date(2026, 10, 22, 10, 0, 0).getTime())
  assert.equal(parseDateTime('2026-11-22'), new Date(2026, 10, 22).getTime())
  for (const bad of ['', 'yesterday', 'March 7', '1700000000000', '2026-13-45T00:00:00Z', '2026-11-22 10:00']) {
    assert.throws(() => parseDateTime(bad), { name: 'UsageError', message: /^--to-datetime takes an ISO 8601 date-time/ }, bad)
  }
})

test('a duration is compact (1h30m) or ISO 8601 (PT1H30M), and more than zero', () => {
  assert.equal(parseDuration('250ms'), 250)
  assert.equal(parseDuration('45s'), 45_000)
  assert.equal(parseDuration('15m'), 900_000)
  assert.equal(parseDuration('1h30m'), 5_400_000)
  assert.equal(parseDuration('2d'), 172_800_000)
  assert.equal(parseDuration('1m1ms'), 60_001)
  assert.equal(parseDuration('PT15M'), 900_000)
  assert.equal(parseDuration('P1DT2H'), 93_600_000)
  assert.equal(parseDuration('P2D'), 172_800_000)
  assert.equal(parseDuration('pt1.5s'), 1_500)
  for (const bad of ['', '0s', 'PT0S', 'P', 'PT', 'P1DT', '15', 'm', '1.5h', '10 minutes', '-5m', 'P1W']) {
    assert.throws(() => parseDuration(bad), { name: 'UsageError', message: /^--by-duration takes a duration/ }, bad)
  }
})

const partition = (p: number, earliest: bigint, latest: bigint, committed: bigint | null, atTimestamp?: bigint) => ({
  partition: p,
  earliest,
  latest,
  committed,
  ...(atTimestamp === undefined ? {} : { atTimestamp }),
})

test('earliest and latest move every partition to its log start and log end', () => {
  const partitions = [partition(0, 5n, 20n, 12n), partition(1, 0n, 0n, null)]
  assert.deepEqual(planReset({ kind: 'beginning' }, partitions), [
    { partition: 0, currentOffset: 12n, newOffset: 5n, note: null },
    { partition: 1, currentOffset: null, newOffset: 0n, note: null },
  ])
  assert.deepEqual(
    planReset({ kind: 'end' }, partitions).map((p) => p.newOffset),
    [20n, 0n],
  )
})

test('an offset outside [earliest, log end] is clamped, and the plan says which way', () => {
  const partitions = [partition(0, 5n, 20n, null)]
  assert.deepEqual(
    [2n, 12n, 20n, 99n].map((offset) => planReset({ kind: 'offset', offset }, partitions)[0]),
    [
      { partition: 0, currentOffset: null, newOffset: 5n, note: 'clamped: 2 is before the earliest offset 5' },
      { partition: 0, currentOffset: null, newOffset: 12n, note: null },
      { partition: 0, currentOffset: null, newOffset: 20n, note: null },
      { partition: 0, currentOffset: null, newOffset: 20n, note: 'clamped: 99 is past the log end offset 20' },
    ],
  )
})

test('a time moves to the offset ListOffsets found, or to the log end when no record is that new', () => {
  const target = { kind: 'timestamp', timestampMs: 1_000n } as const
  assert.deepEqual(planReset(target, [partition(0, 0n, 20n, 3n, 7n), partition(1, 0n, 20n, 3n, -1n), partition(2, 10n, 20n, null, 4n)]), [
    { partition: 0, currentOffset: 3n, newOffset: 7n, note: null },
    { partition: 1, currentOffset: 3n, newOffset: 20n, note: 'no record at or after that time: log end' },
    { partition: 2, currentOffset: null, newOffset: 10n, note: null },
  ])
})

test('the reset table aligns offsets right and has a NOTE column only when a partition has a note', () => {
  const plain = formatResetTable('orders', [
    { partition: 0, currentOffset: 12n, newOffset: 5n, note: null },
    { partition: 10, currentOffset: null, newOffset: 0n, note: null },
  ])
  assert.equal(plain, ['TOPIC   PARTITION  CURRENT  NEW', 'orders          0       12    5', 'orders         10        -    0', ''].join('\n'))
  const noted = formatResetTable('t', [
    { partition: 0, currentOffset: 1n, newOffset: 20n, note: 'clamped: 99 is past the log end offset 20' },
    { partition: 1, currentOffset: 1n, newOffset: 3n, note: null },
  ])
  assert.equal(
    noted,
    [
      'TOPIC  PARTITION  CURRENT  NEW  NOTE',
      't              0        1   20  clamped: 99 is past the log end offset 20',
      't              1        1    3',
      '',
    ].join('\n'),
  )
})

const alice: MemberView = {
  memberId: 'alice-1',
  groupInstanceId: 'alice',
  clientId: 'billing',
  clientHost: '/10.0.0.1',
  assignment: [{ topic: 'orders', partitions: [2, 0] }],
}
const bob: MemberView = {
  memberId: 'bob-1',
  groupInstanceId: null,
  clientId: 'billing',
  clientHost: '',
  assignment: [
    { topic: 'orders', partitions: [1] },
    { topic: 'payments', partitions: [0] },
  ],
}

const offsets = (entries: Record<string, Record<number, bigint>>) =>
  new Map(Object.entries(entries).map(([topic, partitions]) => [topic, new Map(Object.entries(partitions).map(([p, o]) => [Number(p), o]))]))

test('lag is log end minus committed, per partition committed or assigned, with its owner', () => {
  const rows = partitionLags(
    [alice, bob],
    offsets({ orders: { 0: 4n, 1: 10n }, gone: { 0: 7n } }),
    offsets({ orders: { 0: 10n, 1: 10n, 2: 3n }, payments: { 0: 5n } }),
  )
  assert.deepEqual(rows, [
    { topic: 'gone', partition: 0, committedOffset: 7n, logEndOffset: null, lag: null, memberId: null },
    { topic: 'orders', partition: 0, committedOffset: 4n, logEndOffset: 10n, lag: 6n, memberId: 'alice-1' },
    { topic: 'orders', partition: 1, committedOffset: 10n, logEndOffset: 10n, lag: 0n, memberId: 'bob-1' },
    { topic: 'orders', partition: 2, committedOffset: null, logEndOffset: 3n, lag: null, memberId: 'alice-1' },
    { topic: 'payments', partition: 0, committedOffset: null, logEndOffset: 5n, lag: null, memberId: 'bob-1' },
  ])
  assert.equal(totalLag(rows), 6n)
  assert.deepEqual(partitionLags([], new Map(), new Map()), [])
})

test('an assignment reads topic:partitions, sorted, or - when empty', () => {
  assert.equal(formatAssignment(alice.assignment), 'orders:0,2')
  assert.equal(formatAssignment(bob.assignment), 'orders:1 payments:0')
  assert.equal(formatAssignment([]), '-')
  assert.equal(formatAssignment([{ topic: 'orders', partitions: [] }]), '-')
})

test('a described group prints its fields, its members and its partitions', () => {
  const partitions = partitionLags([alice, bob], offsets({ orders: { 0: 4n } }), offsets({ orders: { 0: 10n, 1: 10n, 2: 3n }, payments: { 0: 5n } }))
  const text = formatGroupView({
    group: 'billing',
    state: 'Stable',
    protocolType: 'consumer',
    protocol: 'range',
    members: [alice, bob],
    partitions,
    totalLag: totalLag(partitions),
  })
  assert.equal(
    text,
    [
      'group     billing',
      'state     Stable',
      'protocol  consumer (range)',
      'members   2',
      'lag       6 (log end - committed, summed over partitions)',
      '',
      'MEMBER   INSTANCE  CLIENT ID  HOST       ASSIGNMENT',
      'alice-1  alice     billing    /10.0.0.1  orders:0,2',
      'bob-1    -         billing    -          orders:1 payments:0',
      '',
      'TOPIC     PARTITION  COMMITTED  LOG END  LAG  MEMBER',
      'orders            0          4       10    6  alice-1',
      'orders            1          -       10    -  bob-1',
      'orders            2          -        3    -  alice-1',
      'payments          0          -        5    -  bob-1',
      '',
    ].join('\n'),
  )
  const empty = formatGroupView({ group: 'g', state: 'Empty', protocolType: '', protocol: null, members: [], partitions: [], totalLag: 0n })
  assert.match(empty, /^protocol  -$/m)
  assert.match(empty, /^no active members$/m)
  assert.match(empty, /^no committed offsets and no assigned partitions$/m)
})

test('the group list is one line per group, or says there are none', () => {
  assert.equal(
    formatGroupList([
      { group: 'billing', state: 'Stable', protocolType: 'consumer', members: 2 },
      { group: 'imported', state: 'Empty', protocolType: '', members: 0 },
    ]),
    ['GROUP     STATE   PROTOCOL TYPE  MEMBERS', 'billing   Stable  consumer             2', 'imported  Empty   -                    0', ''].join('\n'),
  )
  assert.equal(formatGroupList([]), 'no groups\n')
})
