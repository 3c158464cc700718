// The tideway client commands as a user runs them: each command is a real child process
// (`node src/cli/main.ts ...`) against an embedded broker, reached only through the Kafka
// protocol. The tests run in order on one topic, from `topics create` to `topics delete`; the
// group, failure and usage tests stand alone.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { run, type RunResult } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const PARTITIONS = 3
const RECORDS = 100

let broker: EmbeddedBroker
const topic = uniqueName('cli')

before(async () => {
  broker = await embeddedBroker()
})
after(async () => {
  await broker?.dispose()
})

/** Runs `tideway <args>` with the broker in TIDEWAY_BOOTSTRAP, as a user's shell would. */
function tideway(args: string[], input?: string): Promise<RunResult> {
  return run(process.execPath, [MAIN, ...args], { input, timeoutMs: 60_000, env: { ...process.env, TIDEWAY_BOOTSTRAP: broker.bootstrap } })
}

function assertOk(result: RunResult, what: string): void {
  assert.equal(result.code, 0, `${what} exited ${result.code}: ${result.stderr}`)
}

function assertNoStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, `expected failures print no stack trace:\n${stderr}`)
}

interface JsonRecord {
  topic: string
  partition: number
  offset: number
  timestamp: number
  key: string | null
  value: string | null
  headers: Record<string, string | null>
}

interface Description {
  topic: string
  partitions: { partition: number; leader: number; earliestOffset: number; latestOffset: number }[]
  configs: Record<string, { value: string | null; source: string }>
}

const jsonLines = <T>(stdout: string): T[] =>
  stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as T)

/** `partition:offset<TAB>key<TAB>value` lines. */
const textRecords = (stdout: string) =>
  stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [position, key, value] = line.split('\t')
      const [partition, offset] = position!.split(':').map(Number)
      return { partition: partition!, offset: offset!, key: key!, value: value! }
    })

async function describe(name: string): Promise<Description> {
  const result = await tideway(['topics', 'describe', name, '--json'])
  assertOk(result, 'topics describe')
  return JSON.parse(result.stdout) as Description
}

test('topics create makes a topic that list and describe show, with its partitions, offsets and config', { timeout: 60_000 }, async () => {
  const created = await tideway(['topics', 'create', topic, '--partitions', String(PARTITIONS), '--config', 'retention.ms=3600000'])
  assertOk(created, 'topics create')
  assert.match(created.stdout, new RegExp(`created topic "${topic}" with ${PARTITIONS} partitions`))

  const listed = await tideway(['topics', 'list'])
  assertOk(listed, 'topics list')
  assert.match(listed.stdout, /^TOPIC\s+PARTITIONS$/m)
  assert.match(listed.stdout, new RegExp(`^${topic}\\s+${PARTITIONS}$`, 'm'))
  const listedJson = await tideway(['topics', 'list', '--json'])
  assert.deepEqual(
    (JSON.parse(listedJson.stdout) as { name: string; partitions: number }[]).find((t) => t.name === topic),
    { name: topic, partitions: PARTITIONS },
  )

  const description = await describe(topic)
  assert.deepEqual(
    description.partitions.map((p) => [p.partition, p.earliestOffset, p.latestOffset]),
    [
      [0, 0, 0],
      [1, 0, 0],
      [2, 0, 0],
    ],
  )
  assert.deepEqual(description.configs['retention.ms'], { value: '3600000', source: 'topic', readOnly: false, sensitive: false })
  assert.equal(description.configs['cleanup.policy']?.source, 'default')

  const text = await tideway(['topics', 'describe', topic])
  assertOk(text, 'topics describe')
  assert.match(text.stdout, /^PARTITION\s+LEADER\s+EARLIEST\s+LATEST$/m)
  assert.match(text.stdout, /^retention\.ms\s+3600000\s+topic$/m)

  // topics alter: applied at once, the keys not named keep their values; a bad value names the key.
  const altered = await tideway(['topics', 'alter', topic, '--config', 'retention.bytes=1048576', '--delete-config', 'retention.ms'])
  assertOk(altered, 'topics alter')
  assert.match(altered.stdout, new RegExp(`altered topic "${topic}": retention.bytes=1048576, retention.ms \\(default\\)`))
  const afterAlter = await describe(topic)
  assert.deepEqual(afterAlter.configs['retention.bytes'], { value: '1048576', source: 'topic', readOnly: false, sensitive: false })
  assert.equal(afterAlter.configs['retention.ms']?.source, 'default')
  const invalid = await tideway(['topics', 'alter', topic, '--config', 'retention.ms=soon'])
  assert.equal(invalid.code, 1)
  assert.match(invalid.stderr, /invalid config \(.*retention\.ms must be an integer, got "soon"\)/)
  const validateOnly = await tideway(['topics', 'alter', topic, '--config', 'retention.ms=1000', '--validate-only'])
  assertOk(validateOnly, 'topics alter --validate-only')
  assert.equal((await describe(topic)).configs['retention.ms']?.source, 'default', 'validate-only applies nothing')
  assert.equal((await tideway(['topics', 'alter', topic])).code, 2, 'nothing to change is a usage error')

  const pubsub = `${topic}-pubsub`
  assertOk(await tideway(['topics', 'create', pubsub, '--kind', 'pubsub']), 'topics create --kind pubsub')
  assert.deepEqual((await describe(pubsub)).configs['tideway.topic.kind'], { value: 'pubsub', source: 'topic', readOnly: false, sensitive: false })
  assert.equal(description.configs['tideway.topic.kind']?.value, 'stream', 'the default kind')

  const keyed = `${topic}-keyed`
  assertOk(await tideway(['topics', 'create', keyed, '--dedup', '--dedup-window', '10m']), 'topics create --dedup')
  const keyedConfigs = (await describe(keyed)).configs
  assert.equal(keyedConfigs['tideway.dedup.enable']?.value, 'true')
  assert.equal(keyedConfigs['tideway.dedup.window.ms']?.value, '600000')
  assert.equal(keyedConfigs['tideway.dedup.header']?.value, 'idempotency-key', 'the default header')
  assert.equal(description.configs['tideway.dedup.enable']?.value, 'false', 'off by default')
})

