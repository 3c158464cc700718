// The console's JSON API and its guards, without a browser, against two embedded brokers: one
// with actions on, the saga database and the shared Redis; one read-only whose Redis is a closed
// port and which has no saga database. The data comes from real clients (fixture.ts); a redrive
// is checked by reading the source topic back with KafkaJS and by the SDK consumer handling it.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { request } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { tempDir } from '../helpers/broker-process.ts'
import { embeddedBroker, type EmbeddedBroker } from '../helpers/embedded.ts'
import { waitFor } from '../helpers/wait.ts'
import { CopyHeader } from '../../src/sdk/copies.ts'
import { BIG_VALUE, BINARY_VALUE, readAll, redisReachable, REDIS_URL, required, seed, uniquePrefix, type Seeded } from './fixture.ts'

const dir = tempDir('tideway-console-api-')
let broker: EmbeddedBroker
let readOnly: EmbeddedBroker
let data: Seeded
let noRedis: string | false = false

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

before(async () => {
  noRedis = required(await redisReachable(), `Redis at ${REDIS_URL}`)
  const sagaDb = join(dir.path, 'sagas.db')
  const breakerPrefix = noRedis ? null : uniquePrefix()
  broker = await embeddedBroker({
    consoleActions: true,
    consoleSagaDb: `sqlite:${sagaDb}`,
    ...(breakerPrefix ? { consoleRedis: REDIS_URL, consoleBreakerPrefix: breakerPrefix } : {}),
  })
  readOnly = await embeddedBroker({ consoleRedis: `redis://127.0.0.1:${await closedPort()}` })
  data = await seed(broker.bootstrap, { sagaDb, breakerPrefix })
})

after(async () => {
  await data?.dispose()
  await broker?.dispose()
  await readOnly?.dispose()
  dir.remove()
})

/** fetch() will not send a Host of our choosing. */
function statusWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { host }, timeout: 10_000 }, (res) => {
      res.resume()
      resolve(res.statusCode!)
    })
      .on('error', reject)
      .end()
  })
}

async function get<T = any>(b: EmbeddedBroker, path: string, status = 200): Promise<T> {
  const res = await fetch(b.httpUrl + path, { signal: AbortSignal.timeout(10_000) })
  const body = await res.json()
  assert.equal(res.status, status, `${path}: ${JSON.stringify(body)}`)
  return body as T
}

test('topics list every topic with its partitions, records and size; a topic gives each partition\'s offsets', async () => {
  const topics = await get(broker, '/api/topics')
  const orders = topics.find((t: { name: string }) => t.name === data.orders)
  assert.deepEqual([orders.partitions, orders.records, orders.kind, orders.deadLetters], [2, '5', 'stream', false])
  assert.ok(orders.sizeBytes > BIG_VALUE.length, `size ${orders.sizeBytes}`)
  assert.equal(topics.find((t: { name: string }) => t.name === data.dlt).deadLetters, true)

  const topic = await get(broker, `/api/topics/${data.orders}`)
  assert.deepEqual(topic.partitions.map((p: { partition: number; logStartOffset: string; highWatermark: string }) => [p.partition, p.logStartOffset, p.highWatermark]), [[0, '0', '4'], [1, '0', '1']])
  await get(broker, '/api/topics/no-such-topic', 404)
})

