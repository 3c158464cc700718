// The console in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// against a broker process started with --console-actions, --console-saga-db and
// --console-redis: every page loads with the live data of fixture.ts, browsing a topic shows the
// records the test produced (a value with markup shows as text, never as markup), and a redrive
// clicked on the dead-letter page brings the record back to its topic, as a KafkaJS reader and the
// SDK consumer see. A second, read-only broker shows no redrive button and refuses the POST.
// Screenshots of the main pages go to test-output/console/.
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { CopyHeader } from '../../src/sdk/copies.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { createTopic } from '../helpers/admin.ts'
import { waitFor } from '../helpers/wait.ts'
import { CHROMIUM, hasChromium, readAll, redisReachable, REDIS_URL, required, seed, uniquePrefix, type Seeded } from './fixture.ts'

const SHOTS = fileURLToPath(new URL('../../test-output/console/', import.meta.url))
const skip = required(hasChromium(), `Chromium at ${CHROMIUM}`) || required(await redisReachable(), `Redis at ${REDIS_URL}`)

const dir = tempDir('tideway-console-browser-')
const breakerPrefix = uniquePrefix()
const broker = new BrokerProcess(join(dir.path, 'data'), [
  '--console-actions',
  '--console-saga-db', `sqlite:${join(dir.path, 'sagas.db')}`,
  '--console-redis', REDIS_URL,
  '--console-breaker-prefix', breakerPrefix,
])
let readOnly: EmbeddedBroker | undefined
let data: Seeded | undefined
let context: BrowserContext | undefined
let page: Page

before(async () => {
  if (skip) return
  mkdirSync(SHOTS, { recursive: true })
  await broker.start()
  data = await seed(broker.bootstrap, { sagaDb: join(dir.path, 'sagas.db'), breakerPrefix })
  context = await chromium.launchPersistentContext(join(dir.path, 'chromium'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 900 },
    timeout: 20_000,
  })
  context.setDefaultTimeout(10_000)
  page = await context.newPage()
  page.on('dialog', (dialog) => void dialog.accept())
})

after(async () => {
  await context?.close()
  await data?.dispose()
  await broker.stop()
  await readOnly?.dispose()
  dir.remove()
})

/**
 * Opens a view by its hash and waits for it to have rendered. From a blank page, so the wait
 * cannot be met by the view an earlier test left on screen (a hash change alone reuses it).
 */
async function open(hash: string, view: string): Promise<void> {
  await page.goto('about:blank')
  await page.goto(`${broker.httpUrl}/#${hash}`)
  await page.locator(`main[data-view="${view}"]`).waitFor()
}

