// Tideway-only rows: what its own features cost, each against plain batched produce on the same
// broker in the same run: idempotent producers, an idempotency-key header on every record on an
// ordinary topic and on a dedup topic, the same keys sent again (answered, nothing written), and
// the embedded broker's cold start to its first acknowledged produce; and produce p99 while the
// log cleaner compacts a topic, against the same broker with the cleaner idle.
import { readdirSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin, Producer } from '@platformatic/kafka'
import kafkajs from 'kafkajs'
import { startBroker } from '../src/broker/broker.ts'
import { brokerOptions } from '../src/broker/config.ts'
import { silentLogger } from '../src/logger.ts'
import { BrokerProcess } from '../test/helpers/broker-process.ts'
import { ratio, summarise } from './measure.ts'
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

export interface CleanerImpact {
  /** Plain batched produce p99 with the cleaner idle, and while it compacts another topic. */
  readonly withoutP99Ms: number
  readonly withP99Ms: number
  /** withP99Ms / withoutP99Ms. */
  readonly p99Ratio: number | null
  /** The compacted topic's bytes on disk before and after the measured window. */
  readonly compactedBytes: readonly [number, number]
  readonly cleanerIoBytesPerSecond: number
}

/**
 * Produce p99 while the log cleaner runs, against the same broker with the cleaner idle: a
 * broker whose cleaner looks every 100 ms, a topic filled with `fillBytes` of 1 KiB records
 * over 100 keys under cleanup.policy=delete (so nothing is cleaned yet), plain batched produce
 * to another topic, then the filled topic is altered to compact and the same produce runs while
 * the cleaner works through it (at its default throttle).
 */
export async function cleanerImpact(dir: string, seconds: number, fillBytes: number): Promise<CleanerImpact> {
  const broker = new BrokerProcess(join(dir, 'cleaner'), ['--cleaner-interval-ms', '100'])
  await broker.start()
  const topic = 'bench-compacted'
  const partitionBytes = () => dirSize(join(broker.dataDir, `${topic}-0`))
  try {
    const admin = new kafkajs.Kafka({ brokers: [broker.bootstrap], clientId: 'bench-cleaner', logLevel: kafkajs.logLevel.NOTHING }).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'segment.bytes', value: String(1024 * 1024) }] }] })
      const producer = new Producer({ clientId: 'bench-fill', bootstrapBrokers: [broker.bootstrap], acks: -1 })
      try {
        for (let sent = 0; sent < fillBytes; sent += 64 * RECORD.length) {
          const messages = Array.from({ length: 64 }, (_, i) => ({ topic, key: Buffer.from(`key-${(sent / RECORD.length + i) % 100}`), value: RECORD, partition: 0 }))
          await producer.send({ messages, acks: -1 })
        }
      } finally {
        await producer.close()
      }
      const without = summarise(await batchedProduce(broker.bootstrap, 'bench-cleaner-produce', { seconds }))
      const before = partitionBytes()
      await admin.alterConfigs({ validateOnly: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'segment.bytes', value: String(1024 * 1024) }] }] })
      const withCleaner = summarise(await batchedProduce(broker.bootstrap, 'bench-cleaner-produce', { seconds }))
      return {
        withoutP99Ms: without.p99Ms ?? Number.NaN,
        withP99Ms: withCleaner.p99Ms ?? Number.NaN,
        p99Ratio: ratio(withCleaner.p99Ms, without.p99Ms),
        compactedBytes: [before, partitionBytes()],
        cleanerIoBytesPerSecond: brokerOptions.cleanerIoBytesPerSecond.default,
      }
    } finally {
      await admin.disconnect()
    }
  } finally {
    await broker.kill9()
  }
}

function dirSize(path: string): number {
  return readdirSync(path).reduce((n, name) => n + statSync(join(path, name)).size, 0)
}
