// /metrics and the health endpoints of a broker process, read by what operators use: a real
// Prometheus server (Debian's, a private instance on a free port) scraping every second, and
// promtool's linter on the exposition text. The counters must move by exactly the work the
// test does with real clients: records and bytes produced with KafkaJS, bytes fetched with kcat,
// a group's lag after committing part of a partition, a dedup hit for a repeated idempotency
// key, an error code for a fetch of a partition that does not exist, a protocol violation for a
// garbage frame, and fsyncs for every acknowledged produce.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { Fetch } from '../../src/protocol/apis/index.ts'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { requireKcat, requireTool, run } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs
const PROMETHEUS = '/usr/bin/prometheus'
const PROMTOOL = '/usr/bin/promtool'

const dir = tempDir('tideway-metrics-')
const broker = new BrokerProcess(join(dir.path, 'broker'))
let prometheus: ChildProcess | undefined
let prometheusUrl = ''
let prometheusLog = ''

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

before(async () => {
  const hint = 'install it with `apt-get install prometheus` (bash .ci/run does this)'
  requireTool(PROMETHEUS, ['--version'], hint)
  requireTool(PROMTOOL, ['--version'], hint)
  requireKcat()
  await broker.start()
  const target = new URL(broker.httpUrl!).host
  const port = await freePort()
  const config = join(dir.path, 'prometheus.yml')
  writeFileSync(
    config,
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: tideway\n    static_configs:\n      - targets: ['${target}']\n`,
  )
  mkdirSync(join(dir.path, 'tsdb'))
  prometheus = spawn(
    PROMETHEUS,
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir.path, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  prometheus.stderr!.setEncoding('utf8').on('data', (chunk: string) => (prometheusLog = (prometheusLog + chunk).slice(-20_000)))
  prometheusUrl = `http://127.0.0.1:${port}`
  await waitFor(async () => (await fetch(`${prometheusUrl}/-/ready`).catch(() => null))?.ok === true, {
    timeoutMs: 30_000,
    intervalMs: 200,
    what: 'prometheus to be ready',
  }).catch((err: Error) => assert.fail(`${err.message}:\n${prometheusLog}`))
})

after(async () => {
  prometheus?.kill('SIGKILL')
  await broker.stop().catch(() => {})
  dir.remove()
})

/** Samples of one scrape: `name{labels}` → value. */
async function scrape(): Promise<Map<string, number>> {
  const response = await fetch(`${broker.httpUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  const samples = new Map<string, number>()
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    samples.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return samples
}

const sample = (samples: Map<string, number>, key: string) => samples.get(key) ?? 0

/** Sums every sample of a family whose labels include all the given ones. */
function total(samples: Map<string, number>, name: string, labels: Record<string, string | number> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  let sum = 0
  for (const [key, value] of samples) {
    const brace = key.indexOf('{')
    const family = brace < 0 ? key : key.slice(0, brace)
    if (family === name && wanted.every((w) => key.includes(w))) sum += value
  }
  return sum
}

async function promQuery(query: string): Promise<number | null> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`, { signal: AbortSignal.timeout(5_000) })
  const body = (await response.json()) as { status: string; data: { result: { value: [number, string] }[] } }
  assert.equal(body.status, 'success', JSON.stringify(body))
  const first = body.data.result[0]
  return first ? Number(first.value[1]) : null
}

test('health and readiness answer', async () => {
  const health = await fetch(`${broker.httpUrl}/health`)
  assert.equal(health.status, 200)
  assert.deepEqual(await health.json(), { status: 'ok' })
  const ready = await fetch(`${broker.httpUrl}/ready`)
  assert.equal(ready.status, 200)
  assert.equal(((await ready.json()) as { status: string }).status, 'ready')
  assert.equal((await fetch(`${broker.httpUrl}/nothing-here`)).status, 404)
})

test('counters move by the work done, and Prometheus scrapes and parses them', async () => {
  const topic = uniqueName('metrics')
  const dedupTopic = uniqueName('metrics-dedup')
  const group = uniqueName('metrics-group')
  await createTopic(broker.bootstrap, topic, 2)
  await createTopic(broker.bootstrap, dedupTopic, 1, { 'tideway.dedup.enable': 'true' })
  const before = await scrape()

  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'metrics-test', logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ idempotent: true })
  await producer.connect()
  const admin = kafka.admin()
  await admin.connect()
  try {
    // 300 records to each partition, in 30 requests of 10 records each.
    let produceRequests = 0
    for (let i = 0; i < 30; i++) {
      await producer.sendBatch({
        topicMessages: [
          {
            topic,
            messages: Array.from({ length: 20 }, (_, j) => ({ partition: j % 2, key: `k${j}`, value: `value-${i}-${j}` })),
          },
        ],
      })
      produceRequests++
    }
    // The same idempotency key twice: the second is not stored again.
    for (let i = 0; i < 2; i++) {
      await producer.send({ topic: dedupTopic, messages: [{ value: 'charge', headers: { 'idempotency-key': 'order-1' } }] })
      produceRequests++
    }
    // A group that has committed 100 of partition 0's 300 records, and nothing of partition 1.
    await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '100' }] })

    // kcat reads the whole topic: fetched bytes.
    const read = await run('kcat', ['-C', '-b', broker.bootstrap, '-t', topic, '-e', '-q', '-f', '%s\n'], { timeoutMs: 60_000 })
    assert.equal(read.code, 0, read.stderr)
    assert.equal(read.stdout.trim().split('\n').length, 600)

    // A fetch of a partition that does not exist, and a frame that is not Kafka.
    const raw = await RawClient.connect(broker.bootstrap)
    const answer = await raw.request(Fetch, 11, {
      maxWaitMs: 0,
      minBytes: 0,
      topics: [{ topic, partitions: [{ partition: 9, fetchOffset: 0n, partitionMaxBytes: 1024 }] }],
      forgottenTopicsData: [],
    })
    assert.equal(answer.responses[0]!.partitions[0]!.errorCode, 3)
    raw.close()
    const garbage = await RawClient.connect(broker.bootstrap)
    garbage.socket.write(Buffer.from([0, 0, 0, 8, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1]))
    assert.ok(await garbage.closedWithin(5_000), 'the broker closes a connection that sends garbage')

    const after = await scrape()
    const moved = (name: string, labels: Record<string, string | number> = {}) => total(after, name, labels) - total(before, name, labels)

    assert.equal(moved('tideway_produced_records_total', { topic }), 600)
    assert.equal(moved('tideway_produced_records_total', { topic: dedupTopic }), 1, 'the repeat is not counted as stored')
    assert.equal(moved('tideway_dedup_hits_total', { topic: dedupTopic, kind: 'idempotency-key' }), 1)
    assert.ok(moved('tideway_produced_bytes_total', { topic }) > 600 * 'value-0-0'.length, 'batch bytes include every value')
    assert.equal(moved('tideway_requests_total', { api: 'Produce' }), produceRequests)
    assert.equal(moved('tideway_request_duration_seconds_count', { api: 'Produce' }), produceRequests)
    assert.ok(moved('tideway_fetched_bytes_total', { topic }) >= moved('tideway_produced_bytes_total', { topic }), 'kcat read every batch')
    assert.ok(moved('tideway_fsync_duration_seconds_count') >= produceRequests, 'every acknowledged produce waited for an fsync (flush=always)')
    assert.equal(moved('tideway_errors_total', { api: 'Fetch', error: 'UNKNOWN_TOPIC_OR_PARTITION' }), 1)
    assert.equal(moved('tideway_protocol_violations_total'), 1)
    assert.ok(moved('tideway_connections_accepted_total') >= 4)

    assert.equal(sample(after, `tideway_high_watermark{topic="${topic}",partition="0"}`), 300)
    assert.equal(sample(after, `tideway_high_watermark{topic="${topic}",partition="1"}`), 300)
    assert.ok(sample(after, `tideway_log_bytes{topic="${topic}",partition="0"}`) > 300 * 'value-0-0'.length)
    assert.equal(sample(after, `tideway_group_lag{group="${group}",topic="${topic}",partition="0"}`), 200)
    assert.equal(sample(after, `tideway_group_members{group="${group}"}`), 0)
    assert.ok(sample(after, 'tideway_connections') >= 2, 'the producer and admin connections are open')

    // promtool lints what we expose (naming, HELP, TYPE, histogram shape).
    const text = await (await fetch(`${broker.httpUrl}/metrics`)).text()
    const lint = await run(PROMTOOL, ['check', 'metrics'], { input: text, timeoutMs: 20_000 })
    assert.equal(lint.code, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`)

    // Prometheus itself scraped the same numbers, and its functions work on them.
    await waitFor(async () => (await promQuery(`tideway_produced_records_total{topic="${topic}"}`)) === 600, {
      timeoutMs: 20_000,
      intervalMs: 250,
      what: `Prometheus to see 600 records of ${topic}`,
    }).catch((err: Error) => assert.fail(`${err.message}:\n${prometheusLog.slice(-3000)}`))
    assert.equal(await promQuery(`tideway_group_lag{group="${group}",partition="0"}`), 200)
    const p99 = await promQuery('histogram_quantile(0.99, sum by (le) (tideway_fsync_duration_seconds_bucket))')
    assert.ok(p99 !== null && p99 > 0 && p99 <= 10, `fsync p99 from Prometheus: ${p99}`)
    assert.equal(await promQuery('up{job="tideway"}'), 1)
  } finally {
    await producer.disconnect()
    await admin.disconnect()
  }
})
