// Dead letters, parking and the second retry tier (src/sdk/dead-letter.ts, retry-topic.ts), with
// `tideway dlq show|redrive` as a child process: a record that keeps failing parks its key so the
// key's later records wait behind it while other keys flow; a redrive sends them back in order
// and unparks the key; a redriven record that fails again parks the rest of its redrive; and a
// transient failure released to the retry topic is handled after its delay while the partition
// moves on. Only the broker's address is used, so the suite runs against any Kafka-protocol
// cluster (TIDEWAY_TEST_BOOTSTRAP).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createConsumer, createProducer, PermanentFailure, sqliteStore, TransientFailure, type TidewayConsumer } from '../../src/index.ts'
import { createTopic } from '../helpers/admin.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { run } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
// Written against a broker address: TIDEWAY_TEST_BOOTSTRAP points the suite at any cluster.
let embedded: EmbeddedBroker | undefined
const broker = { bootstrap: process.env.TIDEWAY_TEST_BOOTSTRAP ?? '' }
const dir = tempDir()
before(async () => {
  if (!broker.bootstrap) {
    embedded = await embeddedBroker()
    broker.bootstrap = embedded.bootstrap
  }
})
after(async () => {
  await embedded?.dispose()
  dir.remove()
})

async function dlq(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const result = await run(process.execPath, [MAIN, 'dlq', ...args, '--bootstrap', broker.bootstrap], { timeoutMs: 60_000 })
  assert.equal(result.code, 0, `tideway dlq ${args.join(' ')}: ${result.stderr}`)
  return result
}

interface ShownLetter {
  offset: number
  source: { topic: string; partition: number; offset: number }
  errorClass: string
  key: string
  value: string
}

async function send(topic: string, records: [string, string][]): Promise<void> {
  const producer = createProducer({ bootstrap: broker.bootstrap, delivery: 'at-least-once' })
  try {
    for (const [key, value] of records) await producer.send(topic, { key, value, partition: 0, idempotencyKey: `${topic}:${value}` })
  } finally {
    await producer.close()
  }
}

test('park-key: a failing record parks its key, other keys flow, and a redrive sends the key\'s records back in order', { timeout: 120_000 }, async (t) => {
  const topic = uniqueName('parked')
  await createTopic(broker.bootstrap, topic, 1)
  const store = sqliteStore(join(dir.path, `${topic}.db`))
  const handled: string[] = []
  const failing = new Set(['a1'])
  const groupId = uniqueName('parked-group')
  const consumer: TidewayConsumer = createConsumer({
    bootstrap: broker.bootstrap,
    groupId,
    topics: [topic],
    delivery: 'at-least-once',
    store,
    deadLetter: { policy: 'park-key' },
    retry: { attempts: 2, initialDelayMs: 1, maxDelayMs: 5 },
    handler: async (message) => {
      const value = message.value!.toString()
      if (failing.has(value)) throw new PermanentFailure(`cannot handle ${value} yet`)
      handled.push(value)
    },
  })
  await consumer.start()
  try {
    await send(topic, [['A', 'a1'], ['B', 'b1'], ['A', 'a2'], ['B', 'b2'], ['A', 'a3'], ['B', 'b3']])
    await waitFor(() => handled.length === 3 && consumer.stats.deadLettered === 3, { timeoutMs: 20_000, what: 'B handled, A dead-lettered' })
    assert.deepEqual(handled, ['b1', 'b2', 'b3'], 'key B flows while key A is parked')
    await send(topic, [['A', 'a4'], ['B', 'b4']])
    await waitFor(() => handled.length === 4 && consumer.stats.deadLettered === 4, { timeoutMs: 20_000, what: 'a4 parked too' })

    const shown = JSON.parse((await dlq(['show', `${topic}.dlt`, '--json'])).stdout) as ShownLetter[]
    assert.deepEqual(shown.map((l) => [l.value, l.errorClass, l.source.offset]), [['a1', 'permanent', 0], ['a2', 'parked', 2], ['a3', 'parked', 4], ['a4', 'parked', 6]])
    assert.equal((await store.readParkedKeys(groupId)).length, 1)

    // The cause is fixed, except that a2 still fails: the redrive stops there and parks the rest.
    failing.clear()
    failing.add('a2')
    const dry = await dlq(['redrive', `${topic}.dlt`])
    assert.match(dry.stderr, /dry run: 4 dead letter\(s\) would be sent back/)
    assert.equal(handled.length, 4, 'a dry run sends nothing')
    await dlq(['redrive', `${topic}.dlt`, '--execute'])
    await waitFor(() => handled.includes('a1') && consumer.stats.deadLettered === 7, { timeoutMs: 20_000, what: 'a1 handled, a2 failing again, a3 and a4 parked behind it' })
    assert.deepEqual(handled, ['b1', 'b2', 'b3', 'b4', 'a1'])
    assert.equal((await store.readParkedKeys(groupId)).length, 1, 'A is still parked')

    failing.clear()
    await dlq(['redrive', `${topic}.dlt`, '--execute'])
    await waitFor(() => handled.length === 8, { timeoutMs: 20_000, what: 'the second redrive handled' })
    assert.deepEqual(handled.slice(5), ['a2', 'a3', 'a4'], 'A\'s records in their order, each once')
    await waitFor(async () => (await store.readParkedKeys(groupId)).length === 0, { timeoutMs: 10_000, what: 'A unparked' })
    await send(topic, [['A', 'a5']])
    await waitFor(() => handled.at(-1) === 'a5', { timeoutMs: 20_000, what: 'a5 handled directly' })
    assert.match((await dlq(['redrive', `${topic}.dlt`])).stderr, /dry run: 0 dead letter/, 'a redrive never sends a record back twice')
    t.diagnostic(`handled in order: ${handled.join(' ')}; ${consumer.stats.deadLettered} dead letters`)
  } finally {
    await consumer.stop()
    await store.close()
  }
})

