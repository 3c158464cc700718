// `npm run bench`: durable produce on Tideway next to this machine's raw-disk limits, in one run,
// with ratios. Scenarios (1 KiB records, acks=all, the broker in a child process with its default
// flush policy, fsync before ack):
//   disk: one fdatasync per 1 KiB record      -> the ceiling for a single synchronous producer
//   disk: one fdatasync per 64 KiB            -> the ceiling for batched durable writes
//   tideway: 1 producer, 1 record per request -> compare with the per-record fsync ceiling
//   tideway: 16 concurrent producers, 1 record per request -> group commit (one fsync serves many)
//   tideway: 4 producers, 64 records per request -> compare with the 64 KiB ceiling
//   tideway: the same with idempotent producers   -> the cost of sequence checking
//   tideway: the same with an idempotency-key header on every record, ordinary topic
//   tideway: the same on a topic with idempotency-key dedup, every record a new key
//     -> the cost of opening each batch and remembering its keys (against the row above, which
//        pays the same client-side header encoding)
//   tideway: the same keys sent again             -> answering duplicates (nothing is written)
//   group consume: a 6-partition topic of --group-records 1 KiB records read by a consumer group
//     of 1 and of 3 @platformatic/kafka members (in this process), from the first record to the
//     last, with auto-commit; the time to the first record (join + sync) is reported apart
//   embedded cold start: startBroker() on an empty directory to the first acknowledged produce
//   sdk end to end per delivery mode (bench/sdk-modes.ts): --sdk-records 1 KiB records produced
//     and handled into a database balance, at-most-once, at-least-once and exactly-once on a
//     SQLite file, at-least-once and exactly-once on PostgreSQL
// Flags: --json (machine-readable), --seconds N (per produce scenario, default 3),
// --group-records N (default 200000), --sdk-records N (default 5000).

import { open, rm, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Admin, Consumer, MessagesStreamModes, Producer } from '@platformatic/kafka'
import { startBroker } from '../src/broker/broker.ts'
import { silentLogger } from '../src/logger.ts'
import { BrokerProcess } from '../test/helpers/broker-process.ts'
import { deliveryModeRun, type ModeResult } from './sdk-modes.ts'

const { values: flags } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '3' },
    'group-records': { type: 'string', default: '200000' },
    'sdk-records': { type: 'string', default: '5000' },
  },
})
const SDK_RECORDS = Number(flags['sdk-records'])
const SECONDS = Number(flags.seconds)
const GROUP_RECORDS = Number(flags['group-records'])
const GROUP_PARTITIONS = 6
const RECORD = Buffer.alloc(1024, 'x')

interface Result {
  name: string
  records: number
  seconds: number
  recordsPerSec: number
  mbPerSec: number
  p50Ms?: number
  p99Ms?: number
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

function summarise(name: string, records: number, bytes: number, elapsedMs: number, latencies?: number[]): Result {
  const seconds = elapsedMs / 1000
  const sorted = latencies ? [...latencies].sort((a, b) => a - b) : undefined
  return {
    name,
    records,
    seconds: round(seconds),
    recordsPerSec: Math.round(records / seconds),
    mbPerSec: round(bytes / seconds / (1024 * 1024)),
    ...(sorted ? { p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)) } : {}),
  }
}

const round = (n: number) => Math.round(n * 100) / 100

async function rawDisk(dir: string, bytesPerSync: number): Promise<Result> {
  const file = await open(join(dir, `raw-${bytesPerSync}.dat`), 'w')
  const chunk = Buffer.alloc(bytesPerSync, 'x')
  const latencies: number[] = []
  let position = 0
  const start = performance.now()
  while (performance.now() - start < SECONDS * 1000) {
    const t0 = performance.now()
    await file.write(chunk, 0, chunk.length, position)
    await file.datasync()
    latencies.push(performance.now() - t0)
    position += chunk.length
  }
  const elapsed = performance.now() - start
  await file.close()
  const records = (latencies.length * bytesPerSync) / 1024
  return summarise(`disk: fdatasync per ${bytesPerSync / 1024} KiB`, records, position, elapsed, latencies)
}

