// The admin APIs Kafka tooling relies on, through the admin clients people use: KafkaJS
// (AlterConfigs, DescribeConfigs, DeleteRecords), @platformatic/kafka (IncrementalAlterConfigs,
// DeleteRecords, DescribeLogDirs), python confluent-kafka's AdminClient (librdkafka:
// AlterConfigs, DescribeConfigs with sources and synonyms) and librdkafka's DeleteRecords, against a broker process that is
// restarted to show every change was stored. The single-node answers of DescribeCluster,
// OffsetForLeaderEpoch, ElectLeaders and DescribeProducers are checked on the wire.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Admin } from '@platformatic/kafka'
import kafkajs from 'kafkajs'
import {
  AlterConfigs,
  DeleteRecords,
  DescribeCluster,
  DescribeConfigs,
  DescribeLogDirs,
  DescribeProducers,
  ElectLeaders,
  Fetch,
  IncrementalAlterConfigs,
  OffsetForLeaderEpoch,
} from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { PYTHON, requireKcat, requirePythonKafka, run } from '../helpers/tools.ts'

const { Kafka, logLevel, ConfigResourceTypes } = kafkajs
const CONFIGS_PY = fileURLToPath(new URL('./clients/confluent_configs.py', import.meta.url))
const DELETE_RECORDS_PY = fileURLToPath(new URL('./clients/librdkafka_delete_records.py', import.meta.url))

const dir = tempDir('tideway-admin-')
// debug: the broker logs each request's API and version, so the test can see what clients chose.
const broker = new BrokerProcess(join(dir.path, 'broker'), ['--log-level', 'debug'])

before(async () => {
  requirePythonKafka()
  requireKcat()
  await broker.start()
})
after(async () => {
  await broker.stop().catch(() => {})
  dir.remove()
})

const kafka = () => new Kafka({ brokers: [broker.bootstrap], clientId: 'admin-test', logLevel: logLevel.NOTHING })

async function withKafkaJsAdmin<T>(work: (admin: kafkajs.Admin) => Promise<T>): Promise<T> {
  const admin = kafka().admin()
  await admin.connect()
  try {
    return await work(admin)
  } finally {
    await admin.disconnect()
  }
}

async function withPlatformaticAdmin<T>(work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ clientId: 'admin-test-plt', bootstrapBrokers: [broker.bootstrap], timeout: 20_000 })
  try {
    return await work(admin)
  } finally {
    await admin.close()
  }
}

/** The topic's configs as KafkaJS describes them: name → [value, source, isDefault]. */
async function describedByKafkaJs(topic: string): Promise<Map<string, [string, number, boolean]>> {
  return withKafkaJsAdmin(async (admin) => {
    const described = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false })
    return new Map(
      described.resources[0]!.configEntries.map((e) => [e.configName, [e.configValue, (e as { configSource?: number }).configSource ?? -1, e.isDefault]]),
    )
  })
}

async function python(topic: string, ...args: string[]): Promise<Record<string, unknown>> {
  const result = await run(PYTHON, [CONFIGS_PY, broker.bootstrap, topic, ...args], { timeoutMs: 60_000 })
  assert.equal(result.code, 0, `confluent_configs.py ${args.join(' ')} failed:\n${result.stderr}`)
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>
}

/** The broker's error messages inside a @platformatic/kafka error (nested AggregateErrors). */
function serverMessages(err: unknown): string[] {
  const e = err as { serverErrorMessage?: string; errors?: unknown[] }
  return [...(e.serverErrorMessage ? [e.serverErrorMessage] : []), ...(e.errors ?? []).flatMap(serverMessages)]
}

const DYNAMIC_TOPIC_CONFIG = 1
const DEFAULT_CONFIG = 5