test('produce sends 100 keyed stdin lines in one batch and reports each partition\'s offsets', { timeout: 60_000 }, async () => {
  const input = Array.from({ length: RECORDS }, (_, i) => `user-${i % 10}=event ${i}`).join('\n') + '\n'
  const produced = await tideway(['produce', topic, '--key-separator', '=', '--header', 'source=cli-test', '--json'], input)
  assertOk(produced, 'produce')
  const batches = jsonLines<{ batch: number; records: number; partitions: { partition: number; records: number; firstOffset: number; lastOffset: number }[] }>(
    produced.stdout,
  )
  assert.equal(batches.length, 1, 'a hundred lines fit one batch')
  assert.equal(batches[0]!.records, RECORDS)
  const perPartition = batches[0]!.partitions
  assert.equal(perPartition.reduce((sum, p) => sum + p.records, 0), RECORDS)
  for (const p of perPartition) assert.deepEqual([p.firstOffset, p.lastOffset], [0, p.records - 1])
  assert.match(produced.stderr, new RegExp(`produced ${RECORDS} records to "${topic}" in 1 batch`))
  assert.match(produced.stderr, /^PARTITION\s+RECORDS\s+FIRST OFFSET\s+LAST OFFSET$/m)

  const description = await describe(topic)
  assert.deepEqual(
    description.partitions.map((p) => p.latestOffset),
    [0, 1, 2].map((partition) => perPartition.find((p) => p.partition === partition)?.records ?? 0),
  )
})

test('consume from the beginning prints every record once with its key, as text and as JSON, then stops', { timeout: 60_000 }, async () => {
  const expected = Array.from({ length: RECORDS }, (_, i) => `user-${i % 10}\tevent ${i}`).sort()

  const text = await tideway(['consume', topic])
  assertOk(text, 'consume')
  const records = textRecords(text.stdout)
  assert.deepEqual(records.map((r) => `${r.key}\t${r.value}`).sort(), expected)
  // Equal keys share a partition, and each partition reads back in offset order from 0.
  const partitionOfKey = new Map<string, number>()
  for (const r of records) assert.equal(partitionOfKey.get(r.key) ?? r.partition, r.partition, `key ${r.key} in one partition`)
  for (const r of records) partitionOfKey.set(r.key, r.partition)
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const offsets = records.filter((r) => r.partition === partition).map((r) => r.offset)
    assert.deepEqual(offsets, offsets.map((_, i) => i))
  }

  const json = await tideway(['consume', topic, '--json'])
  assertOk(json, 'consume --json')
  const jsonRecords = jsonLines<JsonRecord>(json.stdout)
  assert.deepEqual(jsonRecords.map((r) => `${r.key}\t${r.value}`).sort(), expected)
  const first = jsonRecords[0]!
  assert.equal(first.topic, topic)
  assert.deepEqual(first.headers, { source: 'cli-test' })
  assert.equal(typeof first.timestamp, 'number')
  assert.deepEqual(jsonLines<JsonRecord>((await tideway(['consume', topic, '--format', 'json', '--max', '3'])).stdout).length, 3)
})