interface ProduceOptions {
  idempotent?: boolean
  /** Give every record an `idempotency-key` header: `new` keys, or the keys of an earlier run `again`. */
  keys?: 'new' | 'again'
}

/** Keys handed out by the `new` runs, replayed in order by the `again` runs. */
const sentKeys: string[] = []

async function tidewayProduce(bootstrap: string, topic: string, producers: number, perRequest: number, name: string, options: ProduceOptions = {}): Promise<Result> {
  const { idempotent = false, keys } = options
  const clients = Array.from({ length: producers }, (_, i) => new Producer({ clientId: `bench-${i}`, bootstrapBrokers: [bootstrap], acks: -1, autocreateTopics: true, idempotent }))
  const plain = Array.from({ length: perRequest }, () => ({ topic, value: RECORD, partition: 0 }))
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
  // Warm up connections and metadata outside the measurement.
  await Promise.all(clients.map((c) => c.send({ messages: [{ topic, value: RECORD, partition: 0 }], acks: -1 })))
  const latencies: number[] = []
  let requests = 0
  const start = performance.now()
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() - start < SECONDS * 1000) {
        const messages = nextMessages()
        const t0 = performance.now()
        await client.send({ messages, acks: -1 })
        latencies.push(performance.now() - t0)
        requests++
      }
    }),
  )
  const elapsed = performance.now() - start
  await Promise.all(clients.map((c) => c.close()))
  const records = requests * perRequest
  return summarise(name, records, records * RECORD.length, elapsed, latencies)
}

/** A one-partition topic with idempotency-key dedup, its window large enough for every bench key. */
async function createDedupTopic(bootstrap: string, topic: string): Promise<void> {
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

/** Fills a GROUP_PARTITIONS-partition topic with GROUP_RECORDS records, 64 per request. */
async function fillGroupTopic(bootstrap: string, topic: string): Promise<void> {
  const producer = new Producer({ clientId: 'bench-fill', bootstrapBrokers: [bootstrap], acks: -1, autocreateTopics: true })
  try {
    const inFlight: Promise<unknown>[] = []
    for (let sent = 0; sent < GROUP_RECORDS; sent += 64) {
      const count = Math.min(64, GROUP_RECORDS - sent)
      const partition = (sent / 64) % GROUP_PARTITIONS
      inFlight.push(producer.send({ messages: Array.from({ length: count }, () => ({ topic, value: RECORD, partition })), acks: -1 }))
      if (inFlight.length >= 8) await inFlight.shift()
    }
    await Promise.all(inFlight)
  } finally {
    await producer.close()
  }
}

async function groupConsume(bootstrap: string, topic: string, members: number): Promise<Result & { firstRecordMs: number; readTwice: number }> {
  const groupId = `bench-group-${members}-${Date.now()}`
  const consumers = Array.from({ length: members }, (_, i) => new Consumer({ clientId: `bench-member-${i}`, groupId, bootstrapBrokers: [bootstrap], maxWaitTime: 100 }))
  // Records arrive in offset order per partition: one read at or below the highest offset seen is
  // a repeat (after a rebalance) and does not count.
  const highest = new Array<bigint>(GROUP_PARTITIONS).fill(-1n)
  let unique = 0
  let received = 0
  let firstAt = 0
  let lastAt = 0
  const t0 = performance.now()
  try {
    await new Promise<void>((resolve, reject) => {
      for (const consumer of consumers) {
        consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: 1000 }).then((stream) => {
          stream.on('data', (message: { partition: number; offset: bigint }) => {
            if (received++ === 0) firstAt = performance.now()
            if (message.offset > highest[message.partition]!) {
              highest[message.partition] = message.offset
              unique++
            }
            if (unique === GROUP_RECORDS && lastAt === 0) {
              lastAt = performance.now()
              resolve()
            }
          })
          stream.on('error', reject)
        }, reject)
      }
    })
  } finally {
    await Promise.all(consumers.map((c) => c.close(true)))
  }
  const result = summarise(`tideway: group consume, ${members} member${members > 1 ? 's' : ''}`, unique, unique * RECORD.length, lastAt - firstAt)
  return { ...result, firstRecordMs: round(firstAt - t0), readTwice: received - unique }
}