test('each admin client alters a topic and reads it back; a bad value is refused naming the key; all of it survives a restart', async () => {
  const topic = uniqueName('admin-configs')
  await createTopic(broker.bootstrap, topic, 2)

  // KafkaJS: AlterConfigs (the whole explicit set).
  await withKafkaJsAdmin(async (admin) => {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [
            { name: 'retention.ms', value: '3600000' },
            { name: 'cleanup.policy', value: 'compact' },
          ],
        },
      ],
    })
    await assert.rejects(
      admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: 'an hour' }] }],
      }),
      // KafkaJS drops the response's error message; the code is what it shows.
      (err: Error & { type?: string }) => err.type === 'INVALID_CONFIG',
    )
    // validate-only changes nothing.
    await admin.alterConfigs({
      validateOnly: true,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '1000' }] }],
    })
  })
  let described = await describedByKafkaJs(topic)
  assert.deepEqual(described.get('retention.ms'), ['3600000', DYNAMIC_TOPIC_CONFIG, false])
  assert.deepEqual(described.get('cleanup.policy'), ['compact', DYNAMIC_TOPIC_CONFIG, false])
  assert.deepEqual(described.get('retention.bytes'), ['-1', DEFAULT_CONFIG, true])

  // @platformatic/kafka: IncrementalAlterConfigs (only the keys named).
  await withPlatformaticAdmin(async (admin) => {
    await admin.incrementalAlterConfigs({
      resources: [
        {
          resourceType: 2,
          resourceName: topic,
          configs: [
            { name: 'retention.bytes', configOperation: 0, value: '1048576' },
            { name: 'segment.bytes', configOperation: 0, value: '65536' },
            { name: 'cleanup.policy', configOperation: 2, value: 'delete' },
          ],
        },
      ],
    })
    await admin.incrementalAlterConfigs({
      resources: [{ resourceType: 2, resourceName: topic, configs: [{ name: 'segment.bytes', configOperation: 1 }] }],
    })
    await assert.rejects(
      admin.incrementalAlterConfigs({
        resources: [{ resourceType: 2, resourceName: topic, configs: [{ name: 'segment.bytes', configOperation: 0, value: '12' }] }],
      }),
      (err: Error) => serverMessages(err).some((m) => /segment\.bytes must be between 1024 and 2147483647/.test(m)),
    )
    await assert.rejects(
      admin.incrementalAlterConfigs({
        resources: [{ resourceType: 2, resourceName: topic, configs: [{ name: 'retention.ms', configOperation: 2, value: '5' }] }],
      }),
      (err: Error) => serverMessages(err).some((m) => /retention\.ms is not a list config/.test(m)),
    )
  })
  described = await describedByKafkaJs(topic)
  assert.deepEqual(described.get('retention.ms'), ['3600000', DYNAMIC_TOPIC_CONFIG, false], 'incremental: other keys kept')
  assert.deepEqual(described.get('retention.bytes'), ['1048576', DYNAMIC_TOPIC_CONFIG, false])
  assert.deepEqual(described.get('segment.bytes'), ['134217728', DEFAULT_CONFIG, true], 'DELETE returns a key to its default')
  assert.deepEqual(described.get('cleanup.policy'), ['compact,delete', DYNAMIC_TOPIC_CONFIG, false], 'APPEND to a list config')

  // python confluent-kafka: AlterConfigs replaces the explicit set; describe shows sources and synonyms.
  const refused = await python(topic, 'alter', 'max.message.bytes=-5')
  assert.equal(refused.ok, false)
  assert.match(String(refused.error), /max\.message\.bytes/)
  assert.deepEqual(await python(topic, 'alter', 'retention.ms=7200000', 'cleanup.policy=compact'), { ok: true })
  const fromPython = (await python(topic, 'describe')).configs as Record<string, [string, number, boolean, [string, string, number][]]>
  assert.equal(fromPython['retention.ms']![0], '7200000')
  assert.deepEqual(fromPython['cleanup.policy']!.slice(0, 3), ['compact', DYNAMIC_TOPIC_CONFIG, false])
  assert.equal(fromPython['retention.ms']![1], DYNAMIC_TOPIC_CONFIG)
  assert.deepEqual(fromPython['retention.ms']![3], [
    ['retention.ms', '7200000', DYNAMIC_TOPIC_CONFIG],
    ['log.retention.ms', '604800000', DEFAULT_CONFIG],
  ])
  assert.deepEqual(fromPython['retention.bytes']!.slice(0, 3), ['-1', DEFAULT_CONFIG, true], 'AlterConfigs dropped what it did not name')

  await broker.stop()
  await broker.start()
  described = await describedByKafkaJs(topic)
  assert.deepEqual(described.get('retention.ms'), ['7200000', DYNAMIC_TOPIC_CONFIG, false], 'the change survived a restart')
  assert.deepEqual(described.get('cleanup.policy'), ['compact', DYNAMIC_TOPIC_CONFIG, false])
})

