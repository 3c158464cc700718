// Tideway-only rows: what its own features cost, each against plain batched produce on the same
// broker in the same run: idempotent producers, an idempotency-key header on every record on an
// ordinary topic and on a dedup topic, the same keys sent again (answered, nothing written), and
// the embedded broker's cold start to its first acknowledged produce.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin, Producer } from '@platformatic/kafka'
import { startBroker } from '../src/broker/broker.ts'
import { silentLogger } from '../src/logger.ts'
import type { Measured } from './systems/types.ts'

const RECORD = Buffer.alloc(1024, 'x')

export interface FeatureProduceOptions {
  readonly seconds: number
  readonly idempotent?: boolean
  /** Give every record an `idempotency-key` header: `new` keys, or the keys of an earlier run `again`. */
  readonly keys?: 'new' | 'again'
}

/** Keys handed out by the `new` runs, replayed in order by the `again` runs. */
const sentKeys: string[] = []

/** 4 producers, 64 1 KiB records a request, acks=all, for `seconds`. */
export async function batchedProduce(bootstrap: string, topic: string, options: FeatureProduceOptions): Promise<Measured> {
  const { idempotent = false, keys, seconds } = options
  if (keys === 'new') sentKeys.length = 0
  const clients = Array.from({ length: 4 }, (_, i) => new Producer({ clientId: `bench-${i}`, bootstrapBrokers: [bootstrap], acks: -1, autocreateTopics: true, idempotent }))
  const plain = Array.from({ length: 64 }, () => ({ topic, value: RECORD, partition: 0 }))
  let replayed = 0
  const nextMessages = () => {
    if (!keys) return plain
    return plain.map((m) => {
      let key: string
      if (keys === 'new') sentKeys.push((key = `bench-key-${sentKeys.length}`))
      else key = sentKeys[replayed++ % sentKeys.length]!
      // A Map: platformatic 2.12's send() never settles when headers are a plain object.
      return { ...m, headers: new Map([[Buffer.from('idempotency-key'), Buffer.from(key)]]) }
    })
  }
  try {
    // Warm up connections and metadata outside the measurement.
    await Promise.all(clients.map((c) => c.send({ messages: [{ topic, value: RECORD, partition: 0 }], acks: -1 })))
    const latenciesMs: number[] = []
    const start = performance.now()
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() - start < seconds * 1000) {
          const messages = nextMessages()
          const t0 = performance.now()
          await client.send({ messages, acks: -1 })
          latenciesMs.push(performance.now() - t0)
        }
      }),
    )
    const elapsedMs = performance.now() - start
    const records = latenciesMs.length * 64
    return { records, bytes: records * RECORD.length, elapsedMs, latenciesMs }
  } finally {
    await Promise.all(clients.map((c) => c.close()))
  }
}

/** A one-partition topic with idempotency-key dedup, its window large enough for every bench key. */
export async function createDedupTopic(bootstrap: string, topic: string): Promise<void> {
  const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: [bootstrap] })
  try {
    await admin.createTopics({
      topics: [topic],
      partitions: 1,
      configs: [
        { name: 'tideway.dedup.enable', value: 'true' },
        { name: 'tideway.dedup.window.records', value: '10000000' },
      ],
    })
  } finally {
    await admin.close()
  }
}

/** startBroker() on an empty directory to the first acknowledged produce, `runs` times. */
export async function coldStart(runs: number): Promise<{ medianMs: number; samplesMs: number[] }> {
  const samplesMs: number[] = []
  for (let i = 0; i < runs; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'tideway-bench-cold-'))
    const t0 = performance.now()
    const broker = await startBroker({ port: 0, dataDir: dir, logger: silentLogger })
    const producer = new Producer({ clientId: 'bench-cold', bootstrapBrokers: [broker.bootstrap], acks: -1, autocreateTopics: true })
    try {
      await producer.send({ messages: [{ topic: 'cold', value: RECORD }], acks: -1 })
      samplesMs.push(Math.round((performance.now() - t0) * 100) / 100)
    } finally {
      await producer.close()
      await broker.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
  const sorted = [...samplesMs].sort((a, b) => a - b)
  return { medianMs: sorted[Math.floor(sorted.length / 2)]!, samplesMs }
}
