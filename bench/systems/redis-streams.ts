// Redis Streams as a system under test: a private redis-server (never the shared one on 6379) on
// a free port, AOF on with the given appendfsync and no RDB snapshots, driven by ioredis.
//
// One stream key per scenario, XADD with `*` ids, each record one field `d` holding the payload.
// Readers: XREAD BLOCK for end to end, XRANGE pages for replay, and a consumer group (XGROUP
// CREATE, XREADGROUP … >) for the group and the exactly-once consumer, which acknowledge each
// batch they read with one XACK once it is processed (XACK takes many ids, as apps use it).
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort, redisServer, ServerProcess, type ServerBinary } from './binaries.ts'
import { openEffectStore } from './effect-store.ts'
import { ageMs, END_TO_END_ACK_TIMEOUT_MS, fill, payload, produceFor, sendOnSchedule, stampedPayload, Tally } from './peer-measure.ts'
import type { ConsumeOptions, EndToEndOptions, ExactlyOnceOptions, GroupOptions, Measured, PipelinedOptions, ProduceOptions, SystemUnderTest } from './types.ts'

/** Unacknowledged XADDs while filling a stream for a consume scenario. */
const FILL_IN_FLIGHT = 256
/** Records per XRANGE page, XREAD or XREADGROUP of the replay, end to end and group readers. */
const READ_BATCH = 1000
/** Records per XREADGROUP of the exactly-once consumer: the same as JetStream's pull size there. */
const EXACTLY_ONCE_BATCH = 100
/** How long one blocking XREAD waits for a record; well under the command timeout. */
const BLOCK_MS = 1_000
const GROUP = 'bench-group'

interface ClientOptions {
  autoPipelining?: boolean
  /** How long any one command may wait for its reply. */
  commandTimeoutMs?: number
}

const ioredisVersion = (JSON.parse(await readFile(createRequire(import.meta.url).resolve('ioredis/package.json'), 'utf8')) as { version: string }).version

