// Network faults between real clients and the broker (research reliability.md §3), through the
// fault proxy: every chunk delayed with jitter, responses to any request dropped with the
// connection cut, requests cut in the middle, and for librdkafka also responses cut in the
// middle and one open connection turned half-open (silent, never closed) every 1.5 s (KafkaJS
// survives neither: see unleash). Clients keep their own retries and timeouts.
// The history checker (test/helpers/history.ts) then compares what the clients were told with
// what kcat reads back:
//   - idempotent producers (KafkaJS, librdkafka through python confluent-kafka): nothing lost,
//     nothing stored twice, nothing out of order, dense offsets: exactly once;
//   - a plain producer that retries: nothing lost; the copies its retries leave are counted,
//     which is what the idempotent producer (or a dedup key) is for;
//   - a consumer group of two KafkaJS processes reading and committing through the same faults:
//     everything stored is consumed, one owner per partition per generation.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { startBroker, type RunningBroker } from '../../src/broker/broker.ts'
import { silentLogger } from '../../src/logger.ts'
import { createTopic } from '../helpers/admin.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { FaultProxy } from '../helpers/fault-proxy.ts'
import { historyOf, MemberProcess } from '../helpers/group-member-process.ts'
import { assertClean, checkHistory, describeReport, History, totalsLine, type StoredRecord } from '../helpers/history.ts'
import { kcatReadPartition } from '../helpers/kcat.ts'
import { PYTHON, requireKcat, requirePythonKafka } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs
const PARTITIONS = 3
const SCALE = Number(process.env.NETWORK_FAULT_SCALE ?? 1)
const PRODUCER_SCRIPT = fileURLToPath(new URL('../integration/clients/confluent_idempotent_producer.py', import.meta.url))
const MEMBER_SCRIPT = fileURLToPath(new URL('../integration/clients/kafkajs_group_member.ts', import.meta.url))

// KafkaJS lets a rejection escape from its own metadata refresh when a connection is cut under it
// ("Broker not connected", from BrokerPool.refreshMetadata): a client bug that would fail
// whichever test runs at the time. Those are counted and reported; any other is a failure.
const kafkajsLeaks: string[] = []
const otherRejections: unknown[] = []
process.on('unhandledRejection', (reason) => {
  if (String((reason as Error)?.stack ?? '').includes('node_modules/kafkajs/')) kafkajsLeaks.push(String(reason))
  else otherRejections.push(reason)
})

const dir = tempDir()
let proxy: FaultProxy
let broker: RunningBroker
let freezer: NodeJS.Timeout | undefined // a timeout, then an interval: clearInterval clears both
const members: MemberProcess[] = []

before(async () => {
  requireKcat()
  proxy = await FaultProxy.start(Number(process.env.SEED ?? 3))
  // Clients learn the proxy's address from Metadata, so every connection goes through it. Half-
  // open connections the proxy leaves behind are reclaimed by the broker's idle timeout.
  broker = await startBroker({ port: 0, dataDir: dir.path, logger: silentLogger, advertisedHost: '127.0.0.1', advertisedPort: proxy.port, idleTimeoutMs: 10_000 })
  proxy.target = { host: broker.host, port: broker.port }
})
after(async () => {
  if (kafkajsLeaks.length > 0) console.log(`# KafkaJS leaked ${kafkajsLeaks.length} unhandled rejections of its own: ${[...new Set(kafkajsLeaks)].join('; ')}`)
  assert.deepEqual(otherRejections, [], 'no unhandled rejection outside KafkaJS')
  clearInterval(freezer)
  for (const m of members) m.kill9()
  await proxy?.close()
  await broker?.close()
  dir.remove()
})

let statsAtUnleash = { droppedResponses: 0, cutMidFrame: 0, frozen: 0, requests: 0, connections: 0 }

/**
 * Turns the faults on. Delays, dropped responses and requests cut midway always; for librdkafka
 * also responses cut midway and half-open connections, which KafkaJS 2.2.4 cannot survive:
 * - it keeps the part of a response it had when its connection was cut and prepends it to what
 *   the next connection brings, then throws a RangeError from its socket handler (an uncaught
 *   exception in the application);
 * - on a request timeout it keeps the connection and sends the retry down the same silent one,
 *   until its retries run out (librdkafka closes it and reconnects). Only the broker's idle
 *   timeout, which closes its side, ends that.
 */
function unleash({ librdkafka = false } = {}): void {
  statsAtUnleash = { ...proxy.stats }
  proxy.delayMs = 1
  proxy.jitterMs = 6
  proxy.dropResponseChance = 0.02
  proxy.cutRequestChance = 0.01
  proxy.cutResponseChance = librdkafka ? 0.01 : 0
  if (!librdkafka) return
  // The first soon after the start, so even a short run sees one.
  freezer = setTimeout(() => {
    proxy.freezeConnections(1)
    freezer = setInterval(() => proxy.freezeConnections(1), 1500)
  }, 300)
}

