// Hostile input against a live broker in a child process: mutated valid requests of every
// registered API and served version, random frames and random raw bytes, over many connections,
// several at once (style.md: "Hostile input is ordinary input").
//
// Invariants, checked throughout and at the end:
//   1. The broker process never exits, and never logs 'request handler failed' or 'unexpected
//      error in request handler' (a handler that throws on a decodable request is our bug; it
//      must answer with a Kafka error code instead).
//   2. Every case either gets well-formed answers or its connection is closed by the broker. The
//      outcome of each frame is predicted with the broker's own framing and parseRequest: a
//      decodable request must be answered, in order, with a response that our decoder reads
//      exactly (correlation id matching, no byte left over, no UNKNOWN_SERVER_ERROR anywhere);
//      a frame the broker must refuse closes the connection (answers before it may or may not
//      arrive, nothing after it does); a frame left incomplete is closed by the read timeout.
//   3. Other connections are unaffected: a healthy RawClient keeps being answered (Metadata and
//      Fetch, checked periodically), and the data produced before the run is intact at the end.
//   4. Memory stays bounded: the broker's RSS, sampled during and after the run, stays under
//      baseline + 300 MiB however large the sizes and counts the mutated requests declare.
//
// Requests are generated samples (test/unit/protocol/sample.ts) steered half the time towards
// topics, partitions, groups and record batches that exist, so handlers get past their first
// lookup, with now and then a string (or client id) of about 32 KiB, the most a protocol string
// holds; then mutated (test/unit/protocol/mutate.ts), header included, or sent as they are.
// LIVE_FUZZ_CASES sets the number of cases, SEED replays a run.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { parseRequest, ProtocolViolation } from '../../src/broker/dispatch.ts'
import type { HandlerEntry } from '../../src/broker/handler.ts'
import { allApis, ApiVersions, Fetch, Metadata, Produce } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { FrameSplitter } from '../../src/protocol/framing.ts'
import { readRequestHeader, readResponseHeader, responseHeaderIsFlexible, writeRequestHeader } from '../../src/protocol/headers.ts'
import { Reader, Writer } from '../../src/protocol/primitives.ts'
import type { Api, Field } from '../../src/protocol/schema.ts'
import { createTopic } from '../helpers/admin.ts'
import { buildBatch } from '../helpers/batches.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { mib, MiB, RssSampler, rssBytes } from '../helpers/process-memory.ts'
import { partitionValues, RawClient } from '../helpers/raw-client.ts'
import { mutate, RecordingReader } from '../unit/protocol/mutate.ts'
import { totalsLine } from '../helpers/history.ts'
import { randomString, Rng, sampleMessage, seedFor, servedVersions } from '../unit/protocol/sample.ts'

const seed = seedFor('live-fuzz.test.ts', 0x5eed_1001)
const CASES = Number(process.env.LIVE_FUZZ_CASES ?? 8000)
const WORKERS = 6
const MAX_FRAME_BYTES = 100 * MiB // the broker's default
const READ_TIMEOUT_MS = 1500
const RSS_SLACK = 300 * MiB
const MAX_NEW_PARTITIONS = 64

/** Topics with known data the generator cannot name ('k', 'n', 'w' are in none of its pieces). */
const KEPT = [
  { topic: 'kept-known-one', partitions: 3 },
  { topic: 'kept-known-two', partitions: 2 },
]
const KEPT_RECORDS = 40
const keptValues = (topic: string, p: number) => Array.from({ length: KEPT_RECORDS }, (_, i) => `${topic}/${p}/${i}`)
/** Topics the fuzzer aims at (and may produce to, grow or delete): names the generator can make. */
const TARGETS = ['topic', 'a', 'topic-0']
const GROUPS = ['a', 'topic', 'Z']
/** Answers that may legitimately wait for other group members (rebalances). */
const PARKABLE = new Set([11, 14]) // JoinGroup, SyncGroup

const dir = tempDir('tideway-live-fuzz-')
const broker = new BrokerProcess(dir.path, [
  '--request-read-timeout-ms', String(READ_TIMEOUT_MS),
  '--max-fetch-wait-ms', '200',
  '--group-initial-rebalance-delay-ms', '50',
])
let healthy: RawClient | undefined
const openSockets = new Set<Socket>()

