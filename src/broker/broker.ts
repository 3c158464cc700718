// The broker as a library: `startBroker()` opens (and recovers) the data directory, listens,
// and returns the bound address and a `close()`. `tideway broker` and `npm start` run exactly
// this; tests embed it in-process with `port: 0` and a temp directory.
//
//   const broker = await startBroker({ port: 0, dataDir: tmp })
//   // ... point any Kafka client at broker.bootstrap ...
//   await broker.close()

import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { systemClock, type Clock } from '../clock.ts'
import { jsonLogger, type Logger } from '../logger.ts'
import { TopicStore } from '../storage/topic-store.ts'
import { mkdirDurably, nodeFileIO, writeFileDurably, type FileIO } from '../storage/file-io.ts'
import { resolveConfig, type BrokerConfig } from './config.ts'
import { openGroupCoordinator } from './groups/index.ts'
import { ProducerIdAllocator } from './producer-ids.ts'
import type { BrokerServices, HandlerEntry } from './handler.ts'
import { buildHandlers } from './handlers/index.ts'
import { RequestBytesBudget, WarningLimiter } from './limits.ts'
import { BrokerServer } from './server.ts'

export interface StartBrokerOptions extends Partial<BrokerConfig> {
  /** Where logs go (default: JSON lines on stderr at `logLevel`). */
  logger?: Logger
  clock?: Clock
  /** The file layer under the logs (tests swap in a faulty or simulated disk). */
  io?: FileIO
}

export interface RunningBroker {
  readonly host: string
  readonly port: number
  /** `host:port`, ready for a client's bootstrap servers. */
  readonly bootstrap: string
  readonly config: BrokerConfig
  readonly clusterId: string
  /** Stops accepting, finishes in-flight requests, syncs and closes the logs. Idempotent. */
  close(): Promise<void>
}

export async function startBroker(options: StartBrokerOptions = {}): Promise<RunningBroker> {
  const { logger: givenLogger, clock = systemClock, io = nodeFileIO, ...overrides } = options
  const config = resolveConfig(overrides)
  const logger = givenLogger ?? jsonLogger({ level: config.logLevel })
  const started = clock.monotonicMs()

  await mkdirDurably(io, config.dataDir)
  const clusterId = await loadOrCreateClusterId(io, config.dataDir)
  const producerIds = await ProducerIdAllocator.open(io, config.dataDir)
  const topics = await TopicStore.open({
    dataDir: config.dataDir,
    io,
    clock,
    logger: logger.child({ component: 'storage' }),
    flush: config.flush,
    producerIdExpirationMs: config.producerIdExpirationMs,
  })
  let groups
  try {
    groups = await openGroupCoordinator({ config, clock, logger, io })
  } catch (err) {
    await topics.close()
    throw err
  }

  const handlers = new Map<number, HandlerEntry>()
  const services: BrokerServices = {
    config,
    clock,
    logger,
    clusterId,
    advertised: { host: config.advertisedHost || config.host, port: config.advertisedPort || config.port },
    topics,
    groups,
    producerIds,
    handlers,
  }
  for (const [key, entry] of buildHandlers(services)) handlers.set(key, entry)

  const server = new BrokerServer(
    handlers,
    {
      host: config.host,
      port: config.port,
      maxConnections: config.maxConnections,
      limits: {
        maxFrameBytes: config.maxFrameBytes,
        maxInFlight: config.maxInFlightPerConnection,
        idleTimeoutMs: config.idleTimeoutMs,
        requestReadTimeoutMs: config.requestReadTimeoutMs,
        requestBytes: new RequestBytesBudget(config.maxQueuedRequestBytes),
        warnings: new WarningLimiter(10, () => clock.monotonicMs()),
      },
    },
    logger,
  )
  let bound: { host: string; port: number }
  try {
    bound = await server.listen(config.host, config.port)
  } catch (err) {
    await groups.close()
    await topics.close()
    throw err
  }
  ;(services as { advertised: { host: string; port: number } }).advertised = {
    host: config.advertisedHost || bound.host,
    port: config.advertisedPort || bound.port,
  }

  const retention = setInterval(() => {
    // pubsub topics: a segment goes once every group with offsets there has committed past it;
    // with no such group, no one is waiting for any sealed segment.
    const consumedBelow = (topic: string, partition: number) =>
      groups.minCommittedOffset(topic, partition) ?? topics.partition(topic, partition)?.highWatermark ?? 0n
    topics.applyRetention(consumedBelow).catch((err: unknown) => logger.error('retention failed', { err }))
  }, config.retentionCheckIntervalMs)
  retention.unref()

  logger.info('broker started', {
    host: bound.host,
    port: bound.port,
    dataDir: config.dataDir,
    flush: config.flush,
    topics: topics.listTopics().length,
    clusterId,
    startMs: Math.round(clock.monotonicMs() - started),
  })

  let closing: Promise<void> | undefined
  return {
    host: bound.host,
    port: bound.port,
    bootstrap: `${bound.host}:${bound.port}`,
    config,
    clusterId,
    close() {
      closing ??= (async () => {
        clearInterval(retention)
        await server.close(config.shutdownTimeoutMs)
        await groups.close()
        await topics.close()
        logger.info('broker stopped')
      })()
      return closing
    },
  }
}

/** The cluster id is created once per data directory and kept in cluster.json. */
async function loadOrCreateClusterId(io: FileIO, dataDir: string): Promise<string> {
  const path = join(dataDir, 'cluster.json')
  if (await io.exists(path)) {
    const parsed = JSON.parse((await io.readFile(path)).toString('utf8')) as { clusterId?: unknown }
    if (typeof parsed.clusterId === 'string' && parsed.clusterId) return parsed.clusterId
  }
  const clusterId = Buffer.from(randomUUID().replaceAll('-', ''), 'hex').toString('base64url')
  await writeFileDurably(io, dataDir, 'cluster.json', Buffer.from(JSON.stringify({ clusterId }) + '\n'))
  return clusterId
}