test('a partition\'s records show keys, headers and values as JSON, text or hex, bounded per field and per page', async () => {
  const page = await get(broker, `/api/topics/${data.orders}/partitions/0/records`)
  assert.equal(page.next, '4')
  const [json, binary, text, big] = page.records
  assert.deepEqual(json.key, { as: 'text', data: 'order-1001', size: 10, truncated: false })
  assert.equal(json.value.as, 'json')
  assert.deepEqual(JSON.parse(json.value.data), { orderId: 1001, total: 42.5, items: ['tea', 'cups'] })
  assert.match(json.value.data, /\n {2}"orderId": 1001,\n/, 'pretty-printed')
  assert.deepEqual(json.headers.map((h: { name: string; value: { data: string } }) => [h.name, h.value.data]), [['trace-id', 'trace-abc'], ['source', 'web']])
  assert.deepEqual(binary.value, { as: 'hex', data: BINARY_VALUE.toString('hex'), size: BINARY_VALUE.length, truncated: false })
  assert.deepEqual(text.value, { as: 'text', data: 'plain text <b>not bold</b>', size: 26, truncated: false })
  assert.equal(big.key.as, 'null')
  assert.deepEqual([big.value.as, big.value.data.length, big.value.size, big.value.truncated], ['text', 4096, BIG_VALUE.length, true])

  const hex = await get(broker, `/api/topics/${data.orders}/partitions/0/records?offset=1&limit=2&view=hex`)
  assert.deepEqual(hex.records.map((r: { offset: string }) => r.offset), ['1', '2'])
  assert.equal(hex.next, '3')
  assert.deepEqual(hex.records[1].value, { as: 'hex', data: Buffer.from('plain text <b>not bold</b>').toString('hex'), size: 26, truncated: false })
  const asText = await get(broker, `/api/topics/${data.orders}/partitions/0/records?view=text&limit=1`)
  assert.equal(asText.records[0].value.as, 'text', 'JSON shown as its text when asked')
  assert.deepEqual((await get(broker, `/api/topics/${data.orders}/partitions/0/records?offset=999`)).records, [], 'past the end: an empty page')

  await get(broker, `/api/topics/${data.orders}/partitions/0/records?limit=101`, 400)
  await get(broker, `/api/topics/${data.orders}/partitions/0/records?view=html`, 400)
  await get(broker, `/api/topics/${data.orders}/partitions/0/records?offset=-1`, 400)
  await get(broker, `/api/topics/${data.orders}/partitions/7/records`, 404)
})

test('groups show their state, members with assignments, committed offsets and lag', async () => {
  const groups = await get(broker, '/api/groups')
  const audit = groups.find((g: { group: string }) => g.group === data.auditGroup)
  assert.deepEqual([audit.state, audit.members, audit.lag], ['Empty', 0, '3'])
  const billing = groups.find((g: { group: string }) => g.group === data.paymentsGroup)
  assert.deepEqual([billing.state, billing.members], ['Stable', 1])

  const detail = await get(broker, `/api/groups/${encodeURIComponent(data.auditGroup)}`)
  assert.deepEqual(detail.partitions, [{ topic: data.orders, partition: 0, committedOffset: '1', logEndOffset: '4', lag: '3', memberId: null }])
  const live = await get(broker, `/api/groups/${encodeURIComponent(data.paymentsGroup)}`)
  assert.deepEqual(live.members[0].assignment, [{ topic: data.payments, partitions: [0] }])
  assert.deepEqual(live.partitions.map((p: { topic: string; lag: string; memberId: string }) => [p.topic, p.lag, p.memberId]), [[data.payments, '0', live.members[0].memberId]])
  await get(broker, '/api/groups/nobody', 404)
})

test('dead-letter topics list what is not redriven yet; each letter says where and why it failed', async () => {
  const dlts = await get(broker, '/api/dead-letters')
  assert.deepEqual(dlts, [{ topic: data.dlt, source: data.payments, partitions: 1, records: '1', pending: '1' }])
  const page = await get(broker, `/api/dead-letters/${data.dlt}`)
  const [letter] = page.letters
  assert.deepEqual(letter.source, { topic: data.payments, partition: 0, offset: '1' })
  assert.deepEqual([letter.group, letter.errorClass, letter.attempts, letter.redriven], [data.paymentsGroup, 'permanent', 1, false])
  assert.match(letter.error, /cannot settle poison/)
  assert.deepEqual([letter.key.data, letter.value.data], ['pay-2', 'poison'])
  await get(broker, `/api/dead-letters/${data.orders}`, 404)
})

test('sagas list their instances and show each step; breakers show their state from Redis', async (t) => {
  const sagas = await get(broker, '/api/sagas')
  assert.equal(sagas.error, null)
  assert.deepEqual(sagas.data.map((i: { instanceId: string; status: string }) => [i.instanceId, i.status]), [['order-1001', 'completed'], ['order-1002', 'compensated']])
  const failed = await get(broker, '/api/sagas?status=compensated')
  assert.deepEqual(failed.data.map((i: { instanceId: string }) => i.instanceId), ['order-1002'])
  const saga = await get(broker, '/api/sagas/order-1002')
  assert.deepEqual(saga.data.steps.map((s: { phase: string; name: string; status: string }) => `${s.phase} ${s.name} ${s.status}`), ['invoke reserve-stock done', 'invoke charge-card failed', 'compensate reserve-stock done'])
  assert.equal(saga.data.failedStep, 'charge-card')
  assert.equal((await get(broker, '/api/sagas/nope')).data, null)

  if (noRedis) return t.skip(noRedis)
  const breakers = await get(broker, '/api/breakers')
  assert.equal(breakers.error, null)
  assert.deepEqual(breakers.data.breakers.map((b: { breaker: string; state: string; calls: number; failures: number }) => [b.breaker, b.state, b.calls, b.failures]), [
    ['checkout->payments', 'open', 2, 2],
    ['checkout->stock', 'closed', 3, 1],
  ])
})

