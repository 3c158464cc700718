// The two halves of a service with a transactional outbox, as processes, for the outbox crash
// test. `write` places orders: each order row and its "order placed" event are written in ONE
// transaction (several transactions at once, so ids commit out of order). `relay` runs the outbox
// relay until killed or until --drain has nothing left. Prints {"event":"started"} and, when
// draining, {"event":"drained","published":n}.
//
// Usage: node sdk_outbox_service.ts write <schema> <count> [--concurrency N] [--topic T]
//        node sdk_outbox_service.ts relay <schema> <bootstrap> [--drain] [--batch N]
import { parseArgs } from 'node:util'
import { createOutboxRelay, enqueueEvent, postgresStore } from '../../../src/index.ts'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: 'string', default: '4' },
    drain: { type: 'boolean', default: false },
    batch: { type: 'string', default: '50' },
    topic: { type: 'string', default: 'orders-placed' },
  },
})
const [role, schema, arg] = positionals
const store = postgresStore({ connectionString: 'postgres://postgres@127.0.0.1:5432/test', searchPath: schema! })
await store.migrate()
const emit = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n')

if (role === 'write') {
  const count = Number(arg)
  await store.transaction((tx) => tx.query('CREATE TABLE IF NOT EXISTS orders (id BIGINT PRIMARY KEY, amount BIGINT NOT NULL)'))
  emit({ event: 'started' })
  let next = 0
  await Promise.all(
    Array.from({ length: Number(values.concurrency) }, async () => {
      while (next < count) {
        const id = next++
        await store.transaction(async (tx) => {
          await tx.query('INSERT INTO orders (id, amount) VALUES ($1, $2)', [id, id % 100])
          await enqueueEvent(tx, { topic: values.topic, key: `order-${id}`, value: JSON.stringify({ id, amount: id % 100 }) })
        })
      }
    }),
  )
  await store.close()
} else if (role === 'relay') {
  const relay = createOutboxRelay({ store, bootstrap: arg!, batchSize: Number(values.batch), pollIntervalMs: 20, idempotencyKeyPrefix: `${schema}-outbox-` })
  emit({ event: 'started' })
  if (values.drain) {
    const published = await relay.drain()
    emit({ event: 'drained', published })
    await relay.stop()
    await store.close()
  } else relay.start()
} else {
  process.stderr.write('usage: sdk_outbox_service.ts write|relay ...\n')
  process.exit(2)
}