test('DeleteRecords through KafkaJS, librdkafka and @platformatic/kafka moves the start offset; fetching below it is OFFSET_OUT_OF_RANGE', async () => {
  const topic = uniqueName('admin-delete-records')
  await createTopic(broker.bootstrap, topic, 1, { 'segment.bytes': '1024' })
  const producer = kafka().producer()
  await producer.connect()
  for (let i = 0; i < 40; i++) await producer.send({ topic, messages: [{ value: `record-${i}-${'x'.repeat(60)}` }] })
  await producer.disconnect()

  await withKafkaJsAdmin(async (admin) => {
    // KafkaJS looks up the partition's leader before loading the topic's metadata: load it first.
    await admin.fetchTopicMetadata({ topics: [topic] })
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '25' }] })
    const [offsets] = await admin.fetchTopicOffsets(topic)
    assert.deepEqual([offsets!.low, offsets!.high], ['25', '40'])
  })
  // librdkafka's own rd_kafka_DeleteRecords (through ctypes: Debian's python binding lacks it).
  const deleteWithLibrdkafka = async (...pairs: string[]) => {
    const result = await run(PYTHON, [DELETE_RECORDS_PY, broker.bootstrap, topic, ...pairs], { timeoutMs: 60_000 })
    assert.equal(result.code, 0, `librdkafka_delete_records.py failed:\n${result.stderr}`)
    return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { ok: boolean; low_watermarks: Record<string, number>; partition_errors: Record<string, string> }
  }
  assert.deepEqual(await deleteWithLibrdkafka('0:20'), { ok: true, low_watermarks: { 0: 25 }, partition_errors: {} }, 'below the start: nothing moves')
  assert.deepEqual(await deleteWithLibrdkafka('0:30'), { ok: true, low_watermarks: { 0: 30 }, partition_errors: {} })
  assert.deepEqual((await deleteWithLibrdkafka('0:99')).partition_errors, { 0: 'OFFSET_OUT_OF_RANGE' }, 'past the high watermark')

  const raw = await RawClient.connect(broker.bootstrap)
  const fetchAt = async (offset: bigint) =>
    (
      await raw.request(Fetch, 11, {
        maxWaitMs: 0,
        minBytes: 0,
        topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }],
        forgottenTopicsData: [],
      })
    ).responses[0]!.partitions[0]!
  assert.equal((await fetchAt(29n)).errorCode, ErrorCode.OFFSET_OUT_OF_RANGE)
  const at30 = await fetchAt(30n)
  assert.equal(at30.errorCode, ErrorCode.NONE)
  assert.equal(at30.logStartOffset, 30n)
  raw.close()

  const kcat = await run('kcat', ['-C', '-b', broker.bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%o\n'], { timeoutMs: 60_000 })
  assert.equal(kcat.code, 0, kcat.stderr)
  const offsets = kcat.stdout.trim().split('\n').map(Number)
  assert.equal(offsets[0], 30, 'a consumer from the beginning starts at the new start')
  assert.equal(offsets.length, 10)

  // -1: up to the high watermark. Survives a restart.
  await withPlatformaticAdmin(async (admin) => {
    const deleted = await admin.deleteRecords({ topics: [{ name: topic, partitions: [{ partition: 0, offset: -1n }] }] })
    assert.equal(deleted[0]!.partitions[0]!.lowWatermark, 40n)
    await assert.rejects(admin.deleteRecords({ topics: [{ name: topic, partitions: [{ partition: 0, offset: 41n }] }] }))
  })
  await broker.stop()
  await broker.start()
  await withKafkaJsAdmin(async (admin) => {
    const [offsets] = await admin.fetchTopicOffsets(topic)
    assert.deepEqual([offsets!.low, offsets!.high], ['40', '40'], 'the start offset survived a restart')
  })
  await withPlatformaticAdmin(async (admin) => {
    const dirs = await admin.describeLogDirs({ topics: [{ name: topic, partitions: [0] }] })
    const partition = dirs[0]!.results[0]!.topics.find((t) => t.name === topic)!.partitions[0]!
    assert.ok(partition.partitionSize < 40 * 60, `segments wholly below the start were deleted (size ${partition.partitionSize})`)
  })
})