before(async () => {
  await broker.start()
  for (const { topic, partitions } of KEPT) await createTopic(broker.bootstrap, topic, partitions)
  for (const topic of TARGETS) await createTopic(broker.bootstrap, topic, 2)
  healthy = await RawClient.connect(broker.bootstrap)
  for (const { topic, partitions } of KEPT) {
    for (let p = 0; p < partitions; p++) {
      const values = keptValues(topic, p)
      for (let i = 0; i < values.length; i += 10) await produce(healthy, topic, p, values.slice(i, i + 10))
    }
  }
  for (const topic of TARGETS) for (let p = 0; p < 2; p++) await produce(healthy, topic, p, ['t0', 't1', 't2'])
})

after(async () => {
  if (process.env.LIVE_FUZZ_LOG) writeFileSync(process.env.LIVE_FUZZ_LOG, broker.log)
  for (const socket of openSockets) socket.destroy()
  healthy?.close()
  await broker.kill9()
  dir.remove()
})

async function produce(client: RawClient, topic: string, partition: number, values: string[]) {
  const { batch } = buildBatch(values.map((value) => ({ value })))
  const answer = await client.request(Produce, 8, { acks: -1, timeoutMs: 10_000, topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }] })
  assert.equal(answer.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.NONE)
}

// ---------------------------------------------------------------------------------------------
// Generating cases

const handlerTable: ReadonlyMap<number, HandlerEntry> = new Map(
  allApis.map((api) => [api.key, { api, handle: () => assert.fail('prediction never runs a handler') }]),
)
let nextCorrelationId = 1

type AnyField = Field<unknown, unknown, boolean>

/**
 * Points some fields of a generated request at things that exist, so handlers go deeper. Walks
 * the description like the sample generator does: a field absent from the version keeps its
 * default (the encoder refuses anything else).
 */
function steer(f: AnyField, value: unknown, version: number, flexible: boolean, rng: Rng, key: string): unknown {
  const t = f.type
  if (value === null) return value
  if (t.kind === 'struct') {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) }
    for (const [name, sub] of Object.entries(t.fields)) {
      const o = sub.options
      if (version < o.since || version > o.until || (o.tag !== undefined && !flexible)) continue
      out[name] = steer(sub, out[name], version, flexible, rng, name)
    }
    return out
  }
  if (t.kind === 'array') return (value as unknown[]).map((item) => steer(t.items, item, version, flexible, rng, key))
  if (t.kind === 'string' && rng.chance(0.03)) return longString(rng)
  if (!rng.chance(0.5)) return value
  if (t.kind === 'records') {
    const records = Array.from({ length: rng.int(1, 3) }, (_, i) => ({ value: `fuzz-${i}`, key: rng.chance(0.5) ? 'k' : null }))
    const idempotent = rng.chance(0.2) ? { producerId: BigInt(rng.int(0, 3)), producerEpoch: 0, baseSequence: rng.int(0, 2) } : {}
    return buildBatch(records, idempotent).batch
  }
  if (t.kind === 'string') {
    if (['topic', 'name', 'topicNames', 'resourceName'].includes(key)) return rng.pick(TARGETS)
    if (['groupId', 'groups', 'groupsNames', 'key', 'coordinatorKeys'].includes(key)) return rng.pick(GROUPS)
    if (key === 'protocolType') return 'consumer'
    return value
  }
  if (t.kind === 'int64') {
    if (['fetchOffset', 'committedOffset', 'timestamp', 'logStartOffset'].includes(key)) return BigInt(rng.int(-2, 6))
    return value
  }
  if (t.kind === 'int32' || t.kind === 'int16') {
    switch (key) {
      case 'partition':
      case 'partitionIndex':
      case 'partitionIndexes':
      case 'index':
        return rng.int(-1, 2)
      case 'acks':
        return rng.pick([0, 1, -1])
      case 'maxWaitMs':
      case 'rebalanceTimeoutMs':
        return rng.int(0, 100)
      case 'sessionTimeoutMs':
        return rng.int(6000, 7000)
      case 'numPartitions':
      case 'count':
        return rng.int(-1, 4)
      case 'replicationFactor':
        return rng.pick([-1, 1])
      case 'generationId':
      case 'generationIdOrMemberEpoch':
        return rng.int(-1, 2)
    }
  }
  return value
}

/** A string of up to 32767 bytes in UTF-8, the most a protocol string holds: answers quoting it must still fit. */
function longString(rng: Rng): string {
  const unit = rng.pick(['x', 'é', '日', '🦀'])
  return unit.repeat(Math.floor(rng.int(32_600, 32_767) / Buffer.byteLength(unit)))
}

