// The broker's memory under large fetches, measured on a broker in a child process (its RSS from
// /proc). Guards exercised:
// - fetchMaxBytes (Kafka's fetch.max.bytes): a fetch asking for 2 GiB across 200 partitions of
//   2 MiB each gets at most the cap of record data, and a consumer still reads everything by
//   asking again from where the answer ended;
// - one fetch at a time per connection, and none started while its answers wait to be written:
//   a client that pipelines fetches and never reads its responses holds the broker to about one
//   answer plus the write backlog limit, however many it sends.
// The data is written with --flush never: the setup is 400 MiB, and durability is not under test.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { Fetch, Produce } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { writeRequestHeader } from '../../src/protocol/headers.ts'
import { Writer } from '../../src/protocol/primitives.ts'
import { createTopic } from '../helpers/admin.ts'
import { buildBatch, nextOffsetAfter } from '../helpers/batches.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { mib, MiB, RssSampler, rssBytes } from '../helpers/process-memory.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { waitFor } from '../helpers/wait.ts'

const PARTITIONS = 200
const RECORD_BYTES = 64 * 1024
const RECORDS_PER_BATCH = 4
const BATCHES_PER_PARTITION = 8 // 2 MiB a partition, 400 MiB in all
const CAP = 16 * MiB
const CONSUMERS = 3
const HUGE = 0x7fffffff // 2 GiB - 1, the most an int32 max_bytes can ask for
const topic = 'wide'

const dir = tempDir('tideway-fetch-memory-')
const broker = new BrokerProcess(dir.path, ['--fetch-max-bytes', String(CAP), '--flush', 'never', '--max-fetch-wait-ms', '100'])
const clients: RawClient[] = []

before(async () => {
  await broker.start()
  await createTopic(broker.bootstrap, topic, PARTITIONS)
  const producer = await RawClient.connect(broker.bootstrap)
  clients.push(producer)
  const value = Buffer.alloc(RECORD_BYTES, 0x61)
  const { batch } = buildBatch(Array.from({ length: RECORDS_PER_BATCH }, () => ({ value })))
  const records = Buffer.concat(Array.from({ length: BATCHES_PER_PARTITION }, () => batch))
  for (let first = 0; first < PARTITIONS; first += 20) {
    const partitionData = Array.from({ length: 20 }, (_, i) => ({ index: first + i, records }))
    const answer = await producer.request(Produce, 8, { acks: 1, timeoutMs: 30_000, topicData: [{ name: topic, partitionData }] }, 60_000)
    for (const p of answer.responses[0]!.partitionResponses) assert.equal(p.errorCode, ErrorCode.NONE)
  }
})

after(async () => {
  for (const client of clients) client.close()
  await broker.kill9()
  dir.remove()
})

const RECORDS_PER_PARTITION = RECORDS_PER_BATCH * BATCHES_PER_PARTITION

/** Reads the whole topic with fetches asking for 2 GiB; returns the largest answer's record bytes. */
async function readEverything(client: RawClient): Promise<{ largest: number; fetches: number }> {
  const offsets = new Array<bigint>(PARTITIONS).fill(0n)
  let largest = 0
  let fetches = 0
  while (offsets.some((o) => o < BigInt(RECORDS_PER_PARTITION))) {
    const response = await client.request(Fetch, 11, {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: HUGE,
      topics: [{ topic, partitions: offsets.map((fetchOffset, partition) => ({ partition, fetchOffset, partitionMaxBytes: HUGE })) }],
      forgottenTopicsData: [],
    }, 60_000)
    fetches++
    let bytes = 0
    for (const p of response.responses[0]!.partitions) {
      assert.equal(p.errorCode, ErrorCode.NONE)
      const records = p.records ?? Buffer.alloc(0)
      bytes += records.length
      const next = nextOffsetAfter(records)
      if (next !== undefined) offsets[p.partitionIndex] = next
    }
    assert.ok(bytes > 0, 'every fetch makes progress')
    largest = Math.max(largest, bytes)
  }
  assert.deepEqual(offsets, new Array<bigint>(PARTITIONS).fill(BigInt(RECORDS_PER_PARTITION)))
  return { largest, fetches }
}

