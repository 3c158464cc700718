// Tideway under the bench: the broker in a child process (`tideway broker`, as users run it) on a
// fresh data directory, driven by @platformatic/kafka, and by kcat (librdkafka) for the produce
// and replay rows that show what the broker does when the client is not the bottleneck.
// flush 'always' is the default (fsync before the acknowledgement, group commit); 'interval'
// acknowledges after the write and fsyncs every second, like Redis's appendfsync everysec.
import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin, Consumer, MessagesStreamModes, Producer } from '@platformatic/kafka'
import { createConsumer } from '../../src/index.ts'
import { Fetch } from '../../src/protocol/apis/index.ts'
import { nextOffsetAfter } from '../../test/helpers/batches.ts'
import { BrokerProcess } from '../../test/helpers/broker-process.ts'
import { RawClient } from '../../test/helpers/raw-client.ts'
import { dueAtMs } from '../measure.ts'
import { withDatabase } from '../sdk-modes.ts'
import type { ConsumeOptions, EndToEndOptions, ExactlyOnceOptions, GroupOptions, Measured, PipelinedOptions, ProduceOptions, SystemUnderTest } from './types.ts'

/** Records per produce request when pipelining: what a Kafka client's linger batching sends. */
const BATCH = 64
const GROUP_PARTITIONS = 6
/** @platformatic/kafka's default limit of requests in flight on a connection (maxInflights). */
const CLIENT_IN_FLIGHT = 5
/** No consume or end-to-end wait may take longer than this. */
const WAIT_LIMIT_MS = 180_000

export interface TidewayOptions {
  readonly flush: 'always' | 'interval'
}

export function tideway(options: TidewayOptions): TidewayUnderTest {
  return new TidewayUnderTest(options)
}

export class TidewayUnderTest implements SystemUnderTest {
  readonly name: string
  readonly #options: TidewayOptions
  #dir = ''
  #broker: BrokerProcess | undefined
  /** A broker started by someone else (bench/profile.ts), used instead of our own. */
  #attached: string | undefined
  #topics = 0

  constructor(options: TidewayOptions) {
    this.#options = options
    this.name = options.flush === 'always' ? 'tideway flush=always' : 'tideway flush=1s'
  }

  describe(): string {
    const flush = this.#options.flush === 'always' ? '--flush always (the default: fsync before every acknowledgement, group commit)' : '--flush interval:1000 (acknowledged after the write; fsync every second)'
    return `Tideway broker process on 127.0.0.1:${this.#broker?.port ?? '?'}, fresh data directory, ${flush}; client @platformatic/kafka, acks=all`
  }

  get bootstrap(): string {
    return this.#attached ?? this.#broker!.bootstrap
  }

  /** Drives a broker already listening on `bootstrap`, keeping scratch files in `dir`; no start or stop. */
  attach(bootstrap: string, dir: string): this {
    this.#attached = bootstrap
    this.#dir = dir
    return this
  }