function sizePrefixed(body: Buffer, declared = body.length): Buffer {
  const size = Buffer.alloc(4)
  size.writeInt32BE(declared)
  return Buffer.concat([size, body])
}

interface Case {
  bytes: Buffer
  what: string
}

function mutatedRequest(rng: Rng): Case {
  const api = rng.pick(allApis)
  const version = rng.pick(servedVersions(api))
  const flexible = api.isFlexible(version)
  const sample = sampleMessage(api, version, 'request', rng, { nullChance: 0.15, tagDefaultChance: 0.5, maxArray: 3, largePayloadChance: 0.02 })
  const body = steer(api.request, sample, version, flexible, rng, '')
  const w = new Writer()
  const correlationId = nextCorrelationId++
  const clientId = rng.chance(0.2) ? null : rng.chance(0.03) ? longString(rng) : randomString(rng)
  writeRequestHeader(w, { apiKey: api.key, apiVersion: version, correlationId, clientId }, flexible)
  api.encodeRequest(version, w, body as never)
  let payload = w.toBuffer()
  let how = 'valid'
  const roll = rng.float() // below 0.35 it goes as generated: well-formed, with odd values
  if (roll >= 0.5) {
    const recorder = new RecordingReader(payload)
    readRequestHeader(recorder, flexible)
    api.decodeRequest(version, recorder)
    const mutated = mutate(rng, payload, recorder.fields)
    payload = mutated.bytes
    how = mutated.how
  } else if (roll >= 0.45) {
    payload.writeInt16BE(rng.chance(0.7) ? rng.pick(allApis).key : rng.int(-32768, 32767), 0)
    how = `api key set to ${payload.readInt16BE(0)}`
  } else if (roll >= 0.35) {
    payload.writeInt16BE(rng.pick([-1, version + 1, api.versions[1] + 1, 0x7fff, rng.int(-32768, 32767)]), 2)
    how = `version set to ${payload.readInt16BE(2)}`
  }
  let declared = payload.length
  if (rng.chance(0.04)) {
    declared = rng.pick([payload.length + rng.int(1, 8), Math.max(0, payload.length - rng.int(1, 4)), 0, 0x7fffffff, -1, MAX_FRAME_BYTES + 1, 90 * MiB])
    how += `, size prefix ${declared} for ${payload.length} bytes`
  }
  return { bytes: sizePrefixed(payload, declared), what: `${api.name} v${version} (${how})` }
}

function randomFrame(rng: Rng): Case {
  if (rng.chance(0.5)) {
    const api = rng.pick(allApis)
    const version = rng.pick(servedVersions(api))
    const header = Buffer.alloc(10)
    header.writeInt16BE(api.key, 0)
    header.writeInt16BE(version, 2)
    header.writeInt32BE(nextCorrelationId++, 4)
    header.writeInt16BE(-1, 8)
    return { bytes: sizePrefixed(Buffer.concat([header, rng.bytes(rng.int(0, 200))])), what: `${api.name} v${version} header, random body` }
  }
  return { bytes: sizePrefixed(rng.bytes(rng.int(0, 64))), what: 'random frame' }
}

function oneCase(rng: Rng): Case {
  const roll = rng.float()
  if (roll < 0.08) return randomFrame(rng)
  if (roll < 0.1) return { bytes: rng.bytes(rng.int(1, 64)), what: 'random raw bytes' }
  return mutatedRequest(rng)
}

// ---------------------------------------------------------------------------------------------
// Predicting what the broker must do with a byte stream, with its own framing and parseRequest

type Answer = { kind: 'answer'; api: Api; version: number; correlationId: number; v0ApiVersions: boolean; what: string }
type Outcome = Answer | { kind: 'silent' | 'close' | 'incomplete'; what: string }

/** Outcomes of the frames in `cases`, sent back to back on one connection, in order. */
function predict(cases: readonly Case[]): Outcome[] {
  const splitter = new FrameSplitter(MAX_FRAME_BYTES)
  const outcomes: Outcome[] = []
  for (const c of cases) {
    let frames: Buffer[]
    try {
      frames = splitter.push(c.bytes)
    } catch {
      outcomes.push({ kind: 'close', what: `${c.what}: bad frame size` })
      return outcomes
    }
    for (const frame of frames) {
      let parsed
      try {
        parsed = parseRequest(frame, handlerTable)
      } catch (err) {
        if (!(err instanceof ProtocolViolation)) throw new Error(`parseRequest threw ${String(err)} (a decoder bug) for ${c.what}: ${frame.toString('hex')}`)
        outcomes.push({ kind: 'close', what: `${c.what}: ${err.message}` })
        return outcomes
      }
      if ('unsupportedApiVersions' in parsed) {
        outcomes.push({ kind: 'answer', api: ApiVersions as unknown as Api, version: 0, correlationId: parsed.unsupportedApiVersions, v0ApiVersions: true, what: c.what })
        continue
      }
      const { entry, apiVersion, correlationId, body } = parsed
      if (entry.api.key === Produce.key && (body as { acks: number }).acks === 0) outcomes.push({ kind: 'silent', what: c.what })
      else outcomes.push({ kind: 'answer', api: entry.api, version: apiVersion, correlationId, v0ApiVersions: false, what: c.what })
    }
  }
  if (splitter.midFrame) outcomes.push({ kind: 'incomplete', what: `${splitter.buffered} bytes of an incomplete frame` })
  return outcomes
}