function calm(): void {
  clearInterval(freezer)
  proxy.calm()
}

/** The faults injected since the last unleash(). */
function faultCounts(): string {
  const s = Object.fromEntries(Object.entries(statsAtUnleash).map(([k, v]) => [k, proxy.stats[k as keyof typeof statsAtUnleash] - v])) as typeof statsAtUnleash
  return `${s.requests} requests over ${s.connections} connections: ${s.droppedResponses} responses dropped, ${s.cutMidFrame} frames cut midway, ${s.frozen} connections left half-open`
}

async function readStored(topic: string): Promise<Map<number, StoredRecord[]>> {
  const stored = new Map<number, StoredRecord[]>()
  for (let p = 0; p < PARTITIONS; p++) stored.set(p, await kcatReadPartition(proxy.bootstrap, topic, p))
  return stored
}

const kafkaThroughProxy = (clientId: string) =>
  new Kafka({
    brokers: [proxy.bootstrap],
    clientId,
    logLevel: logLevel.NOTHING,
    // A short request timeout is how a client notices a half-open connection.
    requestTimeout: 2000,
    connectionTimeout: 2000,
    retry: { retries: 60, initialRetryTime: 20, maxRetryTime: 300 },
  })

/** KafkaJS does not retry a connect whose connection is cut; an application would, so we do. */
async function connectDespiteFaults(client: { connect(): Promise<void> }): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.connect()
    } catch (err) {
      if (attempt === 20) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/**
 * `producers` KafkaJS producers each send `batches` batches of `perBatch` records, recorded in
 * `history`. KafkaJS gives up on some faults by itself ("Broker not connected" from a metadata
 * refresh on a cut connection). Then a plain producer sends the same batch again, as an
 * at-least-once application would; an idempotent one stops, since a new send would carry new
 * sequence numbers and could store the batch twice: its records count as unacknowledged.
 */
async function produceWithKafkaJS(history: History, topic: string, name: string, { idempotent, producers, batches, perBatch }: { idempotent: boolean; producers: number; batches: number; perBatch: number }) {
  let gaveUp = 0
  const lastErrors: string[] = []
  await Promise.all(
    Array.from({ length: producers }, async (_, k) => {
      const producer = kafkaThroughProxy(`${name}-${k}`).producer({ idempotent, maxInFlightRequests: idempotent ? 1 : undefined, allowAutoTopicCreation: false })
      await connectDespiteFaults(producer)
      try {
        for (let b = 0; b < batches; b++) {
          const partition = (k + b) % PARTITIONS
          const values = Array.from({ length: perBatch }, (_, i) => `${name}${k}-${b}-${i}`)
          for (const value of values) history.sent(`${name}-${k}`, value, partition)
          for (let attempt = 1; ; attempt++) {
            try {
              const [meta] = await producer.send({ topic, acks: -1, timeout: 5000, messages: values.map((value) => ({ value, partition })) })
              values.forEach((value, i) => history.acked(value, partition, Number(meta!.baseOffset) + i))
              break
            } catch (err) {
              gaveUp++
              if (idempotent || attempt === 30) {
                for (const value of values) history.failed(value, err)
                if (!idempotent) lastErrors.push(String(err))
                return
              }
              // A KafkaJS producer can stay broken after such an error ("Broker not connected"
              // again and again): start it afresh, as a service would.
              await new Promise((resolve) => setTimeout(resolve, 100))
              if (attempt % 3 === 0) {
                await producer.disconnect().catch(() => {})
                await connectDespiteFaults(producer)
              }
            }
          }
        }
      } finally {
        await producer.disconnect().catch(() => {})
      }
    }),
  )
  return { gaveUp, lastErrors }
}

test('KafkaJS idempotent producers through delays, dropped responses and requests cut midway: exactly once, in order', { timeout: 180_000 }, async (t) => {
  const topic = uniqueName('net-idem-js')
  await createTopic(proxy.bootstrap, topic, PARTITIONS)
  const history = new History()
  unleash()
  const before = { ...proxy.stats }
  try {
    const { gaveUp } = await produceWithKafkaJS(history, topic, 'js', { idempotent: true, producers: 3, batches: 300 * SCALE, perBatch: 20 })
    t.diagnostic(`KafkaJS gave up ${gaveUp} times`)
  } finally {
    calm()
  }
  t.diagnostic(faultCounts())
  assert.ok(proxy.stats.droppedResponses > before.droppedResponses && proxy.stats.cutMidFrame > before.cutMidFrame, 'responses were dropped and requests cut')
  const report = checkHistory(history, await readStored(topic))
  t.diagnostic(describeReport(report))
  assertClean(report)
  assert.ok(report.acknowledged >= 3 * 300 * SCALE * 20 * 0.5, `most records acknowledged (${report.acknowledged})`)
  t.diagnostic(totalsLine({ recordsChecked: report.recordsChecked, lost: report.lost.length, duplicates: report.duplicates, reorders: report.reorders.length }))
})

test('python confluent-kafka idempotent producer through those faults, responses cut midway and half-open connections: exactly once, in order', { timeout: 180_000 }, async (t) => {
  requirePythonKafka()
  const topic = uniqueName('net-idem-py')
  await createTopic(proxy.bootstrap, topic, PARTITIONS)
  const count = 10_000 * SCALE
  const history = new History()
  unleash({ librdkafka: true })
  let stdout = ''
  let stderr = ''
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(PYTHON, [PRODUCER_SCRIPT, proxy.bootstrap, topic, 'py', String(count), String(PARTITIONS), '--history', '--short-timeouts'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const killer = setTimeout(() => child.kill('SIGKILL'), 150_000)
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)))
    child.once('exit', (exitCode) => {
      clearTimeout(killer)
      resolve(exitCode)
    })
  })
  calm()
  assert.equal(code, 0, stderr)
  const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  const summary = lines.pop() as { delivered: number; errors: string[] }
  for (const o of lines as { value: string; partition: number; sent: number; acked: number; offset?: number; error?: string }[]) {
    history.sends.set(o.value, { producer: 'py', value: o.value, partition: o.partition, t: o.sent })
    if (o.offset !== undefined) history.acks.set(o.value, { value: o.value, partition: o.partition, offset: o.offset, t: o.acked })
    else history.failures.set(o.value, { t: o.acked, error: o.error ?? '' })
  }
  t.diagnostic(faultCounts())
  assert.deepEqual(summary, { delivered: count, errors: [] })
  const report = checkHistory(history, await readStored(topic))
  t.diagnostic(describeReport(report))
  assertClean(report)
  assert.equal(report.acknowledged, count)
  t.diagnostic(totalsLine({ recordsChecked: report.recordsChecked, lost: report.lost.length, duplicates: report.duplicates, reorders: report.reorders.length }))
})

