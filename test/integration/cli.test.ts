// The tideway CLI as a user runs it: a real child process per command, against an embedded
// broker, through @platformatic/kafka (so the same commands work against any Kafka cluster).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { run } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
let broker: EmbeddedBroker

before(async () => {
  broker = await embeddedBroker()
})
after(async () => {
  await broker?.dispose()
})

const tideway = (args: string[], input?: string) =>
  run(process.execPath, [MAIN, ...args, '--bootstrap', broker.bootstrap], { input, timeoutMs: 60_000 })

test('topics create, list, describe and delete', { timeout: 120_000 }, async () => {
  const topic = uniqueName('cli-topics')
  const created = await tideway(['topics', 'create', topic, '--partitions', '3', '--config', 'retention.ms=3600000'])
  assert.equal(created.code, 0, created.stderr)
  assert.match(created.stdout, /3 partitions/)

  const listed = await tideway(['topics', 'list', '--json'])
  assert.equal(listed.code, 0, listed.stderr)
  assert.deepEqual((JSON.parse(listed.stdout) as { name: string; partitions: number }[]).find((t) => t.name === topic), { name: topic, partitions: 3 })

  const described = await tideway(['topics', 'describe', topic, '--json'])
  assert.equal(described.code, 0, described.stderr)
  const description = JSON.parse(described.stdout) as { partitions: unknown[]; configs: Record<string, string> }
  assert.equal(description.partitions.length, 3)
  assert.equal(description.configs['retention.ms'], '3600000')

  const deleted = await tideway(['topics', 'delete', topic])
  assert.equal(deleted.code, 0, deleted.stderr)
  const gone = await tideway(['topics', 'describe', topic])
  assert.equal(gone.code, 1)
  assert.match(gone.stderr, /does not exist/)
  assert.doesNotMatch(gone.stderr, /\n\s+at /, 'no stack trace for an expected failure')
})

test('produce from stdin, then consume from the beginning, an offset and a timestamp', { timeout: 120_000 }, async () => {
  const topic = uniqueName('cli-data')
  assert.equal((await tideway(['topics', 'create', topic, '--partitions', '1'])).code, 0)
  const early = Array.from({ length: 60 }, (_, i) => `key${i % 4}:early-${i}`).join('\n') + '\n'
  const produced = await tideway(['produce', topic, '--key-separator', ':'], early)
  assert.equal(produced.code, 0, produced.stderr)
  assert.match(produced.stderr, /produced 60 records/)
  const boundary = Date.now() + 1
  while (Date.now() <= boundary) await new Promise((resolve) => setImmediate(resolve))
  assert.equal((await tideway(['produce', topic], 'late-0\nlate-1\n')).code, 0)

  const all = await tideway(['consume', topic])
  assert.equal(all.code, 0, all.stderr)
  const lines = all.stdout.trim().split('\n')
  assert.equal(lines.length, 62)
  assert.equal(lines[0], '0:0\tkey0\tearly-0')
  assert.equal(lines[61], '0:61\t-\tlate-1')

  const fromOffset = await tideway(['consume', topic, '--from', '58', '--json'])
  const records = fromOffset.stdout.trim().split('\n').map((l) => JSON.parse(l) as { offset: string; key: string | null; value: string })
  assert.deepEqual(records.map((r) => [r.offset, r.key, r.value]), [
    ['58', 'key2', 'early-58'],
    ['59', 'key3', 'early-59'],
    ['60', null, 'late-0'],
    ['61', null, 'late-1'],
  ])

  const fromTime = await tideway(['consume', topic, '--from', `@${boundary}`])
  assert.deepEqual(fromTime.stdout.trim().split('\n').map((l) => l.split('\t')[2]), ['late-0', 'late-1'])
})

test('consume --follow prints records produced after it started and exits 0 on SIGINT', { timeout: 120_000 }, async () => {
  const topic = uniqueName('cli-follow')
  assert.equal((await tideway(['topics', 'create', topic, '--partitions', '2'])).code, 0)
  const child = spawn(process.execPath, [MAIN, 'consume', topic, '--follow', '--from', 'end', '--bootstrap', broker.bootstrap], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000)
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  try {
    // Keep producing until the follower (which may still be joining) shows a record.
    await waitFor(
      async () => {
        await tideway(['produce', topic], 'fresh\n')
        return output.includes('\tfresh')
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the follower to print a new record' },
    )
    child.kill('SIGINT')
    assert.equal(await exited, 0)
  } finally {
    clearTimeout(killer)
    child.kill('SIGKILL')
  }
})

test('bad flags are usage errors and an unreachable broker fails with a clear message', { timeout: 120_000 }, async () => {
  const bad = await tideway(['consume', 'x', '--bogus'])
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /Unknown option '--bogus'/)
  const unreachable = await run(process.execPath, [MAIN, 'topics', 'list', '--bootstrap', '127.0.0.1:1'], { timeoutMs: 60_000 })
  assert.equal(unreachable.code, 1)
  assert.match(unreachable.stderr, /^tideway: /)
})