test('the retry topic: a transient failure is released, the partition moves on, and the copy is handled after its delay', { timeout: 120_000 }, async () => {
  const topic = uniqueName('delayed')
  await createTopic(broker.bootstrap, topic, 1)
  const handled: string[] = []
  let x1Failures = 0
  const consumer = createConsumer({
    bootstrap: broker.bootstrap,
    groupId: uniqueName('delayed-group'),
    topics: [topic],
    delivery: 'at-least-once',
    retry: { attempts: 2, initialDelayMs: 1, maxDelayMs: 5 },
    retryTopic: { delaysMs: [200, 200] },
    handler: async (message) => {
      const value = message.value!.toString()
      if (value === 'x1' && x1Failures++ < 3) throw new TransientFailure('downstream unavailable')
      if (value === 'never') throw new TransientFailure('always down')
      handled.push(`${value}@${message.retryCount}`)
    },
  })
  await consumer.start()
  try {
    await send(topic, [['X', 'x1'], ['Y', 'y1'], ['Y', 'y2'], ['Z', 'never']])
    // x1 fails its 2 in-place attempts, then once more on the retry topic and succeeds next try.
    await waitFor(() => handled.includes('x1@1') && consumer.stats.deadLettered === 1, { timeoutMs: 30_000, what: 'x1 handled on the retry topic, never dead-lettered' })
    assert.deepEqual(handled.slice(0, 2), ['y1@0', 'y2@0'], 'the partition did not wait for x1')
    assert.equal(handled.filter((h) => h.startsWith('x1')).length, 1, 'x1 handled once')
    assert.deepEqual({ released: consumer.stats.releasedToRetry, deadLettered: consumer.stats.deadLettered }, { released: 3, deadLettered: 1 }, 'x1 once, never twice (one per delay), then never to the dead letters')
  } finally {
    await consumer.stop()
  }
})

test('exactly-once: a record failing inside a transaction batch rolls the batch back; the others apply once, it is dead-lettered', { timeout: 120_000 }, async () => {
  const topic = uniqueName('eo-batch')
  await createTopic(broker.bootstrap, topic, 1)
  // A backlog, so the consumer takes records in batches of one transaction.
  await send(topic, Array.from({ length: 300 }, (_, i) => ['k', `r${i}`] as [string, string]))
  const store = sqliteStore(join(dir.path, `${topic}.db`))
  await store.migrate()
  await store.transaction((tx) => tx.query('CREATE TABLE applied (value TEXT NOT NULL)'))
  const consumer = createConsumer({
    bootstrap: broker.bootstrap,
    groupId: uniqueName('eo-batch-group'),
    topics: [topic],
    delivery: 'exactly-once',
    store,
    retry: { attempts: 2, initialDelayMs: 1, maxDelayMs: 5 },
    handler: async (message, ctx) => {
      const value = message.value!.toString()
      await ctx.tx!.query('INSERT INTO applied (value) VALUES (?)', [value])
      if (value === 'r150') throw new PermanentFailure('r150 is malformed')
    },
  })
  await consumer.start()
  const count = async () => (await store.transaction((tx) => tx.query<{ n: number }>('SELECT COUNT(*) AS n FROM applied')))[0]!.n
  try {
    await waitFor(async () => (await count()) === 299 && consumer.stats.deadLettered === 1, { timeoutMs: 30_000, what: '299 applied, r150 dead-lettered' })
  } finally {
    await consumer.stop()
  }
  const rows = await store.transaction((tx) => tx.query<{ value: string; n: number }>('SELECT value, COUNT(*) AS n FROM applied GROUP BY value'))
  assert.equal(rows.length, 299)
  assert.ok(rows.every((r) => r.n === 1), 'each applied once: the failed batch left nothing behind')
  assert.ok(!rows.some((r) => r.value === 'r150'), 'the failing record\'s write was rolled back')
  await store.close()
})