async function shot(name: string): Promise<void> {
  const path = join(SHOTS, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  console.log(`screenshot: ${path}`)
}

const main = () => page.locator('main')

test('the topics pages show each topic, its partitions\' offsets and the records produced, values as JSON, text or hex', { skip, timeout: 60_000 }, async () => {
  const { orders, dlt } = data!
  await open('/topics', 'topics')
  const row = main().locator('tr', { hasText: orders })
  assert.match(await row.innerText(), new RegExp(`${orders}\\s+stream\\s+2\\s+5\\s`))
  assert.match(await main().locator('tr', { hasText: dlt }).innerText(), /dead letters/)
  assert.equal(await page.locator('nav a.active').innerText(), 'Topics')
  await shot('topics')

  await main().getByRole('link', { name: orders }).click()
  await page.locator('main[data-view="topic"]').waitFor()
  assert.match(await main().locator('tbody tr').nth(0).innerText(), /^0\s+0\s+4\s+4\s/)
  assert.match(await main().locator('tbody tr').nth(1).innerText(), /^1\s+0\s+1\s+1\s/)
  await shot('topic')

  await main().getByRole('link', { name: 'Browse records' }).first().click()
  await page.locator('main[data-view="records"]').waitFor()
  const records = main().locator('tbody tr')
  assert.equal(await records.count(), 4)
  const first = await records.nth(0).innerText()
  assert.match(first, /order-1001/)
  assert.match(first, /trace-id: trace-abc/)
  assert.match(first, /"orderId": 1001,\n\s*"total": 42.5/)
  assert.match(await records.nth(1).innerText(), /009fff1080/)
  assert.match(await records.nth(2).innerText(), /plain text <b>not bold<\/b>/)
  assert.equal(await main().locator('pre b').count(), 0, 'a value\'s markup is text, not elements')
  assert.match(await records.nth(3).innerText(), /cut: the whole field is 10000 bytes/)
  await shot('records')

  await main().getByRole('button', { name: 'hex' }).click()
  await page.waitForURL(/view=hex/)
  await page.locator('main[data-view="records"] tr[data-offset="0"] .v-hex').first().waitFor()
  assert.match(await main().locator('tr[data-offset="0"]').innerText(), new RegExp(Buffer.from('{"orderId":1001').toString('hex')))
})

test('with Auto on, a page shows new records without a click on Refresh', { skip, timeout: 60_000 }, async () => {
  const { orders } = data!
  await open(`/topics/${encodeURIComponent(orders)}/1`, 'records')
  assert.equal(await main().locator('tbody tr').count(), 1)
  await page.locator('#auto-refresh').check()
  try {
    const producer = new kafkajs.Kafka({ brokers: [broker.bootstrap], logLevel: kafkajs.logLevel.NOTHING }).producer()
    await producer.connect()
    try {
      await producer.send({ topic: orders, messages: [{ partition: 1, key: 'order-auto', value: 'arrived while watching' }] })
    } finally {
      await producer.disconnect()
    }
    await main().locator('tr', { hasText: 'arrived while watching' }).waitFor({ timeout: 15_000 })
    assert.equal(await main().locator('tbody tr').count(), 2)
  } finally {
    // The choice is remembered by the browser: the later tests want pages that stay still.
    await page.locator('#auto-refresh').uncheck()
  }
})

test('the groups pages show members, committed offsets and lag', { skip, timeout: 60_000 }, async () => {
  const { auditGroup, paymentsGroup, orders, payments } = data!
  await open('/groups', 'groups')
  assert.match(await main().locator('tr', { hasText: auditGroup }).innerText(), /Empty\s+consumer\s+0\s+1\s+3$/)
  assert.match(await main().locator('tr', { hasText: paymentsGroup }).innerText(), /Stable\s+consumer\s+1\s+1\s+0$/)
  await shot('groups')

  await open(`/groups/${encodeURIComponent(auditGroup)}`, 'group')
  assert.match(await main().locator('tbody tr', { hasText: orders }).innerText(), /0\s+1\s+4\s+3/)
  await open(`/groups/${encodeURIComponent(paymentsGroup)}`, 'group')
  assert.match(await main().innerText(), new RegExp(`${payments}:0`), 'the member\'s assignment')
  await shot('group')
})

test('the sagas pages list instances and show their steps; the breakers page shows each breaker\'s state', { skip, timeout: 60_000 }, async () => {
  await open('/sagas', 'sagas')
  assert.match(await main().locator('tr', { hasText: 'order-1001' }).innerText(), /place-order\s+3\s+completed/)
  assert.match(await main().locator('tr', { hasText: 'order-1002' }).innerText(), /place-order\s+3\s+compensated/)
  await shot('sagas')
  await main().getByRole('link', { name: 'order-1002' }).click()
  await page.locator('main[data-view="saga"]').waitFor()
  const steps = await main().locator('td.step').allInnerTexts()
  assert.deepEqual(steps, ['reserve-stock', 'charge-card', 'reserve-stock'])
  assert.match(await main().innerText(), /card declined/)
  await shot('saga')

  await open('/breakers', 'breakers')
  assert.match(await main().locator('tr', { hasText: 'checkout->payments' }).innerText(), /open\s+100\.0%\s+2\s+2\s+in \d+\.\d s\s+failure-rate/)
  assert.match(await main().locator('tr', { hasText: 'checkout->stock' }).innerText(), /closed\s+33\.3%\s+3\s+1/)
  await shot('breakers')
})

test('a redrive clicked on the dead-letter page sends the record back to its topic', { skip, timeout: 60_000 }, async () => {
  const { dlt, payments } = data!
  await open('/dead-letters', 'dead-letters')
  assert.match(await main().locator('tr', { hasText: dlt }).innerText(), /1\s+1\s+1$/)
  await shot('dead-letters')

  await main().getByRole('link', { name: dlt }).click()
  await page.locator('main[data-view="dead-letter"]').waitFor()
  const letter = main().locator('tr[data-offset="0"]')
  assert.match(await letter.innerText(), new RegExp(`${payments}-0@1[\\s\\S]*permanent[\\s\\S]*cannot settle poison[\\s\\S]*pay-2[\\s\\S]*poison`))
  await shot('dead-letter')

  await letter.getByRole('button', { name: 'Redrive' }).click()
  await main().locator('.box.done').waitFor()
  assert.match(await main().locator('.box.done').innerText(), new RegExp(`Sent 1 record\\(s\\) back to ${payments}-0`))
  const back = (await readAll(broker.bootstrap, payments, 4)).find((r) => r.headers?.[CopyHeader.redrivenFrom] !== undefined)
  assert.deepEqual([back?.key?.toString(), back?.value?.toString()], ['pay-2', 'poison'])
  await waitFor(() => data!.handled.includes('poison'), { timeoutMs: 20_000, what: 'the redriven record handled by the consumer' })
})

test('read-only: no redrive button, and a POST straight to the API is refused', { skip, timeout: 60_000 }, async () => {
  readOnly = await embeddedBroker()
  const dlt = `${uniqueName('refunds')}.dlt`
  await createTopic(readOnly.bootstrap, dlt, 1)
  const kafka = new kafkajs.Kafka({ brokers: [readOnly.bootstrap], logLevel: kafkajs.logLevel.NOTHING })
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({
    topic: dlt,
    messages: [{ key: 'r-1', value: 'refund', headers: { [CopyHeader.dltSourceTopic]: 'refunds', [CopyHeader.dltSourcePartition]: '0', [CopyHeader.dltSourceOffset]: '5', [CopyHeader.dltErrorClass]: 'permanent', [CopyHeader.dltError]: 'no such account' } }],
  })
  await producer.disconnect()

  await page.goto(`${readOnly.httpUrl}/#/dead-letters/${dlt}`)
  await page.locator('main[data-view="dead-letter"]').waitFor()
  assert.match(await main().locator('tr[data-offset="0"]').innerText(), /no such account/)
  assert.equal(await main().getByRole('button', { name: /Redrive/ }).count(), 0)
  assert.match(await page.locator('#broker').innerText(), /read-only/)
  await page.goto(`${readOnly.httpUrl}/#/dead-letters`)
  await page.locator('main[data-view="dead-letters"]').waitFor()
  assert.match(await main().innerText(), /Read-only: redrive with tideway dlq redrive/)
  await shot('dead-letters-read-only')

  const status = await page.evaluate(async (topic) => {
    const res = await fetch(`/api/dead-letters/${topic}/redrive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":true}' })
    return [res.status, ((await res.json()) as { error: string }).error]
  }, dlt)
  assert.deepEqual(status, [403, 'console actions are off: start the broker with --console-actions to redrive dead letters from the console'])
})
