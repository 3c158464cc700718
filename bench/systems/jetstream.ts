// NATS JetStream as a system under test: a private nats-server (never the shared one on 4222) on
// a free port, JetStream file storage in a fresh temp directory, driven by nats.js v2.
//
// Every record is a durable publish (js.publish, which resolves on the stream's PubAck). One
// stream per scenario, file storage, replicas 1, on a fresh subject. Readers: an ordered consumer
// for end to end and replay (the client's own cursor, nothing to acknowledge); a durable pull
// consumer with explicit acks, each record acknowledged on its own (JetStream has no batch ack
// under the explicit policy; nats.js sends acks without waiting, and a flush at the end waits
// until the server has them all) for the group and the exactly-once consumer.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AckPolicy, connect, StorageType, type ConsumerMessages, type JsMsg, type NatsConnection } from 'nats'
import { freePort, natsServer, ServerProcess, type ServerBinary } from './binaries.ts'
import { openEffectStore } from './effect-store.ts'
import { ageMs, END_TO_END_ACK_TIMEOUT_MS, fill, payload, produceFor, sendOnSchedule, stampedPayload, Tally } from './peer-measure.ts'
import type { ConsumeOptions, EndToEndOptions, ExactlyOnceOptions, GroupOptions, Measured, PipelinedOptions, ProduceOptions, SystemUnderTest } from './types.ts'

/** Unacknowledged publishes while filling a stream for a consume scenario. */
const FILL_IN_FLIGHT = 256
/** Records a replay or group member asks for per pull request. */
const PULL_BATCH = 1000
/**
 * Pull size of the exactly-once consumer: nats.js's default. Records wait in the client for their
 * transaction, and one that waits past ack_wait (30 s) is redelivered, so the batch stays small.
 */
const EXACTLY_ONCE_BATCH = 100

const natsClientVersion = (JSON.parse(await readFile(createRequire(import.meta.url).resolve('nats/package.json'), 'utf8')) as { version: string }).version