async function coldStart(runs: number): Promise<{ name: string; medianMs: number; samplesMs: number[] }> {
  const samples: number[] = []
  for (let i = 0; i < runs; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'tideway-bench-cold-'))
    const t0 = performance.now()
    const broker = await startBroker({ port: 0, dataDir: dir, logger: silentLogger })
    const producer = new Producer({ clientId: 'bench-cold', bootstrapBrokers: [broker.bootstrap], acks: -1, autocreateTopics: true })
    await producer.send({ messages: [{ topic: 'cold', value: RECORD }], acks: -1 })
    samples.push(round(performance.now() - t0))
    await producer.close()
    await broker.close()
    await rm(dir, { recursive: true, force: true })
  }
  const sorted = [...samples].sort((a, b) => a - b)
  return { name: 'embedded cold start to first acknowledged produce', medianMs: sorted[Math.floor(sorted.length / 2)]!, samplesMs: samples }
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'tideway-bench-'))
  const broker = new BrokerProcess(join(dir, 'broker'))
  try {
    const diskPerRecord = await rawDisk(dir, 1024)
    const diskBatched = await rawDisk(dir, 64 * 1024)
    await broker.start()
    const topic = 'bench-1k'
    const single = await tidewayProduce(broker.bootstrap, topic, 1, 1, 'tideway: 1 producer, 1 record/request')
    const concurrent = await tidewayProduce(broker.bootstrap, topic, 16, 1, 'tideway: 16 producers, 1 record/request')
    const batched = await tidewayProduce(broker.bootstrap, topic, 4, 64, 'tideway: 4 producers, 64 records/request')
    const idempotent = await tidewayProduce(broker.bootstrap, topic, 4, 64, 'tideway: same, idempotent producers', { idempotent: true })
    const headered = await tidewayProduce(broker.bootstrap, 'bench-headers', 4, 64, 'tideway: same + key headers, no dedup', { idempotent: true, keys: 'new' })
    sentKeys.length = 0
    await createDedupTopic(broker.bootstrap, 'bench-keyed')
    const keyed = await tidewayProduce(broker.bootstrap, 'bench-keyed', 4, 64, 'tideway: same + key dedup, new keys', { idempotent: true, keys: 'new' })
    const resent = await tidewayProduce(broker.bootstrap, 'bench-keyed', 4, 64, 'tideway: same + key dedup, keys resent', { idempotent: true, keys: 'again' })
    await fillGroupTopic(broker.bootstrap, 'bench-group')
    const group1 = await groupConsume(broker.bootstrap, 'bench-group', 1)
    const group3 = await groupConsume(broker.bootstrap, 'bench-group', 3)
    const modes: ModeResult[] = []
    for (const [delivery, db] of [['at-most-once', 'sqlite'], ['at-least-once', 'sqlite'], ['exactly-once', 'sqlite'], ['at-least-once', 'postgres'], ['exactly-once', 'postgres']] as const) {
      modes.push(await deliveryModeRun(broker.bootstrap, dir, delivery, db, SDK_RECORDS))
    }
    await broker.stop()
    const cold = await coldStart(5)

    const ratios = {
      singleVsDiskPerRecord: round(single.recordsPerSec / diskPerRecord.recordsPerSec),
      concurrentVsDiskPerRecord: round(concurrent.recordsPerSec / diskPerRecord.recordsPerSec),
      batchedVsDisk64KiB: round(batched.mbPerSec / diskBatched.mbPerSec),
      group3VsGroup1: round(group3.recordsPerSec / group1.recordsPerSec),
      idempotentVsPlain: round(idempotent.recordsPerSec / batched.recordsPerSec),
      keyDedupVsPlain: round(keyed.recordsPerSec / batched.recordsPerSec),
      keyDedupVsSameHeaders: round(keyed.recordsPerSec / headered.recordsPerSec),
      keysResentVsPlain: round(resent.recordsPerSec / batched.recordsPerSec),
      exactlyVsAtLeastOnceSqlite: round(modes[2]!.recordsPerSec / modes[1]!.recordsPerSec),
      exactlyVsAtLeastOncePostgres: round(modes[4]!.recordsPerSec / modes[3]!.recordsPerSec),
    }
    const report = {
      recordBytes: 1024,
      secondsPerScenario: SECONDS,
      results: [diskPerRecord, diskBatched, single, concurrent, batched, idempotent, headered, keyed, resent, group1, group3],
      ratios,
      groupFirstRecordMs: { members1: group1.firstRecordMs, members3: group3.firstRecordMs },
      groupReadTwice: { members1: group1.readTwice, members3: group3.readTwice },
      coldStart: cold,
      deliveryModes: modes,
    }
    if (flags.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n')
      return
    }
    const rows = report.results.map((r) =>
      [r.name.padEnd(44), String(r.recordsPerSec).padStart(9), r.mbPerSec.toFixed(2).padStart(8), (r.p50Ms?.toFixed(2) ?? '-').padStart(8), (r.p99Ms?.toFixed(2) ?? '-').padStart(8)].join('  '),
    )
    process.stdout.write(
      [
        `1 KiB records; durable produce (acks=all) ${SECONDS}s per scenario; group consume of ${GROUP_RECORDS} records`,
        `${'scenario'.padEnd(44)}  ${'rec/s'.padStart(9)}  ${'MB/s'.padStart(8)}  ${'p50 ms'.padStart(8)}  ${'p99 ms'.padStart(8)}`,
        ...rows,
        '',
        `ratio  1 producer / disk fdatasync per record:      ${ratios.singleVsDiskPerRecord}`,
        `ratio 16 producers / disk fdatasync per record:     ${ratios.concurrentVsDiskPerRecord}  (group commit)`,
        `ratio  batched MB/s / disk fdatasync per 64 KiB:     ${ratios.batchedVsDisk64KiB}`,
        `ratio  idempotent / plain batched produce:          ${ratios.idempotentVsPlain}`,
        `ratio  key dedup, new keys / plain batched:         ${ratios.keyDedupVsPlain}  (/ same headers, no dedup: ${ratios.keyDedupVsSameHeaders})`,
        `ratio  key dedup, keys resent / plain batched:      ${ratios.keysResentVsPlain}  (answered, nothing written)`,
        `ratio  group consume 3 members / 1 member:           ${ratios.group3VsGroup1}  (first record after ${group1.firstRecordMs} / ${group3.firstRecordMs} ms; read twice ${group1.readTwice} / ${group3.readTwice})`,
        `embedded cold start to first ack: median ${cold.medianMs} ms (${cold.samplesMs.join(', ')})`,
        '',
        `sdk end to end, ${SDK_RECORDS} 1 KiB records each, handled into a database balance:`,
        ...modes.map((m) => `${m.name.padEnd(44)}  ${String(m.recordsPerSec).padStart(9)} rec/s  (${m.seconds} s)`),
        `ratio  exactly-once / at-least-once, SQLite:        ${ratios.exactlyVsAtLeastOnceSqlite}`,
        `ratio  exactly-once / at-least-once, PostgreSQL:    ${ratios.exactlyVsAtLeastOncePostgres}`,
        '',
      ].join('\n'),
    )
  } finally {
    await broker.kill9()
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
