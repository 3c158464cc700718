// `tideway groups` against an embedded broker, run in process through `runWith` (the same entry
// the real CLI uses), with a real KafkaJS 2.2.4 consumer group as the subject. Committed offsets
// are checked independently, through KafkaJS's admin (OffsetFetch), never through the CLI itself.
//
// The tests run in order on one topic and one group: first with the consumer active (list,
// describe, the refusals), then after it has left (reset-offsets dry run and --execute, delete).
import assert from 'node:assert/strict'
import { PassThrough, Readable, Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { runWith } from '../../src/cli/client-commands.ts'
import { OutputSink } from '../../src/cli/output.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs

/** Records per partition; partition 2 stays empty. */
const RECORDS = [10, 6, 0]
/** What the consumer commits: partition 0 part way, partition 1 to its end, partition 2 nothing. */
const COMMITTED = new Map([
  [0, 4],
  [1, 6],
])
/** Record i of every partition has the timestamp BASE + i seconds. */
const BASE = Date.now() - 3_600_000

let broker: EmbeddedBroker
let kafka: kafkajs.Kafka
let admin: kafkajs.Admin
let consumer: kafkajs.Consumer | undefined
const topic = uniqueName('cli-groups')
const group = uniqueName('cli-groups')

interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** `tideway groups <args>` in process, with the broker in TIDEWAY_BOOTSTRAP. */
async function groups(...args: string[]): Promise<CliResult> {
  const stdout = new PassThrough()
  let out = ''
  stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  let err = ''
  const stderr = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      err += chunk.toString('utf8')
      callback()
    },
  })
  const code = await runWith('groups', args, {
    stdin: Readable.from([]),
    stdout: new OutputSink(stdout),
    stderr,
    env: { TIDEWAY_BOOTSTRAP: broker.bootstrap },
    stop: new AbortController().signal,
  })
  await new Promise((resolve) => setImmediate(resolve))
  return { code, stdout: out, stderr: err }
}

function assertOk(result: CliResult, what: string): void {
  assert.equal(result.code, 0, `${what} exited ${result.code}: ${result.stderr}`)
}

/** The group's committed offsets on the topic, by partition (-1: none), through KafkaJS. */
async function committed(): Promise<number[]> {
  const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  return RECORDS.map((_, partition) => Number(fetched?.partitions.find((p) => p.partition === partition)?.offset ?? -1))
}

interface ListedGroup {
  group: string
  state: string
  protocolType: string
  members: number
}

async function listed(): Promise<ListedGroup[]> {
  const result = await groups('list', '--json')
  assertOk(result, 'groups list --json')
  return JSON.parse(result.stdout) as ListedGroup[]
}

before(async () => {
  broker = await embeddedBroker()
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'cli-groups-test', logLevel: logLevel.NOTHING })
  admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: RECORDS.length }], waitForLeaders: true })
  const producer = kafka.producer()
  await producer.connect()
  try {
    // Each partition's records in one batch: reset by time must find the record inside it.
    for (const [partition, count] of RECORDS.entries()) {
      if (count === 0) continue
      const messages = Array.from({ length: count }, (_, i) => ({ partition, value: `p${partition}-${i}`, timestamp: String(BASE + i * 1000) }))
      await producer.send({ topic, acks: -1, messages })
    }
  } finally {
    await producer.disconnect()
  }

  consumer = kafka.consumer({ groupId: group, heartbeatInterval: 500, maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ autoCommit: false, eachMessage: async () => {} })
  await waitFor(
    async () => {
      const [described] = (await admin.describeGroups([group])).groups
      return described?.state === 'Stable' && described.members.length === 1 && described.members[0]!.memberAssignment.length > 0
    },
    { timeoutMs: 30_000, what: 'a Stable group with an assignment' },
  )
  await consumer.commitOffsets([...COMMITTED].map(([partition, offset]) => ({ topic, partition, offset: String(offset) })))
  await waitFor(async () => (await committed()).join() === '4,6,-1', { timeoutMs: 30_000, what: 'the consumer\'s commits' })
})

