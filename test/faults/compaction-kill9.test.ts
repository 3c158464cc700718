// kill -9 of a broker whose log cleaner is running, in a loop. A compacted topic with 4 KiB
// segments (so segments seal all the time) and a cleaner that looks every 50 ms, throttled to
// 1 MB/s (so a pass is under way much of the time), takes keyed records from an idempotent
// KafkaJS producer (batches of 10) and a plain one that never retries, over 40 keys. At a random
// moment the broker is killed and restarted on the same data. After every restart the history
// checker (test/helpers/history.ts), told the topic is compacted, compares what the producers
// were told with what kcat reads back: every acknowledged record is stored at its acknowledged
// offset or was superseded by a later stored record of its key (so each key's latest record is
// there), nothing is stored twice or out of real-time order. The test prints how many kills
// found a pass mid-way (a `.cleaned`, `.swap` or `.deleted` file in the partition directory).
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { assertClean, checkHistory, describeReport, History, totalsLine } from '../helpers/history.ts'
import { kcatReadPartition } from '../helpers/kcat.ts'
import { requireKcat } from '../helpers/tools.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs
const KILLS = Number(process.env.COMPACTION_KILLS ?? 12)
const KEYS = 40
const BATCH = 10
const keyOf = (value: string) => value.slice(0, value.indexOf('|'))
const dir = tempDir('tideway-compaction-kill-')
const broker = new BrokerProcess(dir.path, ['--cleaner-interval-ms', '50', '--cleaner-io-bytes-per-second', '1000000'])

before(async () => {
  requireKcat()
  await broker.start()
})
after(async () => {
  await broker.kill9()
  dir.remove()
})

test(`kill -9 while the log cleaner runs, ${KILLS} times: every key's latest acknowledged record survives at its offset`, { timeout: 60_000 + KILLS * 10_000 }, async (t) => {
  let seed = Number(process.env.SEED ?? 11)
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const topic = uniqueName('compacted')
  await createTopic(broker.bootstrap, topic, 1, { 'cleanup.policy': 'compact', 'segment.bytes': '4096' })
  const partitionDir = join(dir.path, `${topic}-0`)
  const history = new History()
  const midPass: string[] = []
  let checked = 0

  for (let cycle = 0; cycle < KILLS; cycle++) {
    const kafka = (clientId: string, retries: number) =>
      new Kafka({ brokers: [broker.bootstrap], clientId, logLevel: logLevel.NOTHING, retry: { retries, initialRetryTime: 50, maxRetryTime: 500 }, connectionTimeout: 3000, requestTimeout: 10000 })
    const plain = kafka(`plain-${cycle}`, 0).producer({ retry: { retries: 0 }, allowAutoTopicCreation: false })
    const idempotent = kafka(`idempotent-${cycle}`, 40).producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
    await Promise.all([plain.connect(), idempotent.connect()])
    let running = true
    const plainSender = (async () => {
      for (let n = 0; running; n++) {
        const value = `k${n % KEYS}|c${cycle}-plain-${n}`
        const ok = await history.produce(`plain-${cycle}`, value, 0, async () => {
          const [meta] = await plain.send({ topic, acks: -1, timeout: 5000, messages: [{ key: keyOf(value), value, partition: 0 }] })
          return Number(meta!.baseOffset)
        })
        if (!ok && running) await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })()
    const idempotentSender = (async () => {
      for (let n = 0; running; n++) {
        const values = Array.from({ length: BATCH }, (_, i) => `k${(n * BATCH + i) % KEYS}|c${cycle}-idem-${n}-${i}`)
        for (const value of values) history.sent(`idempotent-${cycle}`, value, 0)
        try {
          const [meta] = await idempotent.send({ topic, acks: -1, messages: values.map((value) => ({ key: keyOf(value), value, partition: 0 })) })
          values.forEach((value, i) => history.acked(value, 0, Number(meta!.baseOffset) + i))
        } catch (err) {
          for (const value of values) history.failed(value, err)
          return // an idempotent producer that gave up may not be reused for later sequences
        }
      }
    })()

    await new Promise((resolve) => setTimeout(resolve, 500 + Math.floor(random() * 1500)))
    await broker.kill9()
    running = false
    const leftovers = readdirSync(partitionDir).filter((n) => /\.(cleaned|swap|deleted)$/.test(n))
    if (leftovers.length > 0) midPass.push(`kill ${cycle + 1}: ${leftovers.map((n) => n.slice(n.lastIndexOf('.'))).join(' ')}`)
    await broker.start()
    await Promise.all([plainSender, idempotentSender])
    await Promise.all([plain.disconnect().catch(() => {}), idempotent.disconnect().catch(() => {})])

    const stored = new Map([[0, await kcatReadPartition(broker.bootstrap, topic, 0)]])
    const report = checkHistory(history, stored, { keyOf, denseOffsets: false })
    checked += report.recordsChecked
    t.diagnostic(`kill ${cycle + 1}/${KILLS}: ${describeReport(report)}${leftovers.length > 0 ? `; killed mid-pass (${leftovers.length} files to resolve)` : ''}`)
    assertClean(report, `kill ${cycle + 1}`)
  }

  // With the load stopped, the cleaner catches up: below the active segment (which is never
  // cleaned, and may hold up to a segment's worth of records) each key is stored at most once.
  const activeSegmentBase = () => Math.max(...readdirSync(partitionDir).filter((n) => n.endsWith('.log')).map((n) => Number(n.slice(0, -4))))
  const report = await waitFor(async () => {
    const records = await kcatReadPartition(broker.bootstrap, topic, 0)
    const cleaned = records.filter((r) => r.offset < activeSegmentBase())
    const r = checkHistory(history, new Map([[0, records]]), { keyOf, denseOffsets: false })
    return cleaned.length <= KEYS && new Set(cleaned.map((c) => keyOf(c.value))).size === cleaned.length ? r : undefined
  }, { timeoutMs: 30_000 + KILLS * 500, intervalMs: 500, what: 'the cleaner to compact the topic' }).catch((err: Error) => {
    const stored = readdirSync(partitionDir).sort().join(' ')
    throw new Error(`${err.message}; files: ${stored}\nbroker log:\n${broker.log.split('\n').filter((l) => !l.includes('"level":"debug"')).slice(-40).join('\n')}`)
  })
  t.diagnostic(`after the kills: ${describeReport(report)}; ${midPass.length} of ${KILLS} kills found a pass mid-way (${midPass.join('; ')})`)
  t.diagnostic(totalsLine({ cycles: KILLS, recordsChecked: checked + report.recordsChecked, lost: report.lost.length, duplicates: report.duplicates, reorders: report.reorders.length }))
  assertClean(report, 'final')
  assert.ok(report.superseded > report.acknowledged / 2, `compaction removed most records (${report.superseded} of ${report.acknowledged})`)
  assert.ok(report.failed > 0, 'some sends were cut off by a kill')
})