test('single-node answers: DescribeCluster, OffsetForLeaderEpoch, ElectLeaders, DescribeProducers', async () => {
  const topic = uniqueName('admin-cluster')
  await createTopic(broker.bootstrap, topic, 2)
  const producer = kafka().producer({ idempotent: true })
  await producer.connect()
  for (let i = 0; i < 5; i++) await producer.send({ topic, messages: [{ partition: 0, value: `v${i}` }] })
  await producer.disconnect()

  const raw = await RawClient.connect(broker.bootstrap)
  try {
    const cluster = await raw.request(DescribeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType: 1 })
    assert.equal(cluster.errorCode, ErrorCode.NONE)
    assert.equal(cluster.controllerId, 0)
    assert.deepEqual(cluster.brokers.map((b) => `${b.host}:${b.port}`), [broker.bootstrap])

    const epochs = await raw.request(OffsetForLeaderEpoch, 4, {
      replicaId: -1,
      topics: [{ topic, partitions: [{ partition: 0, currentLeaderEpoch: 0, leaderEpoch: 0 }, { partition: 1, currentLeaderEpoch: 3, leaderEpoch: 0 }, { partition: 7, currentLeaderEpoch: -1, leaderEpoch: 0 }] }],
    })
    const [p0, p1, p7] = epochs.topics[0]!.partitions
    assert.deepEqual([p0!.errorCode, p0!.leaderEpoch, p0!.endOffset], [ErrorCode.NONE, 0, 5n])
    assert.equal(p1!.errorCode, ErrorCode.UNKNOWN_LEADER_EPOCH)
    assert.equal(p7!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)

    const elected = await raw.request(ElectLeaders, 2, { electionType: 0, topicPartitions: [{ topic, partitions: [0, 9] }], timeoutMs: 1000 })
    assert.deepEqual(elected.replicaElectionResults[0]!.partitionResult.map((p) => p.errorCode), [ErrorCode.ELECTION_NOT_NEEDED, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION])

    const producers = await raw.request(DescribeProducers, 0, { topics: [{ name: topic, partitionIndexes: [0, 1] }] })
    const [withProducer, without] = producers.topics[0]!.partitions
    assert.equal(withProducer!.activeProducers.length, 1)
    assert.equal(withProducer!.activeProducers[0]!.lastSequence, 4, 'five batches of one record: sequences 0-4')
    assert.equal(without!.activeProducers.length, 0)
  } finally {
    raw.close()
  }
})

/** The newest version of an API a client package implements, from its per-version files (v0, v1, ...). */
function newestIn(dir: string, pattern: RegExp): number {
  const versions = readdirSync(fileURLToPath(new URL(dir, import.meta.url))).flatMap((name) => {
    const m = pattern.exec(name)
    return m ? [Number(m[1])] : []
  })
  return Math.max(...versions)
}

test('each client used the newest version of each admin API that both it and the broker know', (t) => {
  const served = new Map(
    [DeleteRecords, AlterConfigs, IncrementalAlterConfigs, DescribeConfigs, DescribeLogDirs].map((api) => [api.name, api.versions[1]]),
  )
  const used = new Map<string, Set<number>>() // "clientId api" -> versions
  for (const line of broker.log.split('\n')) {
    if (!line.includes('"msg":"request"')) continue
    const { api, version, clientId } = JSON.parse(line) as { api: string; version: number; clientId: string | null }
    if (!served.has(api)) continue
    const key = `${clientId} ${api}`
    used.set(key, (used.get(key) ?? new Set()).add(version))
  }
  t.diagnostic([...used].map(([key, versions]) => `${key} v${[...versions].join(',')}`).sort().join('; '))
  const plt = '../../node_modules/@platformatic/kafka/dist/apis/admin/'
  const kjs = '../../node_modules/kafkajs/src/protocol/requests/'
  const expected: [client: string, api: string, clientNewest: number][] = [
    ['admin-test', 'AlterConfigs', newestIn(`${kjs}alterConfigs/`, /^v(\d+)$/)],
    ['admin-test', 'DescribeConfigs', newestIn(`${kjs}describeConfigs/`, /^v(\d+)$/)],
    ['admin-test', 'DeleteRecords', newestIn(`${kjs}deleteRecords/`, /^v(\d+)$/)],
    ['admin-test-plt', 'IncrementalAlterConfigs', newestIn(plt, /^incremental-alter-configs-v(\d+)\.js$/)],
    ['admin-test-plt', 'DeleteRecords', newestIn(plt, /^delete-records-v(\d+)\.js$/)],
    ['admin-test-plt', 'DescribeLogDirs', newestIn(plt, /^describe-log-dirs-v(\d+)\.js$/)],
  ]
  for (const [client, api, clientNewest] of expected) {
    const versions = [...(used.get(`${client} ${api}`) ?? [])]
    assert.deepEqual(versions, [Math.min(clientNewest, served.get(api)!)], `${client} ${api}: used ${versions.join(',') || 'none'}`)
  }
  // librdkafka (client id "rdkafka") negotiates from ApiVersions too; it must have used something we serve.
  for (const api of ['AlterConfigs', 'DescribeConfigs', 'DeleteRecords']) {
    const versions = [...(used.get(`rdkafka ${api}`) ?? [])]
    assert.ok(versions.length > 0 && versions.every((v) => v <= served.get(api)!), `librdkafka ${api}: ${versions.join(',')}`)
  }
})