/**
 * Partitions a CreateTopics or CreatePartitions case would create if the broker accepted it. Such
 * requests are legal up to 10,000 partitions a topic, and each partition costs the broker a file
 * descriptor, about 12 KiB and 1.5 ms of file creation, serialised with every other topic change;
 * mutated counts reach thousands, which would turn the run into a disk benchmark.
 */
function partitionsAskedFor(c: Case): number {
  const splitter = new FrameSplitter(MAX_FRAME_BYTES)
  let total = 0
  try {
    for (const frame of splitter.push(c.bytes)) {
      const parsed = parseRequest(frame, handlerTable)
      if (!('entry' in parsed)) continue
      const body = parsed.body as { topics?: { numPartitions?: number; count?: number; assignments?: unknown[] | null }[] }
      if (parsed.entry.api.key === 19 || parsed.entry.api.key === 37) {
        for (const t of body.topics ?? []) total += Math.max(t.assignments?.length ?? 0, t.numPartitions ?? 0, t.count ?? 0)
      }
    }
  } catch {
    return 0 // refused before any handler runs
  }
  return total
}

interface Plan {
  /** Frames the broker must answer (or, for acks=0, accept in silence). */
  head: Buffer
  /** A case it must refuse, if any: sent after the answers arrived, or with the rest (`together`). */
  tail: Buffer
  together: boolean
  cases: number
  outcomes: Outcome[]
  sent: Case[]
  /** How many of the outcomes are answers to the head. */
  headAnswers: number
}

/** Cases the broker must refuse, kept to end later connections with. */
const refusals: Case[] = []

/**
 * A connection's worth of cases: a few the broker must answer, then (usually) one it must refuse,
 * which ends the connection. Without the reordering nearly every connection would end at its
 * first mutated frame and the handlers would see few requests. A request that may wait for other
 * group members goes last among the answered ones, as nothing behind it can be answered first.
 * The refused case is mostly sent once the answers are in (so they can all be checked), and
 * sometimes right behind them (so the broker closes with requests in flight).
 */
function planConnection(rng: Rng, budget: number): Plan {
  const answered: Case[] = []
  const wanted = Math.min(budget, rng.int(1, 12))
  const refuse = rng.chance(0.8)
  const parkable = (c: Case) => predict([c]).some((o) => o.kind === 'answer' && PARKABLE.has(o.api.key))
  while (answered.length < wanted - (refuse ? 1 : 0)) {
    const c = oneCase(rng)
    if (partitionsAskedFor(c) > MAX_NEW_PARTITIONS) continue
    if (predict([c]).every((o) => o.kind === 'answer' || o.kind === 'silent')) answered.push(c)
    else if (refusals.length < 50) refusals.push(c)
  }
  const cases = [...answered.filter((c) => !parkable(c)), ...answered.filter(parkable)]
  let tail: Case | undefined
  if (refuse) {
    tail = refusals.pop()
    while (!tail) {
      const candidate = oneCase(rng)
      if (predict([candidate]).some((o) => o.kind === 'close' || o.kind === 'incomplete')) tail = candidate
    }
  }
  return {
    head: Buffer.concat(cases.map((c) => c.bytes)),
    tail: tail?.bytes ?? Buffer.alloc(0),
    together: rng.chance(0.3),
    cases: cases.length + (tail ? 1 : 0),
    sent: tail ? [...cases, tail] : cases,
    outcomes: predict(tail ? [...cases, tail] : cases),
    headAnswers: predict(cases).filter((o) => o.kind === 'answer').length,
  }
}

// ---------------------------------------------------------------------------------------------
// Running a connection and judging what came back