  async start(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'tideway-bench-'))
    this.#broker = new BrokerProcess(join(this.#dir, 'data'), ['--flush', this.#options.flush === 'always' ? 'always' : 'interval:1000'])
    await this.#broker.start()
  }

  async stop(): Promise<void> {
    await this.#broker?.stop()
    await rm(this.#dir, { recursive: true, force: true })
  }

  async #topic(scenario: string, partitions = 1): Promise<string> {
    const topic = `bench-${scenario}-${++this.#topics}`
    const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: [this.bootstrap] })
    try {
      await admin.createTopics({ topics: [topic], partitions })
    } finally {
      await admin.close()
    }
    return topic
  }

  #producer(): Producer<Buffer, Buffer, Buffer, Buffer> {
    return new Producer({ clientId: 'bench-producer', bootstrapBrokers: [this.bootstrap], acks: -1 })
  }

  async produceOneAtATime({ recordBytes, seconds }: ProduceOptions): Promise<Measured> {
    const topic = await this.#topic('one')
    const value = Buffer.alloc(recordBytes, 'x')
    const producer = this.#producer()
    try {
      await producer.send({ messages: [{ topic, value, partition: 0 }] })
      const latenciesMs: number[] = []
      const start = performance.now()
      while (performance.now() - start < seconds * 1000) {
        const t0 = performance.now()
        await producer.send({ messages: [{ topic, value, partition: 0 }] })
        latenciesMs.push(performance.now() - t0)
      }
      const elapsedMs = performance.now() - start
      return { records: latenciesMs.length, bytes: latenciesMs.length * recordBytes, elapsedMs, latenciesMs }
    } finally {
      await producer.close()
    }
  }

  async producePipelined({ recordBytes, seconds, inFlight }: PipelinedOptions): Promise<Measured> {
    const topic = await this.#topic('pipelined')
    const value = Buffer.alloc(recordBytes, 'x')
    const perRequest = Math.min(BATCH, inFlight)
    const messages = Array.from({ length: perRequest }, () => ({ topic, value, partition: 0 }))
    const producer = this.#producer()
    try {
      await producer.send({ messages: [{ topic, value, partition: 0 }] })
      const latenciesMs: number[] = []
      const start = performance.now()
      const sender = async () => {
        while (performance.now() - start < seconds * 1000) {
          const t0 = performance.now()
          await producer.send({ messages })
          const took = performance.now() - t0
          for (let i = 0; i < perRequest; i++) latenciesMs.push(took)
        }
      }
      await Promise.all(Array.from({ length: Math.max(1, Math.floor(inFlight / perRequest)) }, sender))
      const elapsedMs = performance.now() - start
      return { records: latenciesMs.length, bytes: latenciesMs.length * recordBytes, elapsedMs, latenciesMs }
    } finally {
      await producer.close()
    }
  }

  async endToEnd({ recordBytes, ratePerSec, seconds }: EndToEndOptions): Promise<Measured> {
    const topic = await this.#topic('e2e')
    const total = Math.max(1, Math.round(ratePerSec * seconds))
    const consumer = new Consumer({ clientId: 'bench-e2e', groupId: `${topic}-group`, bootstrapBrokers: [this.bootstrap], maxWaitTime: 500 })
    const producer = this.#producer()
    const latenciesMs: number[] = []
    let warmedUp: () => void = () => {}
    const ready = new Promise<void>((resolve) => (warmedUp = resolve))
    let finished: () => void = () => {}
    const done = new Promise<void>((resolve) => (finished = resolve))
    try {
      const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false })
      stream.on('data', (message: { value: Buffer }) => {
        const sentAt = message.value.readDoubleLE(0)
        if (sentAt < 0) return warmedUp()
        latenciesMs.push(performance.now() - sentAt)
        if (latenciesMs.length === total) finished()
      })
      // The consumer has joined and fetches: from here on, a record's latency is the broker's.
      const warmup = Buffer.alloc(recordBytes, 'w')
      warmup.writeDoubleLE(-1, 0)
      await producer.send({ messages: [{ topic, value: warmup, partition: 0 }] })
      await withLimit(ready, 'the end-to-end consumer to start')
      const start = performance.now()
      const sends: Promise<unknown>[] = []
      // Records that fall due while the client's five requests are in flight wait and go
      // together in the next request, as a Kafka client batches what is queued (linger.ms=0):
      // one request per record would let the client's in-flight limit, not the broker, set the rate.
      let due: { topic: string; value: Buffer; partition: number }[] = []
      let inFlight = 0
      const flush = () => {
        if (due.length === 0 || inFlight >= CLIENT_IN_FLIGHT) return
        inFlight++
        const sent = producer.send({ messages: due }).finally(() => {
          inFlight--
          flush()
        })
        sends.push(sent)
        due = []
      }
      for (let i = 0; i < total; i++) {
        const wait = dueAtMs(start, i, ratePerSec) - performance.now()
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
        const value = Buffer.alloc(recordBytes, 'x')
        value.writeDoubleLE(performance.now(), 0)
        due.push({ topic, value, partition: 0 })
        flush()
      }
      await withLimit(
        (async () => {
          while (due.length > 0 || inFlight > 0) await Promise.all(sends)
        })(),
        'the last end-to-end sends',
      )
      await Promise.all(sends)
      await withLimit(done, `${total} records to arrive end to end`)
      const elapsedMs = performance.now() - start
      return { records: latenciesMs.length, bytes: latenciesMs.length * recordBytes, elapsedMs, latenciesMs }
    } finally {
      await producer.close()
      await consumer.close(true)
    }
  }

  /** Writes `records` records of `recordBytes` to `topic`, BATCH per request, 8 requests in flight. */
  async fill(topic: string, records: number, recordBytes: number, partitions = 1): Promise<void> {
    const value = Buffer.alloc(recordBytes, 'x')
    const producer = this.#producer()
    try {
      const inFlight: Promise<unknown>[] = []
      for (let sent = 0; sent < records; sent += BATCH) {
        const count = Math.min(BATCH, records - sent)
        const partition = (sent / BATCH) % partitions
        inFlight.push(producer.send({ messages: Array.from({ length: count }, () => ({ topic, value, partition, key: Buffer.from(`k${sent % 50}`) })) }))
        if (inFlight.length >= 8) await inFlight.shift()
      }
      await Promise.all(inFlight)
    } finally {
      await producer.close()
    }
  }

  async replay({ recordBytes, records }: ConsumeOptions): Promise<Measured> {
    const topic = await this.#topic('replay')
    await this.fill(topic, records, recordBytes)
    return this.#consumeAll(topic, records, recordBytes, 1, 1)
  }

  async groupConsume({ recordBytes, records, members }: GroupOptions): Promise<Measured> {
    const topic = await this.#topic('group', GROUP_PARTITIONS)
    await this.fill(topic, records, recordBytes, GROUP_PARTITIONS)
    return this.#consumeAll(topic, records, recordBytes, members, GROUP_PARTITIONS)
  }

  /**
   * `members` consumers of one group read `topic` from the first record until each record was
   * seen once; measured from the first record to the last (the join is not the broker's
   * throughput). A record at or below the highest offset seen on its partition is a re-read
   * after a rebalance and does not count.
   */
  async #consumeAll(topic: string, records: number, recordBytes: number, members: number, partitions: number): Promise<Measured> {
    const groupId = `${topic}-group`
    const consumers = Array.from({ length: members }, (_, i) => new Consumer({ clientId: `bench-member-${i}`, groupId, bootstrapBrokers: [this.bootstrap], maxWaitTime: 100 }))
    const highest = new Array<bigint>(partitions).fill(-1n)
    let unique = 0
    let firstAt = 0
    let lastAt = 0
    try {
      await withLimit(
        new Promise<void>((resolve, reject) => {
          for (const consumer of consumers) {
            consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: 1000 }).then((stream) => {
              stream.on('data', (message: { partition: number; offset: bigint }) => {
                if (firstAt === 0) firstAt = performance.now()
                if (message.offset <= highest[message.partition]!) return
                highest[message.partition] = message.offset
                if (++unique === records) {
                  lastAt = performance.now()
                  resolve()
                }
              })
              stream.on('error', reject)
            }, reject)
          }
        }),
        `${members} member(s) to read ${records} records`,
      )
    } finally {
      await Promise.all(consumers.map((c) => c.close(true)))
    }
    return { records: unique, bytes: unique * recordBytes, elapsedMs: lastAt - firstAt, latenciesMs: [] }
  }

  async exactlyOnceConsume({ recordBytes, records, store: kind }: ExactlyOnceOptions): Promise<Measured> {
    const topic = await this.#topic(`eos-${kind}`, 3)
    await this.fill(topic, records, recordBytes, 3)
    return withDatabase(kind, this.#dir, async (store) => {
      await store.migrate()
      const p = (n: number) => (store.dialect === 'postgres' ? `$${n}` : '?')
      await store.transaction((tx) => tx.query('CREATE TABLE IF NOT EXISTS bench_balances (account TEXT PRIMARY KEY, amount BIGINT NOT NULL)'))
      let handled = 0
      let firstAt = 0
      let lastAt = 0
      let finished: () => void = () => {}
      const done = new Promise<void>((resolve) => (finished = resolve))
      const consumer = createConsumer({
        bootstrap: this.bootstrap,
        groupId: `${topic}-group`,
        topics: [topic],
        delivery: 'exactly-once',
        store,
        handler: async (message, ctx) => {
          if (firstAt === 0) firstAt = performance.now()
          await ctx.tx!.query(`INSERT INTO bench_balances (account, amount) VALUES (${p(1)}, 1) ON CONFLICT (account) DO UPDATE SET amount = bench_balances.amount + 1`, [message.key?.toString() ?? ''])
          if (++handled === records) {
            lastAt = performance.now()
            finished()
          }
        },
      })
      await consumer.start()
      try {
        await withLimit(done, `the exactly-once consumer to handle ${records} records`)
      } finally {
        await consumer.stop()
      }
      return { records: handled, bytes: handled * recordBytes, elapsedMs: lastAt - firstAt, latenciesMs: [] }
    })
  }

  /**
   * Replay by a minimal client (test/helpers/raw-client.ts) that reads batch headers only and
   * decodes no record: what the broker serves when the client does no per-record work. Fetch v12,
   * up to 50 MiB an answer, from offset 0 until `records` records have arrived.
   */
  async rawReplay(recordBytes: number, records: number): Promise<Measured> {
    const topic = await this.#topic('raw-replay')
    await this.fill(topic, records, recordBytes)
    const client = await RawClient.connect(this.bootstrap)
    const maxBytes = 50 * 1024 * 1024
    let offset = 0n
    const start = performance.now()
    try {
      while (offset < BigInt(records)) {
        const response = await client.request(Fetch, 12, {
          maxWaitMs: 500,
          minBytes: 1,
          maxBytes,
          topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: maxBytes }] }],
          forgottenTopicsData: [],
        })
        const data = response.responses[0]!.partitions[0]!
        if (data.errorCode !== 0) throw new Error(`fetch at ${offset} failed with error ${data.errorCode}`)
        const next = data.records ? nextOffsetAfter(data.records) : undefined
        if (next === undefined) throw new Error(`fetch at ${offset} returned no whole batch`)
        offset = next
      }
    } finally {
      client.socket.destroy()
    }
    return { records, bytes: records * recordBytes, elapsedMs: performance.now() - start, latenciesMs: [] }
  }

  /** kcat (librdkafka) writes `records` records to a fresh topic: its own batching, acks=all. */
  async kcatProduce(recordBytes: number, records: number): Promise<Measured> {
    const topic = await this.#topic('kcat-produce')
    const input = join(this.#dir, `kcat-input-${randomBytes(3).toString('hex')}`)
    const record = Buffer.concat([Buffer.alloc(recordBytes, 'x'), Buffer.from('|')])
    await writeFile(input, Buffer.concat(Array.from({ length: records }, () => record)))
    const start = performance.now()
    await run('kcat', ['-P', '-b', this.bootstrap, '-t', topic, '-p', '0', '-D', '|', '-X', 'acks=all', '-X', 'enable.idempotence=false'], input)
    const elapsedMs = performance.now() - start
    await rm(input, { force: true })
    return { records, bytes: records * recordBytes, elapsedMs, latenciesMs: [] }
  }

  /** kcat (librdkafka) reads `records` records of a fresh topic from the first, printing only offsets. */
  async kcatReplay(recordBytes: number, records: number): Promise<Measured> {
    const topic = await this.#topic('kcat-replay')
    await this.fill(topic, records, recordBytes)
    const start = performance.now()
    const out = await run('kcat', ['-C', '-b', this.bootstrap, '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o\\n'])
    const elapsedMs = performance.now() - start
    const read = out.split('\n').filter((line) => line !== '').length
    if (read !== records) throw new Error(`kcat read ${read} of ${records} records`)
    return { records, bytes: records * recordBytes, elapsedMs, latenciesMs: [] }
  }
}

function withLimit<T>(promise: Promise<T>, what: string, limitMs = WAIT_LIMIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${limitMs} ms waiting for ${what}`)), limitMs)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

/** Runs a command to completion within WAIT_LIMIT_MS, stdin from `stdinFile`; resolves with its stdout. */
function run(command: string, args: readonly string[], stdinFile?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = stdinFile === undefined ? 'ignore' : openSync(stdinFile, 'r')
    const child = spawn(command, args, { stdio: [stdin, 'pipe', 'pipe'], timeout: WAIT_LIMIT_MS, killSignal: 'SIGKILL' })
    if (typeof stdin === 'number') closeSync(stdin)
    const out: Buffer[] = []
    let err = ''
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString())
      else reject(new Error(`${command} ${args.join(' ')} exited ${code ?? signal}: ${err.slice(-2000)}`))
    })
  })
}
