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
import { TidewayError } from '../errors.ts'
import { jsonLogger, type Logger } from '../logger.ts'
import { IoThrottle } from '../storage/compaction.ts'
import { TopicStore } from '../storage/topic-store.ts'
import { mkdirDurably, nodeFileIO, writeFileDurably, type FileIO } from '../storage/file-io.ts'
import { brokerOptions, resolveConfig, type BrokerConfig } from './config.ts'
import { openGroupCoordinator } from './groups/index.ts'
import { ProducerIdAllocator } from './producer-ids.ts'
import type { BrokerServices, HandlerEntry } from './handler.ts'
import { buildHandlers } from './handlers/index.ts'
import { RequestBytesBudget, WarningLimiter } from './limits.ts'
import { BrokerServer } from './server.ts'
import { HttpEndpoint, parseHttpAddress, type HealthReport, type HttpRoute } from './http/http-endpoint.ts'
import { BrokerMetrics } from './metrics/broker-metrics.ts'

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
  /** `http://host:port` of /metrics, /health, /ready and the console; null when `http` is off. */
  readonly httpUrl: string | null
  readonly metrics: BrokerMetrics
  /** Stops accepting, finishes in-flight requests, syncs and closes the logs. Idempotent. */
  close(): Promise<void>
}

export async function startBroker(options: StartBrokerOptions = {}): Promise<RunningBroker> {
  const { logger: givenLogger, clock = systemClock, io: disk = nodeFileIO, ...overrides } = options
  const config = resolveConfig(overrides)
  const logger = givenLogger ?? jsonLogger({ level: config.logLevel })
  const started = clock.monotonicMs()
  const metrics = new BrokerMetrics()
  const io = metrics.timedFileIO(disk)

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
    metrics,
  }
  metrics.watch(topics, groups)
  for (const [key, entry] of buildHandlers(services)) handlers.set(key, entry)
  let closing: Promise<void> | undefined

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
        metrics,
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
  metrics.registry.collect(() => metrics.connections.set(server.connectionCount))

  let http: Awaited<ReturnType<typeof startHttp>>
  try {
    http = await startHttp(services, config, logger, () => ({
      ready: !closing,
      topics: topics.listTopics().length,
      // Still ready: the other partitions serve, and a fenced one answers a retriable error.
      fencedPartitions: topics.listTopics().reduce((n, t) => n + countFenced(topics, t.name, t.partitions), 0),
    }))
  } catch (err) {
    await server.close(0)
    await groups.close()
    await topics.close()
    throw err
  }

  const retention = setInterval(() => {
    // pubsub topics: a segment goes once every group with offsets there has committed past it;
    // with no such group, no one is waiting for any sealed segment.
    const consumedBelow = (topic: string, partition: number) =>
      groups.minCommittedOffset(topic, partition) ?? topics.partition(topic, partition)?.highWatermark ?? 0n
    topics.applyRetention(consumedBelow).catch((err: unknown) => logger.error('retention failed', { err }))
  }, config.retentionCheckIntervalMs)
  retention.unref()

  // One cleaner for the broker: one partition at a time, throttled, never two passes at once.
  const throttle = new IoThrottle(config.cleanerIoBytesPerSecond, clock)
  let cleaning: Promise<unknown> | null = null
  const cleaner = setInterval(() => {
    cleaning ??= topics
      .clean(throttle, (topic, _partition, result) => metrics.countCompaction(topic, result))
      .catch((err: unknown) => logger.error('compaction failed', { err }))
      .finally(() => (cleaning = null))
  }, config.cleanerIntervalMs)
  cleaner.unref()

  logger.info('broker started', {
    host: bound.host,
    port: bound.port,
    dataDir: config.dataDir,
    flush: config.flush,
    topics: topics.listTopics().length,
    clusterId,
    http: http?.url ?? 'off',
    startMs: Math.round(clock.monotonicMs() - started),
  })

  return {
    host: bound.host,
    port: bound.port,
    bootstrap: `${bound.host}:${bound.port}`,
    config,
    clusterId,
    httpUrl: http?.url ?? null,
    metrics,
    close() {
      closing ??= (async () => {
        clearInterval(retention)
        clearInterval(cleaner)
        await http?.close()
        await server.close(config.shutdownTimeoutMs)
        await groups.close()
        await topics.close()
        logger.info('broker stopped')
      })()
      return closing
    },
  }
}

/**
 * Starts the HTTP endpoint where `http` says (a broker on an ephemeral Kafka port with the default
 * address takes an ephemeral HTTP port too, so tests and embedded brokers never fight over 8080).
 */
async function startHttp(
  services: BrokerServices,
  config: BrokerConfig,
  logger: Logger,
  health: () => HealthReport,
): Promise<{ url: string; close(): Promise<void> } | null> {
  const address = parseHttpAddress(config.http)
  if (!address) return null
  if (config.port === 0 && config.http === brokerOptions.http.default) address.port = 0
  const routes: HttpRoute[] = []
  const endpoint = new HttpEndpoint({ metrics: services.metrics.registry, health, logger: logger.child({ component: 'http' }), routes })
  let bound
  try {
    bound = await endpoint.listen(address.host, address.port)
  } catch (err) {
    throw new TidewayError('TIDEWAY_ERR_CONFIG', `cannot listen for HTTP on ${config.http} (set --http to another host:port, or off)`, { cause: err })
  }
  const host = bound.host.includes(':') ? `[${bound.host}]` : bound.host
  // Loaded only when served: the console brings the saga stores (node:sqlite, pg) with it.
  const webConsole = config.console
    ? (await import('../console/console.ts')).startConsole({ services, logger: logger.child({ component: 'console' }), listening: bound })
    : null
  if (webConsole) routes.push(webConsole.route)
  return {
    url: `http://${host}:${bound.port}`,
    async close() {
      await endpoint.close()
      await webConsole?.close()
    },
  }
}

function countFenced(topics: TopicStore, name: string, partitions: number): number {
  let fenced = 0
  for (let p = 0; p < partitions; p++) if (topics.partition(name, p)?.fenced) fenced++
  return fenced
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
