// The global request-bytes budget under pressure: with a budget far smaller than what clients
// send at once, connections stop reading and resume as requests finish. Every produce is still
// answered (slower, never deadlocked) and nothing is lost.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import kafkajs from 'kafkajs'
import { createTopic } from '../helpers/admin.ts'
import { embeddedBroker } from '../helpers/embedded.ts'
import { kcatReadPartition } from '../helpers/kcat.ts'
import { requireKcat } from '../helpers/tools.ts'

const { Kafka, logLevel } = kafkajs

test('a request-bytes budget smaller than the load slows producers but answers every request', { timeout: 120_000 }, async () => {
  requireKcat()
  const broker = await embeddedBroker({ maxQueuedRequestBytes: 16 * 1024 })
  try {
    await createTopic(broker.bootstrap, 'squeezed', 1)
    const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    const producers = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const producer = kafka.producer()
        await producer.connect()
        return producer
      }),
    )
    const payload = 'x'.repeat(10 * 1024)
    await Promise.all(
      producers.flatMap((producer, p) =>
        Array.from({ length: 10 }, (_, i) =>
          producer.send({ topic: 'squeezed', acks: -1, messages: [{ value: `${p}-${i}-${payload}` }] }),
        ),
      ),
    )
    await Promise.all(producers.map((p) => p.disconnect()))
    const stored = await kcatReadPartition(broker.bootstrap, 'squeezed', 0)
    assert.equal(stored.length, 40)
    assert.equal(new Set(stored.map((r) => r.value.split('-').slice(0, 2).join('-'))).size, 40)
  } finally {
    await broker.dispose()
  }
})