test('guard write backlog: a client that pipelines fetches and never reads holds the broker to about one answer', { timeout: 120_000 }, async () => {
  const pid = broker.pid!
  const baseline = rssBytes(pid)
  const sampler = new RssSampler(pid, 20)
  const socket = connect({ host: '127.0.0.1', port: broker.port })
  socket.on('error', () => {})
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  socket.pause() // never read: responses pile up in the broker's socket buffer
  const frames: Buffer[] = []
  for (let correlationId = 1; correlationId <= 300; correlationId++) {
    const w = new Writer()
    w.int32(0)
    writeRequestHeader(w, { apiKey: Fetch.key, apiVersion: 11, correlationId, clientId: 'never-reads' }, false)
    Fetch.encodeRequest(11, w, {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: HUGE,
      topics: [{ topic, partitions: Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, fetchOffset: 0n, partitionMaxBytes: HUGE })) }],
      forgottenTopicsData: [],
    })
    const frame = w.toBuffer()
    frame.writeInt32BE(frame.length - 4, 0)
    frames.push(frame)
  }
  socket.write(Buffer.concat(frames))
  // Let the broker do all it will: the peak settles once it has stopped working for this client.
  let last = 0
  await waitFor(async () => {
    await delay(1000)
    const settled = sampler.peak === last
    last = sampler.peak
    return settled
  }, { timeoutMs: 30_000, intervalMs: 0, what: 'the broker RSS to settle' })
  const peak = sampler.stop()
  const healthy = await RawClient.connect(broker.bootstrap)
  clients.push(healthy)
  const answer = await healthy.request(Fetch, 11, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: MiB,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: MiB }] }],
    forgottenTopicsData: [],
  })
  assert.equal(answer.responses[0]!.partitions[0]!.errorCode, ErrorCode.NONE, 'other connections are served meanwhile')
  // Once the client reads, the broker carries on with the fetches it held back.
  let received = 0
  socket.on('data', (chunk: Buffer) => (received += chunk.length))
  socket.resume()
  await waitFor(() => received > 5 * CAP, { timeoutMs: 30_000, what: 'answers to flow once the client reads' })
  socket.destroy()
  const bound = baseline + 32 * MiB + 4 * CAP + 64 * MiB
  process.stdout.write(`# fetch-memory: 300 pipelined 2 GiB fetches never read: broker RSS baseline ${mib(baseline)}, peak ${mib(peak)} (bound ${mib(bound)})\n`)
  assert.ok(peak < bound, `peak RSS ${mib(peak)} over ${mib(bound)}`)
})

test('guard fetchMaxBytes: concurrent 2 GiB fetches over 200 partitions get at most the cap each, read everything, and keep the broker small', { timeout: 120_000 }, async () => {
  const pid = broker.pid!
  const consumers = await Promise.all(Array.from({ length: CONSUMERS }, () => RawClient.connect(broker.bootstrap)))
  clients.push(...consumers)
  const baseline = rssBytes(pid)
  const sampler = new RssSampler(pid, 20)
  const started = Date.now()
  const results = await Promise.all(consumers.map(readEverything))
  const peak = sampler.stop()
  const bound = baseline + CONSUMERS * CAP * 4 + 64 * MiB
  process.stdout.write(
    `# fetch-memory: ${CONSUMERS} consumers each read ${PARTITIONS} partitions x ${mib(RECORDS_PER_PARTITION * RECORD_BYTES)} in ` +
      `${results.map((r) => r.fetches).join('/')} fetches (${Date.now() - started} ms); largest answer ${mib(Math.max(...results.map((r) => r.largest)))} ` +
      `(cap ${mib(CAP)}); broker RSS baseline ${mib(baseline)}, peak ${mib(peak)} (bound ${mib(bound)})\n`,
  )
  for (const r of results) assert.ok(r.largest <= CAP, `an answer held ${r.largest} record bytes, over the ${CAP} cap`)
  assert.ok(peak < bound, `peak RSS ${mib(peak)} over ${mib(bound)}`)
})
