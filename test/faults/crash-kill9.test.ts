// kill -9 of a broker child process under acks=all load, several cycles. After every restart,
// every acknowledged record must be readable at the offset it was acknowledged with, offsets
// must be dense (no gap, no reuse), and nothing may appear twice. The producer does not retry
// (retries: 0), so an unacknowledged send is never resent: a record may be present without its
// ack (written, then the ack was lost to the kill) but never twice.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { createTopic } from '../helpers/admin.ts'
import { kcatReadPartition } from '../helpers/kcat.ts'
import { requireKcat } from '../helpers/tools.ts'

const { Kafka, logLevel } = kafkajs
const CYCLES = Number(process.env.CRASH_CYCLES ?? 5)
const PARTITIONS = 3
const SENDERS = 6
const topic = `crash-${process.pid}`
const dir = tempDir('tideway-crash-')
const broker = new BrokerProcess(dir.path)

before(async () => {
  requireKcat()
  await broker.start()
  await createTopic(broker.bootstrap, topic, PARTITIONS)
})
after(async () => {
  await broker.kill9()
  dir.remove()
})


test(`acknowledged records survive ${CYCLES} kill -9 cycles with dense offsets and no duplicates`, { timeout: 600_000 }, async () => {
  const acked = new Map<string, { partition: number; offset: number }>()
  let sent = 0
  let failed = 0
  let seed = Number(process.env.SEED ?? 7)
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const kafka = new Kafka({
      brokers: [broker.bootstrap],
      clientId: `crash-${cycle}`,
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
      connectionTimeout: 3000,
      requestTimeout: 10000,
    })
    const producer = kafka.producer({ retry: { retries: 0 }, allowAutoTopicCreation: false })
    await producer.connect()
    let running = true
    const senders = Array.from({ length: SENDERS }, async (_, s) => {
      for (let n = 0; running; n++) {
        const value = `c${cycle}-s${s}-n${n}`
        const partition = (s + n) % PARTITIONS
        sent++
        try {
          const [meta] = await producer.send({ topic, acks: -1, timeout: 5000, messages: [{ value, partition }] })
          acked.set(value, { partition: meta!.partition, offset: Number(meta!.baseOffset) })
        } catch {
          failed++
          if (!running) return
        }
      }
    })
    // Kill at a random moment under load.
    await new Promise((resolve) => setTimeout(resolve, 300 + Math.floor(random() * 900)))
    await broker.kill9()
    running = false
    await Promise.all(senders)
    await producer.disconnect().catch(() => {})
    await broker.start()

    // Check after every restart.
    let present = 0
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const records = await kcatReadPartition(broker.bootstrap, topic, partition)
      present += records.length
      assert.deepEqual(records.map((r) => r.offset), records.map((_, i) => i), `cycle ${cycle} partition ${partition}: dense offsets`)
      const values = records.map((r) => r.value)
      assert.equal(new Set(values).size, values.length, `cycle ${cycle} partition ${partition}: no duplicates`)
      const offsetOf = new Map(records.map((r) => [r.value, r.offset]))
      for (const [value, ack] of acked) {
        if (ack.partition !== partition) continue
        assert.equal(offsetOf.get(value), ack.offset, `cycle ${cycle}: acknowledged ${value} is at offset ${ack.offset}`)
      }
    }
    console.log(`crash cycle ${cycle + 1}/${CYCLES}: sent ${sent}, acknowledged ${acked.size}, failed ${failed}, stored ${present}, lost 0`)
  }
  assert.ok(acked.size > CYCLES * 10, `enough acknowledged records to mean something (${acked.size})`)
})