const totals = { cases: 0, connections: 0, closedByBroker: 0, closedByReadTimeout: 0, responses: 0, parked: 0, silent: 0 }
const failures: string[] = []

function findUnknownServerError(value: unknown, path = ''): string | undefined {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return undefined
  for (const [k, v] of Object.entries(value)) {
    if (k === 'errorCode' && v === ErrorCode.UNKNOWN_SERVER_ERROR) return `${path}/${k}`
    const found = findUnknownServerError(v, `${path}/${k}`)
    if (found) return found
  }
  return undefined
}

/** Returns a failure description, or undefined when the response is what the request is owed. */
function judge(frame: Buffer, expected: Answer): string | undefined {
  try {
    const r = new Reader(frame)
    const { api, version } = expected
    const correlationId = readResponseHeader(r, !expected.v0ApiVersions && responseHeaderIsFlexible(api.key, api.isFlexible(version)))
    const body = api.decodeResponse(version, r)
    if (correlationId !== expected.correlationId) return `correlation id ${correlationId}, expected ${expected.correlationId}`
    if (r.remaining !== 0) return `${r.remaining} bytes left after the ${api.name} v${version} response`
    if (expected.v0ApiVersions && (body as { errorCode: number }).errorCode !== ErrorCode.UNSUPPORTED_VERSION) return 'ApiVersions fallback without UNSUPPORTED_VERSION'
    const unknown = findUnknownServerError(body)
    if (unknown) return `UNKNOWN_SERVER_ERROR at ${unknown}`
  } catch (err) {
    return `response does not decode: ${String(err)}`
  }
  return undefined
}

async function runConnection(plan: Plan): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port: broker.port })
  openSockets.add(socket)
  const splitter = new FrameSplitter(1 << 30)
  const received: Buffer[] = []
  let wake: (() => void) | undefined
  let closed = false
  socket.on('error', () => {})
  socket.on('data', (chunk: Buffer) => {
    received.push(...splitter.push(chunk))
    wake?.()
  })
  socket.on('close', () => {
    closed = true
    wake?.()
  })
  const waitUntil = async (done: () => boolean, timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs
    while (!done()) {
      const left = deadline - Date.now()
      if (left <= 0) return false
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return true
  }
  const stop = plan.outcomes.findIndex((o) => o.kind === 'close' || o.kind === 'incomplete')
  const owed = stop < 0 ? plan.outcomes : plan.outcomes.slice(0, stop)
  const expected = owed.filter((o): o is Answer => o.kind === 'answer')
  const describe = () =>
    [...plan.outcomes.map((o) => `${o.kind}: ${o.what}`), ...plan.sent.map((c) => `sent ${c.what}: ${c.bytes.subarray(0, 300).toString('hex')}`)].join('\n  ')
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    totals.connections++
    totals.cases += plan.cases
    totals.silent += owed.filter((o) => o.kind === 'silent').length
    socket.write(plan.together ? Buffer.concat([plan.head, plan.tail]) : plan.head)
    if (!plan.together || stop < 0) {
      // Every answer to the head is owed, in order.
      for (let i = 0; i < plan.headAnswers; i++) {
        const parkable = PARKABLE.has(expected[i]!.api.key)
        await waitUntil(() => received.length > i || closed, parkable ? 2_000 : 20_000)
        if (received.length > i) continue
        if (closed) failures.push(`the broker closed a connection owed ${plan.headAnswers - i} more answers:\n  ${describe()}`)
        else if (parkable) totals.parked++
        else failures.push(`no answer within 20 s to ${expected[i]!.what}:\n  ${describe()}`)
        break
      }
      if (!plan.together && plan.tail.length > 0 && !closed) socket.write(plan.tail)
    }
    if (stop >= 0) {
      const ending = plan.outcomes[stop]!
      const limit = ending.kind === 'incomplete' ? READ_TIMEOUT_MS + 10_000 : 10_000
      if (!(await waitUntil(() => closed, limit))) failures.push(`connection not closed within ${limit} ms after ${ending.kind}:\n  ${describe()}`)
      else {
        totals.closedByBroker++
        if (ending.kind === 'incomplete') totals.closedByReadTimeout++
      }
    }
    if (received.length > expected.length) failures.push(`${received.length} answers for ${expected.length} answerable requests:\n  ${describe()}`)
    for (let i = 0; i < Math.min(received.length, expected.length); i++) {
      totals.responses++
      const problem = judge(received[i]!, expected[i]!)
      if (problem) failures.push(`${expected[i]!.what}: ${problem}:\n  ${describe()}\n  response ${received[i]!.subarray(0, 256).toString('hex')}`)
    }
  } finally {
    socket.destroy()
    openSockets.delete(socket)
  }
}

