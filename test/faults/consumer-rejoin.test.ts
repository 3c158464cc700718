// A consumer that stays up through rebalances keeps its promise. Unlike the kill -9 tests, which
// restart the consumer (so it reads on from its commit), here one SDK consumer lives through
// them with records queued in memory and fetches in flight (a producer keeps writing, and its
// handler is slow), while a second member joins the group and leaves again, over and over, so
// every rejoin happens while the first keeps some partitions. Every record must be handled:
// at least once (at-least-once), exactly once with its effect in the same SQLite transaction
// (exactly-once).
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { createConsumer, createProducer, sqliteStore, type DeliveryMode } from '../../src/index.ts'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { totalsLine } from '../helpers/history.ts'
import { waitFor } from '../helpers/wait.ts'

const PARTITIONS = 4
const REJOINS = 8
const dir = tempDir('tideway-rejoin-')
const broker = new BrokerProcess(join(dir.path, 'broker'))
before(() => broker.start())
after(async () => {
  await broker.kill9()
  dir.remove()
})

for (const delivery of ['at-least-once', 'exactly-once'] as const satisfies readonly DeliveryMode[]) {
  test(`${delivery}: a consumer with a backlog lives through ${REJOINS} rebalances while records keep coming, and handles every one`, { timeout: 180_000 }, async (t) => {
    const topic = uniqueName(`rejoin-${delivery}`)
    const groupId = uniqueName('rejoin-group')
    await createTopic(broker.bootstrap, topic, PARTITIONS)
    const handled = new Map<number, number>()
    const store = delivery === 'exactly-once' ? sqliteStore(join(dir.path, `${groupId}.db`)) : undefined
    const member = (name: string, handlerMs: number) =>
      createConsumer({
        bootstrap: broker.bootstrap,
        groupId,
        clientId: name,
        topics: [topic],
        delivery,
        ...(store ? { store } : {}),
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 300,
        // Never paused for a full buffer: a fetch is in flight at every rebalance.
        maxBufferedRecords: 1_000_000,
        handler: async (message) => {
          const id = Number(message.value!.toString())
          handled.set(id, (handled.get(id) ?? 0) + 1)
          if (handlerMs > 0) await new Promise((resolve) => setTimeout(resolve, handlerMs))
        },
      })

    // A producer that keeps writing, 50 records every 20 ms, until told to stop (or 12,000 are out).
    const producer = createProducer({ bootstrap: broker.bootstrap, delivery: 'at-least-once' })
    let produced = 0
    let producing = true
    const writer = (async () => {
      while (producing && produced < 12_000) {
        const batch = Array.from({ length: 50 }, (_, i) => ({ key: `k${(produced + i) % 40}`, value: String(produced + i), idempotencyKey: `r-${produced + i}` }))
        await producer.sendBatch(topic, batch)
        produced += batch.length
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })()

    const first = member('first', 1)
    await first.start()
    // Under this churn @platformatic/kafka sometimes gives up joining after 4 refused SyncGroups
    // (REBALANCE_IN_PROGRESS); such a member is stopped and another one tries.
    let refusedJoins = 0
    const joinSecond = async (round: number) => {
      for (let attempt = 1; ; attempt++) {
        const second = member(`second-${round}-${attempt}`, 0)
        try {
          await second.start()
          return second
        } catch (err) {
          await second.stop()
          if (++refusedJoins > 5) throw err
        }
      }
    }
    try {
      for (let round = 0; round < REJOINS; round++) {
        await new Promise((resolve) => setTimeout(resolve, 400))
        const second = await joinSecond(round)
        await new Promise((resolve) => setTimeout(resolve, 400))
        await second.stop()
      }
      producing = false
      await writer
      await producer.close()
      await waitFor(() => handled.size === produced, { timeoutMs: 90_000, intervalMs: 100, what: `all ${produced} records handled` }).catch((err: Error) => {
        const missing = Array.from({ length: produced }, (_, i) => i).filter((i) => !handled.has(i))
        throw new Error(`${err.message}: ${missing.length} never handled, e.g. ${missing.slice(0, 10).join(', ')}`)
      })
    } finally {
      producing = false
      await first.stop()
      await store?.close()
    }
    const twice = [...handled.values()].filter((n) => n > 1).length
    t.diagnostic(`${produced} records, ${REJOINS} members joined and left (${refusedJoins} joins given up by the client and retried): 0 lost, ${twice} handled more than once`)
    t.diagnostic(totalsLine({ cycles: REJOINS, recordsChecked: produced, lost: produced - handled.size, ...(delivery === 'exactly-once' ? { duplicates: twice } : {}) }))
    if (delivery === 'exactly-once') assert.equal(twice, 0)
  })
}