test('consume --from an offset on one partition prints from that offset to the end of the partition', { timeout: 60_000 }, async () => {
  const description = await describe(topic)
  const fullest = description.partitions.reduce((a, b) => (b.latestOffset > a.latestOffset ? b : a))
  const from = fullest.latestOffset - 5
  const result = await tideway(['consume', topic, '--from', String(from), '--partition', String(fullest.partition)])
  assertOk(result, 'consume --from N --partition P')
  const records = textRecords(result.stdout)
  assert.deepEqual(
    records.map((r) => [r.partition, r.offset]),
    [0, 1, 2, 3, 4].map((i) => [fullest.partition, from + i]),
  )
})

test('consume --from @time starts each partition at its first record at or after that time', { timeout: 60_000 }, async () => {
  // Everything produced so far is older than `boundary`; what is produced next is newer.
  const boundary = Date.now()
  await waitFor(() => Date.now() > boundary, { what: 'the clock to pass the boundary' })
  assertOk(await tideway(['produce', topic], 'late-0\nlate-1\nlate-2\n'), 'produce')

  const byMillis = await tideway(['consume', topic, '--from', `@${boundary + 1}`])
  assertOk(byMillis, 'consume --from @ms')
  assert.deepEqual(textRecords(byMillis.stdout).map((r) => r.value).sort(), ['late-0', 'late-1', 'late-2'])
  assert.ok(textRecords(byMillis.stdout).every((r) => r.key === '-'), 'lines without a separator have no key')

  const byDate = await tideway(['consume', topic, '--from', `@${new Date(boundary + 1).toISOString()}`, '--json'])
  assertOk(byDate, 'consume --from @ISO')
  assert.deepEqual(jsonLines<JsonRecord>(byDate.stdout).map((r) => [r.key, r.value]).sort(), [
    [null, 'late-0'],
    [null, 'late-1'],
    [null, 'late-2'],
  ])
})

test('consume --follow prints a record produced after it started and exits 0 on SIGINT', { timeout: 60_000 }, async () => {
  const partition = 0
  const start = (await describe(topic)).partitions[partition]!.latestOffset
  // Starting at an explicit offset (the current end) makes the record produced below land in the
  // follower's range whether it is produced before or after the follower is ready.
  const child = spawn(process.execPath, [MAIN, 'consume', topic, '--partition', String(partition), '--from', String(start), '--follow'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TIDEWAY_BOOTSTRAP: broker.bootstrap },
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), 50_000)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  try {
    assertOk(await tideway(['produce', topic, '--partition', String(partition)], 'followed\n'), 'produce')
    await waitFor(() => stdout.includes('\tfollowed\n'), { timeoutMs: 30_000, what: `the follower to print the new record (stderr: ${stderr})` })
    assert.deepEqual(textRecords(stdout), [{ partition, offset: start, key: '-', value: 'followed' }])
    child.kill('SIGINT')
    assert.deepEqual(await exited, { code: 0, signal: null })
    assert.equal(stderr, '')
  } finally {
    clearTimeout(killer)
    child.kill('SIGKILL')
  }
})

test('consume --group commits what it printed, so the next run of the group resumes after it', { timeout: 60_000 }, async () => {
  const groupTopic = uniqueName('cli-group')
  const group = uniqueName('cli-group')
  assertOk(await tideway(['topics', 'create', groupTopic, '--partitions', '2']), 'topics create')
  assertOk(await tideway(['produce', groupTopic], 'a\nb\nc\nd\n'), 'produce')

  const firstTwo = await tideway(['consume', groupTopic, '--group', group, '--max', '2'])
  assertOk(firstTwo, 'consume --group --max 2')
  const rest = await tideway(['consume', groupTopic, '--group', group])
  assertOk(rest, 'consume --group')
  const values = [...textRecords(firstTwo.stdout), ...textRecords(rest.stdout)].map((r) => r.value)
  assert.equal(textRecords(firstTwo.stdout).length, 2)
  assert.deepEqual(values.sort(), ['a', 'b', 'c', 'd'], 'each record once across the two runs')

  assertOk(await tideway(['produce', groupTopic], 'e\n'), 'produce')
  const resumed = await tideway(['consume', groupTopic, '--group', group, '--json'])
  assertOk(resumed, 'consume --group after more records')
  assert.deepEqual(jsonLines<JsonRecord>(resumed.stdout).map((r) => r.value), ['e'])

  const fromEnd = await tideway(['consume', groupTopic, '--group', uniqueName('cli-group-end'), '--from', 'end'])
  assertOk(fromEnd, 'consume --group --from end')
  assert.equal(fromEnd.stdout, '', 'a new group starting at the end has nothing to print yet')
})