after(async () => {
  await consumer?.disconnect().catch(() => {})
  await admin?.disconnect().catch(() => {})
  await broker?.dispose()
})

test('list shows the group, its state, protocol type and member count, as a table and as JSON', { timeout: 60_000 }, async () => {
  assert.deepEqual((await listed()).find((g) => g.group === group), { group, state: 'Stable', protocolType: 'consumer', members: 1 })
  const text = await groups('list')
  assertOk(text, 'groups list')
  assert.match(text.stdout, /^GROUP\s+STATE\s+PROTOCOL TYPE\s+MEMBERS$/m)
  assert.match(text.stdout, new RegExp(`^${group}\\s+Stable\\s+consumer\\s+1$`, 'm'))
})

interface Described {
  group: string
  state: string
  protocolType: string
  protocol: string | null
  members: { memberId: string; groupInstanceId: string | null; clientId: string; clientHost: string; assignment: { topic: string; partitions: number[] }[] }[]
  partitions: { topic: string; partition: number; committedOffset: number | null; logEndOffset: number | null; lag: number | null; memberId: string | null }[]
  totalLag: number
}

test('describe shows the member, its decoded assignment, and each partition\'s committed offset, log end and lag', { timeout: 60_000 }, async () => {
  const json = await groups('describe', group, '--json')
  assertOk(json, 'groups describe --json')
  const described = JSON.parse(json.stdout) as Described
  assert.equal(described.state, 'Stable')
  assert.equal(described.protocolType, 'consumer')
  assert.ok(described.protocol, 'a Stable group names its assignor')
  assert.equal(described.members.length, 1)
  const [member] = described.members
  assert.equal(member!.clientId, 'cli-groups-test')
  assert.equal(member!.groupInstanceId, null)
  assert.deepEqual(member!.assignment, [{ topic, partitions: [0, 1, 2] }])
  assert.deepEqual(described.partitions, [
    { topic, partition: 0, committedOffset: 4, logEndOffset: 10, lag: 6, memberId: member!.memberId },
    { topic, partition: 1, committedOffset: 6, logEndOffset: 6, lag: 0, memberId: member!.memberId },
    { topic, partition: 2, committedOffset: null, logEndOffset: 0, lag: null, memberId: member!.memberId },
  ])
  assert.equal(described.totalLag, 6)

  const text = await groups('describe', group)
  assertOk(text, 'groups describe')
  assert.match(text.stdout, /^state\s+Stable$/m)
  assert.match(text.stdout, /^MEMBER\s+INSTANCE\s+CLIENT ID\s+HOST\s+ASSIGNMENT$/m)
  assert.ok(text.stdout.includes(`${topic}:0,1,2`), text.stdout)
  assert.match(text.stdout, /^TOPIC\s+PARTITION\s+COMMITTED\s+LOG END\s+LAG\s+MEMBER$/m)
  assert.match(text.stdout, new RegExp(`^${topic}\\s+0\\s+4\\s+10\\s+6\\s+\\S+$`, 'm'))
  assert.match(text.stdout, new RegExp(`^${topic}\\s+2\\s+-\\s+0\\s+-\\s+\\S+$`, 'm'))
})

test('reset-offsets and delete are refused while the group has an active member, and change nothing', { timeout: 60_000 }, async () => {
  for (const args of [['reset-offsets', group, '--topic', topic, '--to-earliest', '--execute'], ['reset-offsets', group, '--topic', topic, '--to-latest']]) {
    const refused = await groups(...args)
    assert.equal(refused.code, 1, `${args.join(' ')}: ${refused.stderr}`)
    assert.equal(
      refused.stderr,
      `tideway: cannot reset offsets of group "${group}": it has 1 active member (state Stable); stop its consumers first (the group must be empty)\n`,
    )
    assert.equal(refused.stdout, '')
  }
  const deleted = await groups('delete', group)
  assert.equal(deleted.code, 1, deleted.stderr)
  assert.match(deleted.stderr, new RegExp(`^tideway: cannot delete group "${group}": it has 1 active member \\(state Stable\\)`))
  assert.deepEqual(await committed(), [4, 6, -1])
  assert.equal((await listed()).find((g) => g.group === group)?.state, 'Stable')
})