export function redisStreams(options: { appendfsync: 'always' | 'everysec' }): SystemUnderTest {
  let binary: ServerBinary | undefined
  let server: ServerProcess | undefined
  let port = 0
  let dir = ''
  let streams = 0

  async function connectClient(clientOptions: ClientOptions = {}): Promise<Redis> {
    const redis = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      enableAutoPipelining: clientOptions.autoPipelining ?? false,
      connectTimeout: 5_000,
      commandTimeout: clientOptions.commandTimeoutMs ?? 15_000,
      // A private server that goes away is a failed run: fail the command, do not reconnect.
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    })
    await redis.connect()
    return redis
  }

  /** A fresh stream key and a client, both gone after `use`. */
  async function withStream<T>(use: (redis: Redis, key: string) => Promise<T>, clientOptions: ClientOptions = {}): Promise<T> {
    const key = `bench:${++streams}`
    const redis = await connectClient(clientOptions)
    try {
      return await use(redis, key)
    } finally {
      await redis.del(key)
      redis.disconnect()
    }
  }

  /** Fills the stream and runs `prepare`, then times `read` from its first request until it has read every record. */
  async function consumeScenario(
    consume: ConsumeOptions,
    what: string,
    prepare: (redis: Redis, key: string) => Promise<unknown>,
    read: (key: string, tally: Tally) => Promise<void>,
  ): Promise<Measured> {
    return withStream(async (redis, key) => {
      const record = payload(consume.recordBytes)
      await fill(consume.records, FILL_IN_FLIGHT, () => redis.xadd(key, '*', 'd', record))
      await prepare(redis, key)
      const tally = new Tally(`redis ${what}`, consume.records)
      const start = performance.now()
      const reading = read(key, tally).then(
        () => tally.fail(new Error(`redis ${what}: the stream ran out after ${tally.received} of ${consume.records} records`)),
        (err) => tally.fail(err),
      )
      await tally.settled
      const elapsedMs = performance.now() - start
      await reading
      return { records: tally.received, bytes: tally.received * consume.recordBytes, elapsedMs, latenciesMs: [] }
    }, { autoPipelining: true })
  }

  /**
   * `members` consumers of one group, each on its own connection, reading batches of `count`
   * with XREADGROUP and handing each batch's ids to `handle` before acknowledging it with one XACK.
   */
  async function readGroup(key: string, tally: Tally, members: number, count: number, handle: (ids: Buffer[]) => Promise<void>): Promise<void> {
    const clients = await Promise.all(Array.from({ length: members }, () => connectClient()))
    try {
      await Promise.all(
        clients.map(async (client, member) => {
          while (tally.open) {
            const reply = await client.xreadgroupBuffer('GROUP', GROUP, `member-${member}`, 'COUNT', count, 'STREAMS', key, '>')
            const entries = reply?.[0]?.[1]
            // Nothing left that the group has not delivered: this member is done.
            if (!entries || entries.length === 0) return
            const ids = entries.map(([id]) => id)
            await handle(ids)
            await client.xack(key, GROUP, ...ids)
            tally.add(entries.length)
          }
        }),
      )
    } finally {
      for (const client of clients) client.disconnect()
    }
  }

  const createGroup = (redis: Redis, key: string) => redis.xgroup('CREATE', key, GROUP, '0')

  return {
    name: `redis appendfsync=${options.appendfsync}`,
    describe: () =>
      [
        `redis-server ${binary?.version ?? '?'} (${binary?.path ?? 'not started'}), private instance on 127.0.0.1:${port}, client ioredis ${ioredisVersion} (RESP3)`,
        "AOF on (appendonly yes) in a fresh temp dir, no RDB snapshots (save ''), automatic AOF rewrite at Redis's defaults",
        options.appendfsync === 'always'
          ? 'appendfsync always: each batch of commands is written to the AOF and fsynced before the replies are sent, so an acknowledged XADD is on disk'
          : 'appendfsync everysec: commands are written to the AOF before the reply and fsynced about once a second in the background; per the Redis docs a crash of the machine may lose about 1 s of acknowledged XADDs',
      ].join('; '),

    async start() {
      binary = await redisServer()
      port = await freePort()
      dir = await mkdtemp(join(tmpdir(), 'tideway-bench-redis-'))
      server = new ServerProcess('redis-server', binary.path, [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--dir', dir,
        '--appendonly', 'yes',
        '--appendfsync', options.appendfsync,
        '--save', '',
      ])
      await server.waitForPort(port)
    },

    async stop() {
      await server?.stop()
      server = undefined
      if (dir) await rm(dir, { recursive: true, force: true })
    },

    produceOneAtATime({ recordBytes, seconds }: ProduceOptions) {
      return withStream((redis, key) => {
        const record = payload(recordBytes)
        return produceFor(seconds, recordBytes, 1, () => redis.xadd(key, '*', 'd', record))
      })
    },

    producePipelined({ recordBytes, seconds, inFlight }: PipelinedOptions) {
      // Auto-pipelining writes the XADDs issued in one tick to the socket together.
      return withStream(
        (redis, key) => {
          const record = payload(recordBytes)
          return produceFor(seconds, recordBytes, inFlight, () => redis.xadd(key, '*', 'd', record))
        },
        { autoPipelining: true },
      )
    },

    endToEnd({ recordBytes, ratePerSec, seconds }: EndToEndOptions) {
      return withStream(async (redis, key) => {
        // XREAD BLOCK holds its connection, so the reader has its own.
        const reader = await connectClient()
        // A first record, not measured, proves the reader is in place before the schedule starts.
        const warmUp = new Tally('redis endToEnd warm-up', 1)
        let tally = warmUp
        const latenciesMs: number[] = []
        let stopped = false
        const reading = (async () => {
          let lastId: Buffer | string = '0-0'
          while (!stopped) {
            const reply: [key: Buffer, entries: [id: Buffer, fields: Buffer[]][]][] | null = await reader.xreadBuffer('COUNT', READ_BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', key, lastId)
            for (const [id, fields] of reply?.[0]?.[1] ?? []) {
              if (tally !== warmUp) latenciesMs.push(ageMs(fields[1]!))
              tally.add()
              lastId = id
            }
          }
        })().catch((err) => tally.fail(err))
        try {
          await redis.xadd(key, '*', 'd', stampedPayload(recordBytes))
          await warmUp.settled
          tally = new Tally('redis endToEnd', Math.round(ratePerSec * seconds))
          const acks: Promise<unknown>[] = []
          const start = performance.now()
          await sendOnSchedule(ratePerSec, seconds, () => acks.push(redis.xadd(key, '*', 'd', stampedPayload(recordBytes))))
          await Promise.all(acks)
          await tally.settled
          const elapsedMs = performance.now() - start
          return { records: latenciesMs.length, bytes: latenciesMs.length * recordBytes, elapsedMs, latenciesMs }
        } finally {
          // Disconnecting ends the XREAD still blocked; its error is no news once the tally has settled.
          stopped = true
          reader.disconnect()
          await reading
        }
      }, { commandTimeoutMs: END_TO_END_ACK_TIMEOUT_MS })
    },

    replay(consume: ConsumeOptions) {
      return consumeScenario(
        consume,
        'replay',
        async () => {},
        async (key, tally) => {
          const reader = await connectClient()
          try {
            let start: string = '-'
            while (tally.open) {
              const page = await reader.xrangeBuffer(key, start, '+', 'COUNT', READ_BATCH)
              if (page.length === 0) return
              tally.add(page.length)
              // `(` makes the next page start after this one's last id.
              start = `(${page[page.length - 1]![0].toString()}`
            }
          } finally {
            reader.disconnect()
          }
        },
      )
    },

    groupConsume(group: GroupOptions) {
      return consumeScenario(group, 'groupConsume', createGroup, (key, tally) => readGroup(key, tally, group.members, READ_BATCH, async () => {}))
    },

    async exactlyOnceConsume(exactlyOnce: ExactlyOnceOptions) {
      const effects = await openEffectStore(exactlyOnce.store, dir)
      try {
        return await consumeScenario(exactlyOnce, `exactlyOnceConsume (${exactlyOnce.store})`, createGroup, (key, tally) =>
          readGroup(key, tally, 1, EXACTLY_ONCE_BATCH, async (ids) => {
            // Each record in its own transaction, as the JetStream consumer does; the batch's XACK follows their commits.
            for (const id of ids) await effects.apply(`${key}:${id.toString()}`, 1)
          }),
        )
      } finally {
        await effects.close()
      }
    },
  }
}