export function jetstream(options: { sync: 'always' | 'default' }): SystemUnderTest {
  let binary: ServerBinary | undefined
  let server: ServerProcess | undefined
  let port = 0
  let dir = ''
  let streams = 0

  const connectClient = () => connect({ servers: `127.0.0.1:${port}`, timeout: 5_000, reconnect: false })

  /** A fresh file-storage stream on its own subject, deleted (with the client) after `use`. */
  async function withStream<T>(use: (nc: NatsConnection, stream: string, subject: string) => Promise<T>): Promise<T> {
    const stream = `bench_${++streams}`
    const subject = `bench.${streams}`
    const nc = await connectClient()
    try {
      const jsm = await nc.jetstreamManager()
      await jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.File, num_replicas: 1 })
      try {
        return await use(nc, stream, subject)
      } finally {
        await jsm.streams.delete(stream)
      }
    } finally {
      await nc.close()
    }
  }

  /**
   * Fills the stream and runs `prepare` (creating a durable consumer, say), then times `read`
   * from its first request until the tally completes and `read`'s acknowledgements are flushed.
   */
  async function consumeScenario(
    consume: ConsumeOptions,
    what: string,
    prepare: (nc: NatsConnection, stream: string) => Promise<unknown>,
    read: (nc: NatsConnection, stream: string, tally: Tally) => Promise<Reading>,
  ): Promise<Measured> {
    return withStream(async (nc, stream, subject) => {
      const js = nc.jetstream()
      const record = payload(consume.recordBytes)
      await fill(consume.records, FILL_IN_FLIGHT, () => js.publish(subject, record))
      await prepare(nc, stream)
      const tally = new Tally(`jetstream ${what}`, consume.records)
      const start = performance.now()
      const reading = await read(nc, stream, tally)
      try {
        await tally.settled
        await reading.flush()
      } finally {
        await reading.stop()
      }
      const elapsedMs = performance.now() - start
      return { records: tally.received, bytes: tally.received * consume.recordBytes, elapsedMs, latenciesMs: [] }
    })
  }

  return {
    name: `jetstream sync=${options.sync}`,
    describe: () =>
      [
        `nats-server ${binary?.version ?? '?'} (${binary?.path ?? 'not started'}), private instance on 127.0.0.1:${port}, client nats.js ${natsClientVersion}`,
        'JetStream file storage in a fresh temp dir, one stream per scenario, replicas 1',
        options.sync === 'always'
          ? 'sync_interval: always: the file store fsyncs every write before the publish is acknowledged'
          : "sync_interval unset: JetStream's default fsyncs in the background every 2 minutes, so an acknowledged publish may still be only in the page cache",
      ].join('; '),

    async start() {
      binary = await natsServer()
      port = await freePort()
      dir = await mkdtemp(join(tmpdir(), 'tideway-bench-jetstream-'))
      const config = join(dir, 'nats-server.conf')
      const syncLine = options.sync === 'always' ? '  sync_interval: always\n' : ''
      await writeFile(config, `listen: "127.0.0.1:${port}"\njetstream {\n  store_dir: ${JSON.stringify(join(dir, 'store'))}\n${syncLine}}\n`)
      server = new ServerProcess('nats-server', binary.path, ['-c', config])
      await server.waitForPort(port)
    },

    async stop() {
      await server?.stop()
      server = undefined
      if (dir) await rm(dir, { recursive: true, force: true })
    },

    produceOneAtATime({ recordBytes, seconds }: ProduceOptions) {
      return withStream((nc, _stream, subject) => {
        const js = nc.jetstream()
        const record = payload(recordBytes)
        return produceFor(seconds, recordBytes, 1, () => js.publish(subject, record))
      })
    },

    producePipelined({ recordBytes, seconds, inFlight }: PipelinedOptions) {
      // nats.js pipelines by itself: every js.publish() goes out at once and resolves on its PubAck.
      return withStream((nc, _stream, subject) => {
        const js = nc.jetstream()
        const record = payload(recordBytes)
        return produceFor(seconds, recordBytes, inFlight, () => js.publish(subject, record))
      })
    },

    endToEnd({ recordBytes, ratePerSec, seconds }: EndToEndOptions) {
      return withStream(async (nc, stream, subject) => {
        const js = nc.jetstream()
        const messages = await (await js.consumers.get(stream)).consume({ max_messages: PULL_BATCH })
        // A first record, not measured, proves the consumer is in place before the schedule starts.
        const warmUp = new Tally('jetstream endToEnd warm-up', 1)
        let tally = warmUp
        const latenciesMs: number[] = []
        const reading = drain(messages, (m) => {
          if (tally !== warmUp) latenciesMs.push(ageMs(m.data))
          tally.add()
        }).catch((err) => tally.fail(err))
        try {
          await js.publish(subject, stampedPayload(recordBytes))
          await warmUp.settled
          tally = new Tally('jetstream endToEnd', Math.round(ratePerSec * seconds))
          const acks: Promise<unknown>[] = []
          const start = performance.now()
          await sendOnSchedule(ratePerSec, seconds, () =>
            acks.push(js.publish(subject, stampedPayload(recordBytes), { timeout: END_TO_END_ACK_TIMEOUT_MS })),
          )
          await Promise.all(acks)
          await tally.settled
          const elapsedMs = performance.now() - start
          return { records: latenciesMs.length, bytes: latenciesMs.length * recordBytes, elapsedMs, latenciesMs }
        } finally {
          messages.stop()
          await reading
        }
      })
    },

    replay(consume: ConsumeOptions) {
      return consumeScenario(
        consume,
        'replay',
        async () => {},
        async (nc, stream, tally) => {
          const messages = await (await nc.jetstream().consumers.get(stream)).consume({ max_messages: PULL_BATCH })
          return reading([messages], tally, () => tally.add())
        },
      )
    },

    async groupConsume(group: GroupOptions) {
      const members = await Promise.all(Array.from({ length: group.members }, connectClient))
      try {
        return await consumeScenario(
          group,
          'groupConsume',
          async (nc, stream) =>
            (await nc.jetstreamManager()).consumers.add(stream, {
              durable_name: 'bench-group',
              ack_policy: AckPolicy.Explicit,
              // Enough unacknowledged records for every member to hold a full pull batch.
              max_ack_pending: group.members * PULL_BATCH,
            }),
          async (_nc, stream, tally) => {
            const readers = await Promise.all(
              members.map(async (member) => (await member.jetstream().consumers.get(stream, 'bench-group')).consume({ max_messages: PULL_BATCH })),
            )
            const consumers = reading(readers, tally, (m) => {
              m.ack()
              if (!m.redelivered) tally.add()
            })
            return { ...consumers, flush: async () => void (await Promise.all(members.map((member) => member.flush()))) }
          },
        )
      } finally {
        await Promise.all(members.map((member) => member.close()))
      }
    },

    async exactlyOnceConsume(exactlyOnce: ExactlyOnceOptions) {
      const effects = await openEffectStore(exactlyOnce.store, dir)
      try {
        return await consumeScenario(
          exactlyOnce,
          `exactlyOnceConsume (${exactlyOnce.store})`,
          async (nc, stream) => (await nc.jetstreamManager()).consumers.add(stream, { durable_name: 'bench-exactly-once', ack_policy: AckPolicy.Explicit }),
          async (nc, stream, tally) => {
            const messages = await (await nc.jetstream().consumers.get(stream, 'bench-exactly-once')).consume({ max_messages: EXACTLY_ONCE_BATCH })
            const consumers = reading([messages], tally, async (m) => {
              // A redelivered record finds its id in the inbox and changes nothing; it is acknowledged all the same.
              await effects.apply(`${stream}:${m.seq}`, 1)
              m.ack()
              if (!m.redelivered) tally.add()
            })
            return { ...consumers, flush: async () => void (await nc.flush()) }
          },
        )
      } finally {
        await effects.close()
      }
    },
  }
}

/** Consumers at work: `flush` waits until the server has their acknowledgements, `stop` ends them. */
interface Reading {
  flush(): Promise<void>
  stop(): Promise<void>
}

/** Runs `onMessage` for every message of every `readers` until stopped; the first error fails `tally`. */
function reading(readers: readonly ConsumerMessages[], tally: Tally, onMessage: (m: JsMsg) => void | Promise<void>): Reading {
  const drained = readers.map((messages) => drain(messages, onMessage).catch((err) => tally.fail(err)))
  return {
    flush: async () => {},
    stop: async () => {
      for (const messages of readers) messages.stop()
      await Promise.all(drained)
    },
  }
}

async function drain(messages: ConsumerMessages, onMessage: (m: JsMsg) => void | Promise<void>): Promise<void> {
  for await (const m of messages) await onMessage(m)
}