test('a source that is not configured says how to configure it; an unreachable Redis is reported, not waited for', async () => {
  const sagas = await get(readOnly, '/api/sagas')
  assert.deepEqual([sagas.configured, sagas.hint], [false, 'start the broker with --console-saga-db sqlite:PATH or --console-saga-db postgres://… (and --console-saga-schema for a PostgreSQL schema)'])
  const breakers = await get(readOnly, '/api/breakers')
  assert.equal(breakers.configured, true)
  assert.match(breakers.error, /^cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/? \(connect ECONNREFUSED/)
})

test('the page is served with a strict CSP; it carries the action token only when actions are on', async () => {
  const page = await fetch(`${readOnly.httpUrl}/`)
  assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/)
  const html = await page.text()
  assert.match(html, /<meta name="tideway-actions" content="off">/)
  assert.doesNotMatch(html, /tideway-token/)
  assert.match(await (await fetch(`${broker.httpUrl}/`)).text(), /<meta name="tideway-token" content="[\w-]{32}">/)
  assert.equal(await statusWithHost(`${broker.httpUrl}/`, 'evil.example:8080'), 403, 'a DNS-rebound Host is refused')
  assert.equal(await statusWithHost(`${broker.httpUrl}/api/topics`, `localhost:${new URL(broker.httpUrl!).port}`), 200)
  assert.equal((await fetch(`${broker.httpUrl}/console.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8')
})

test('a redrive is refused read-only, cross-site or without the token; with them it sends the record back and moves the cursor', { timeout: 60_000 }, async () => {
  const post = (b: EmbeddedBroker, headers: Record<string, string>, body: unknown = { all: true }) =>
    fetch(`${b.httpUrl}/api/dead-letters/${data.dlt}/redrive`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
  const token = /<meta name="tideway-token" content="([\w-]+)">/.exec(await (await fetch(`${broker.httpUrl}/`)).text())![1]!
  const own = { origin: broker.httpUrl!, 'x-tideway-console-token': token }

  const off = await post(readOnly, { origin: readOnly.httpUrl! })
  assert.deepEqual([off.status, await off.json()], [403, { error: 'console actions are off: start the broker with --console-actions to redrive dead letters from the console' }])
  const crossSite = await post(broker, { ...own, origin: 'http://evil.example' })
  assert.equal(crossSite.status, 403)
  assert.match(((await crossSite.json()) as { error: string }).error, /cross-site request refused/)
  assert.equal((await post(broker, { ...own, 'x-tideway-console-token': 'x'.repeat(32) })).status, 403)
  assert.equal((await post(broker, { origin: broker.httpUrl! })).status, 403, 'no token')
  assert.equal((await post(broker, own, { partition: 0 })).status, 400)
  assert.equal((await get(broker, '/api/dead-letters'))[0].pending, '1', 'nothing refused has moved')

  const done = await post(broker, own)
  const result = (await done.json()) as { sent: number; skipped: number; to: unknown[] }
  assert.equal(done.status, 200, JSON.stringify(result))
  assert.deepEqual([result.sent, result.skipped, result.to], [1, 0, [{ topic: data.payments, partition: 0, records: 1 }]])

  const records = await readAll(broker.bootstrap, data.payments, 4)
  const back = records.find((r) => r.headers?.[CopyHeader.redrivenFrom] !== undefined)!
  assert.deepEqual([back.key?.toString(), back.value?.toString(), back.headers![CopyHeader.redrivenFrom]!.toString()], ['pay-2', 'poison', `${data.dlt}:0:0`])
  await waitFor(() => data.handled.includes('poison'), { timeoutMs: 20_000, what: 'the redriven record handled' })
  assert.equal((await get(broker, '/api/dead-letters'))[0].pending, '0')
  assert.equal((await get(broker, `/api/dead-letters/${data.dlt}`)).letters[0].redriven, true)
  const again = (await (await post(broker, own)).json()) as { sent: number }
  assert.equal(again.sent, 0, 'a second redrive of all sends nothing back twice')
})