test('topics delete removes the topic; describing, producing to or consuming it then fails with one line and exit code 1', { timeout: 60_000 }, async () => {
  const deleted = await tideway(['topics', 'delete', topic])
  assertOk(deleted, 'topics delete')
  assert.match(deleted.stdout, new RegExp(`deleted topic "${topic}"`))

  for (const args of [['topics', 'describe', topic], ['topics', 'delete', topic], ['consume', topic], ['produce', topic]]) {
    const result = await tideway(args, 'x\n')
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`)
    assert.equal(result.stderr, `tideway: topic "${topic}" does not exist\n`)
  }
  const listed = await tideway(['topics', 'list', '--json'])
  assert.ok(!(JSON.parse(listed.stdout) as { name: string }[]).some((t) => t.name === topic))
})

test('creating a topic that exists, or with a config the broker refuses, fails with the reason', { timeout: 60_000 }, async () => {
  const name = uniqueName('cli-refused')
  assertOk(await tideway(['topics', 'create', name]), 'topics create')
  const again = await tideway(['topics', 'create', name])
  assert.equal(again.code, 1)
  assert.equal(again.stderr, `tideway: topic "${name}" already exists\n`)
  const badConfig = await tideway(['topics', 'create', uniqueName('cli-refused'), '--config', 'retention.ms=soon'])
  assert.equal(badConfig.code, 1)
  assert.match(badConfig.stderr, /^tideway: cannot create topic "[^"]+": invalid config.*retention\.ms/)
  assertNoStackTrace(badConfig.stderr)
})

test('an unreachable bootstrap fails with a clear message instead of hanging', { timeout: 60_000 }, async () => {
  // Port 1 on loopback: nothing listens there, so the connection is refused.
  for (const args of [['topics', 'list'], ['consume', 'anything'], ['produce', 'anything']]) {
    const result = await run(process.execPath, [MAIN, ...args, '--bootstrap', '127.0.0.1:1'], { input: 'x\n', timeoutMs: 30_000 })
    assert.equal(result.code, 1, `${args.join(' ')} exited ${result.code} (signal ${result.signal}): ${result.stderr}`)
    assert.equal(result.stderr, 'tideway: cannot reach a broker at 127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1)\n')
  }
})

test('bad flags and arguments are usage errors with exit code 2 and a pointer to --help', { timeout: 60_000 }, async () => {
  const cases: [string[], RegExp][] = [
    [['consume', 'x', '--bogus'], /^tideway consume: unknown option --bogus\n/],
    [['consume'], /^tideway consume: missing <topic>\n/],
    [['consume', 'x', '--from', 'yesterday'], /^tideway consume: --from takes beginning, end/],
    [['consume', 'x', '--group', 'g', '--partition', '1'], /cannot be combined with --group/],
    [['produce', 'x', '--acks', '2'], /^tideway produce: --acks takes all, 1 or 0/],
    [['topics', 'create', 'x', '--partitions', 'many'], /^tideway topics create: --partitions must be a whole number/],
    [['topics', 'create', 'x', '--config', 'novalue'], /--config takes key=value/],
    [['topics', 'create', 'x', '--kind', 'queue'], /--kind must be stream or pubsub/],
    [['topics', 'create', 'x', '--dedup-window', '5m'], /--dedup-window needs --dedup/],
    [['topics', 'create', 'x', '--dedup', '--dedup-window', 'soon'], /--dedup-window takes a duration/],
    [['topics', 'rename', 'x'], /^tideway topics: unknown command "rename"/],
    [['topics', 'list', '--bootstrap', 'nohostport'], /--bootstrap takes host:port/],
  ]
  for (const [args, message] of cases) {
    const result = await tideway(args)
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, message)
    assert.match(result.stderr, /--help` for usage\.\n$/)
  }
  const help = await tideway(['produce', '--help'])
  assertOk(help, 'produce --help')
  assert.match(help.stdout, /^Usage: tideway produce <topic>/)
  for (const flag of ['--key-separator', '--partition', '--acks', '--header', '--bootstrap', '--json']) assert.match(help.stdout, new RegExp(flag))
})