test('once the consumer has left, a dry run shows the plan and commits nothing', { timeout: 60_000 }, async () => {
  await consumer!.disconnect()
  consumer = undefined
  await waitFor(async () => (await listed()).find((g) => g.group === group)?.state === 'Empty', { timeoutMs: 30_000, what: 'the group to be Empty' })

  const dry = await groups('reset-offsets', group, '--topic', topic, '--to-earliest')
  assertOk(dry, 'reset-offsets dry run')
  assert.equal(dry.stderr, 'dry run: nothing committed; add --execute to commit these offsets\n')
  assert.equal(
    dry.stdout,
    [
      'TOPIC'.padEnd(topic.length) + '  PARTITION  CURRENT  NEW',
      `${topic}          0        4    0`,
      `${topic}          1        6    0`,
      `${topic}          2        -    0`,
      '',
    ].join('\n'),
  )
  assert.deepEqual(await committed(), [4, 6, -1])

  const described = JSON.parse((await groups('describe', group, '--json')).stdout) as Described
  assert.equal(described.state, 'Empty')
  assert.deepEqual(described.members, [])
  assert.deepEqual(
    described.partitions.map((p) => [p.partition, p.committedOffset, p.lag, p.memberId]),
    [
      [0, 4, 6, null],
      [1, 6, 0, null],
    ],
  )
})

/** Runs `reset-offsets --execute --json` and checks its report against what OffsetFetch then returns. */
async function resetAndCheck(args: string[], expected: number[]) {
  const result = await groups('reset-offsets', group, '--topic', topic, ...args, '--execute', '--json')
  assertOk(result, `reset-offsets ${args.join(' ')}`)
  assert.match(result.stderr, new RegExp(`^committed new offsets of group "${group}" for \\d+ partitions? of "${topic}"\n$`))
  const report = JSON.parse(result.stdout) as { executed: boolean; partitions: { partition: number; currentOffset: number | null; newOffset: number; note: string | null }[] }
  assert.equal(report.executed, true)
  assert.deepEqual(await committed(), expected)
  return report
}

test('reset-offsets --execute commits earliest, an offset, a time and latest offsets', { timeout: 60_000 }, async () => {
  await resetAndCheck(['--to-earliest'], [0, 0, 0])

  const one = await resetAndCheck(['--to-offset', '3', '--partition', '0'], [3, 0, 0])
  assert.deepEqual(one.partitions, [{ partition: 0, currentOffset: 0, newOffset: 3, note: null }])

  const clamped = await resetAndCheck(['--to-offset', '8'], [8, 6, 0])
  assert.deepEqual(
    clamped.partitions.map((p) => [p.partition, p.newOffset, p.note]),
    [
      [0, 8, null],
      [1, 6, 'clamped: 8 is past the log end offset 6'],
      [2, 0, 'clamped: 8 is past the log end offset 0'],
    ],
  )

  // Records 5 and later of each partition are at or after BASE + 4.5 s; partition 2 has none.
  const byTime = await resetAndCheck(['--to-datetime', new Date(BASE + 4_500).toISOString()], [5, 5, 0])
  assert.equal(byTime.partitions[2]!.note, 'no record at or after that time: log end')

  // Every record is an hour old, so the last ten minutes hold none: the log end everywhere.
  await resetAndCheck(['--to-earliest', '--partition', '1'], [5, 0, 0])
  await resetAndCheck(['--by-duration', '10m'], [10, 6, 0])

  await resetAndCheck(['--to-earliest'], [0, 0, 0])
  await resetAndCheck(['--to-latest'], [10, 6, 0])

  const text = await groups('reset-offsets', group, '--topic', topic, '--to-offset', '99', '--partition', '1')
  assertOk(text, 'reset-offsets --to-offset 99')
  assert.match(text.stdout, new RegExp(`^${topic}\\s+1\\s+6\\s+6\\s+clamped: 99 is past the log end offset 6$`, 'm'))
})