// ---------------------------------------------------------------------------------------------

const BUG_LINES = ['request handler failed', 'unexpected error in request handler']
function bugLines(log: string): string[] {
  return log.split('\n').filter((line) => BUG_LINES.some((b) => line.includes(b)))
}

async function assertHealthy(client: RawClient): Promise<void> {
  const metadata = await client.request(Metadata, 8, { topics: KEPT.map(({ topic }) => ({ name: topic })), allowAutoTopicCreation: false })
  for (const [i, { partitions }] of KEPT.entries()) {
    assert.equal(metadata.topics[i]!.errorCode, ErrorCode.NONE)
    assert.equal(metadata.topics[i]!.partitions.length, partitions)
  }
  const fetched = await client.request(Fetch, 11, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: MiB,
    topics: [{ topic: KEPT[0]!.topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: MiB }] }],
    forgottenTopicsData: [],
  })
  const partition = fetched.responses[0]!.partitions[0]!
  assert.equal(partition.errorCode, ErrorCode.NONE)
  assert.equal(partition.highWatermark, BigInt(KEPT_RECORDS))
  assert.ok((partition.records?.length ?? 0) > 0, 'the healthy fetch returns the kept records')
}

test('mutated requests of every API and version, random frames and random bytes leave the broker serving, correct and bounded', { timeout: 240_000 }, async () => {
  const client = healthy!
  const pid = broker.pid!
  const rng = new Rng(seed)
  await assertHealthy(client)
  const baseline = rssBytes(pid)
  const sampler = new RssSampler(pid, 100)
  const started = Date.now()

  let running = true
  let healthChecks = 0
  let slowestCheck = 0
  const healthLoop = (async () => {
    while (running) {
      const t0 = Date.now()
      try {
        await assertHealthy(client)
      } catch (err) {
        failures.push(`the healthy connection was disturbed: ${String(err)}`)
        return
      }
      healthChecks++
      slowestCheck = Math.max(slowestCheck, Date.now() - t0)
      await delay(250)
    }
  })()

  let planned = 0
  const worker = async () => {
    while (planned < CASES && failures.length < 20) {
      const plan = planConnection(rng, CASES - planned)
      planned += plan.cases
      await runConnection(plan)
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, worker))
  running = false
  await healthLoop
  const seconds = (Date.now() - started) / 1000

  await assertHealthy(client)
  const all = await client.request(Metadata, 8, { topics: null, allowAutoTopicCreation: false })
  const partitions = all.topics.reduce((n, t) => n + t.partitions.length, 0)
  await delay(500)
  sampler.sample()
  const peak = sampler.stop()
  const after = rssBytes(pid)
  process.stdout.write(
    `# live-fuzz: seed ${seed}: ${totals.cases} cases over ${totals.connections} connections in ${seconds.toFixed(1)} s ` +
      `(${Math.round(totals.cases / seconds)} cases/s); ${totals.responses} responses checked, ${totals.silent} acks=0 produces, ` +
      `${totals.closedByBroker} connections closed by the broker (${totals.closedByReadTimeout} by the read timeout), ${totals.parked} parked joins; ` +
      `${healthChecks} health checks (slowest ${slowestCheck} ms); ${all.topics.length} topics with ${partitions} partitions at the end; RSS baseline ${mib(baseline)}, peak ${mib(peak)}, after ${mib(after)}\n`,
  )

  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failures (seed ${seed}); the broker logged:\n${bugLines(broker.log).slice(0, 5).join('\n')}`)
  assert.deepEqual(bugLines(broker.log), [], 'no handler threw')
  assert.ok(totals.cases >= CASES, `ran ${totals.cases} cases`)
  assert.ok(totals.closedByBroker > 0 && totals.responses > 0, 'cases were both answered and refused')
  assert.ok(healthChecks > 0, 'the healthy connection was checked during the run')
  process.stdout.write(`# ${totalsLine({ fuzzedInputs: totals.cases })}\n`)
  assert.ok(peak < baseline + RSS_SLACK, `peak RSS ${mib(peak)} over baseline ${mib(baseline)} + ${mib(RSS_SLACK)}`)

  for (const { topic, partitions } of KEPT) {
    for (let p = 0; p < partitions; p++) assert.deepEqual(await partitionValues(client, topic, p), keptValues(topic, p), `${topic}-${p} intact`)
  }
})