test('a plain producer that retries through the same faults loses nothing; its retries leave copies', { timeout: 180_000 }, async (t) => {
  const topic = uniqueName('net-plain')
  await createTopic(proxy.bootstrap, topic, PARTITIONS)
  const history = new History()
  unleash()
  try {
    const { gaveUp, lastErrors } = await produceWithKafkaJS(history, topic, 'plain', { idempotent: false, producers: 2, batches: 200 * SCALE, perBatch: 20 })
    t.diagnostic(`KafkaJS gave up ${gaveUp} times; the batch was sent again`)
    assert.deepEqual(lastErrors, [], 'every batch was acknowledged in the end')
  } finally {
    calm()
  }
  // Copies land wherever the retry did, so offsets stay dense but order only holds per attempt.
  const report = checkHistory(history, await readStored(topic), { noDuplicates: false })
  t.diagnostic(`${describeReport(report)} (${faultCounts()})`)
  assert.deepEqual(report.lost, [])
  assert.equal(report.acknowledged, 2 * 200 * SCALE * 20)
  assert.deepEqual(report.violations.filter((v) => !v.startsWith('reordered')), [])
})

test('a consumer group reading and committing through the same faults consumes everything stored', { timeout: 180_000 }, async (t) => {
  const topic = uniqueName('net-group')
  const groupId = uniqueName('net-group')
  await createTopic(proxy.bootstrap, topic, PARTITIONS)
  unleash()
  for (const name of ['g1', 'g2']) {
    members.push(new MemberProcess(name, process.execPath, [MEMBER_SCRIPT, proxy.bootstrap, topic, groupId, '--session-timeout-ms', '8000', '--request-timeout-ms', '3000', '--lifetime-ms', '170000'], 170_000))
  }
  const history = new History()
  try {
    await produceWithKafkaJS(history, topic, 'g', { idempotent: true, producers: 2, batches: 100 * SCALE, perBatch: 25 })
    const acked = [...history.acks.keys()]
    await waitFor(() => {
      const seen = new Set(members.flatMap((m) => m.records.map((r) => r.value)))
      return acked.every((v) => seen.has(v))
    }, { timeoutMs: 120_000, intervalMs: 250, what: `the group to consume all ${acked.length} records through the faults` })
  } finally {
    calm()
  }
  const group = historyOf(members)
  history.observed(group.records, group.commits)
  const report = checkHistory(history, await readStored(topic), { group, zombiesPossible: true })
  t.diagnostic(`${describeReport(report)} (${faultCounts()})`)
  assertClean(report)
  t.diagnostic(totalsLine({ recordsChecked: report.recordsChecked, lost: report.lost.length, duplicates: report.duplicates, reorders: report.reorders.length }))
})