test('delete removes an empty group; list then leaves it out and describe says it does not exist', { timeout: 60_000 }, async () => {
  const deleted = await groups('delete', group)
  assertOk(deleted, 'groups delete')
  assert.equal(deleted.stdout, `deleted group "${group}"\n`)
  assert.ok(!(await listed()).some((g) => g.group === group))
  assert.deepEqual(await committed(), [-1, -1, -1])
  for (const args of [['describe', group], ['delete', group]]) {
    const missing = await groups(...args)
    assert.equal(missing.code, 1, `${args.join(' ')}: ${missing.stderr}`)
    assert.equal(missing.stderr, `tideway: group "${group}" does not exist\n`)
  }
})

test('reset-offsets of an unknown topic or partition fails with one line and exit code 1', { timeout: 60_000 }, async () => {
  const noTopic = await groups('reset-offsets', group, '--topic', 'no-such-topic', '--to-earliest')
  assert.equal(noTopic.code, 1)
  assert.equal(noTopic.stderr, 'tideway: topic "no-such-topic" does not exist\n')
  const noPartition = await groups('reset-offsets', group, '--topic', topic, '--partition', '7', '--to-earliest')
  assert.equal(noPartition.code, 1)
  assert.match(noPartition.stderr, /^tideway: topic "[^"]+" has 3 partitions \(0 to 2\); there is no partition 7\n$/)
})

test('bad flags and arguments are usage errors with exit code 2 and a pointer to --help', { timeout: 60_000 }, async () => {
  const cases: [string[], RegExp][] = [
    [[], /^Usage: tideway groups <list\|describe\|delete\|reset-offsets>/],
    [['rename', 'g'], /^tideway groups: unknown command "rename" \(list, describe, delete or reset-offsets\)\n/],
    [['describe'], /^tideway groups describe: missing <group>\n/],
    [['delete', 'a', 'b'], /^tideway groups delete: unexpected argument "b"\n/],
    [['reset-offsets', 'g', '--to-earliest'], /^tideway groups reset-offsets: --topic is required\n/],
    [['reset-offsets', 'g', '--topic', 't'], /^tideway groups reset-offsets: say where to reset to: --to-earliest/],
    [['reset-offsets', 'g', '--topic', 't', '--to-earliest', '--to-offset', '3'], /--to-earliest and --to-offset cannot be combined/],
    [['reset-offsets', 'g', '--topic', 't', '--to-datetime', 'yesterday'], /--to-datetime takes an ISO 8601 date-time/],
    [['reset-offsets', 'g', '--topic', 't', '--to-offset=-1'], /--to-offset must be a whole number/],
    [['reset-offsets', 'g', '--topic', 't', '--by-duration', '10 minutes'], /--by-duration takes a duration/],
    [['reset-offsets', 'g', '--topic', 't', '--to-latest', '--partition', 'x'], /--partition must be a whole number/],
    [['list', '--bootstrap', 'nohostport'], /--bootstrap takes host:port/],
  ]
  for (const [args, message] of cases) {
    const result = await groups(...args)
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, message)
    if (args.length > 0) assert.match(result.stderr, /--help` for usage\.\n$/)
  }
  const help = await groups('reset-offsets', '--help')
  assertOk(help, 'reset-offsets --help')
  assert.match(help.stdout, /^Usage: tideway groups reset-offsets <group> --topic T/)
  for (const flag of ['--to-earliest', '--to-latest', '--to-offset', '--to-datetime', '--by-duration', '--partition', '--execute', '--bootstrap', '--json']) {
    assert.match(help.stdout, new RegExp(flag))
  }
  const family = await groups('--help')
  assertOk(family, 'groups --help')
  assert.match(family.stdout, /reset-offsets <group>/)
})

test('an unreachable bootstrap fails with one line and exit code 1', { timeout: 60_000 }, async () => {
  const result = await groups('list', '--bootstrap', '127.0.0.1:1')
  assert.equal(result.code, 1)
  assert.equal(result.stderr, 'tideway: cannot reach a broker at 127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1)\n')
})
