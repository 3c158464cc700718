// A full disk (issue 7): a write refused with ENOSPC (test/helpers/faulty-file-io.ts) answers the
// produce with KAFKA_STORAGE_ERROR, which is retriable, never a success; reads keep being
// served; once there is space again the partition reopens from its files on a later produce,
// without a restart, and nothing acknowledged is lost. A KafkaJS idempotent producer that keeps
// sending through the whole episode ends with every record stored once, in order.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { startBroker, type RunningBroker } from '../../src/broker/broker.ts'
import { silentLogger } from '../../src/logger.ts'
import { CreateTopics, Produce } from '../../src/protocol/apis/index.ts'
import { ErrorCode, isRetriable } from '../../src/protocol/error-codes.ts'
import { buildBatch } from '../helpers/batches.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { FaultyFileIO } from '../helpers/faulty-file-io.ts'
import { partitionValues, RawClient } from '../helpers/raw-client.ts'
import { assertExactlyOnceInOrder, writeWithKafkaJSIdempotent } from '../helpers/sequenced-records.ts'
import { waitFor } from '../helpers/wait.ts'

const dirs: { remove(): void }[] = []
const brokers: RunningBroker[] = []
after(async () => {
  for (const broker of brokers) await broker.close().catch(() => {})
  for (const dir of dirs) dir.remove()
})

async function fullDiskBroker() {
  const dir = tempDir()
  dirs.push(dir)
  const io = new FaultyFileIO()
  io.failureCode = 'ENOSPC'
  const broker = await startBroker({ port: 0, dataDir: dir.path, logger: silentLogger, io })
  brokers.push(broker)
  const client = await RawClient.connect(broker.bootstrap)
  return { io, broker, client }
}

async function produce(client: RawClient, topic: string, value: string) {
  const { batch } = buildBatch([{ value }])
  const response = await client.request(Produce, 8, { acks: -1, timeoutMs: 10_000, topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }] })
  return response.responses[0]!.partitionResponses[0]!
}

test('a full disk refuses writes with a retriable error, keeps serving reads, and takes writes again once there is space', { timeout: 60_000 }, async () => {
  const { io, client } = await fullDiskBroker()
  const created = await client.request(CreateTopics, 7, { topics: [{ name: 'full', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }] })
  assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE)
  for (let i = 0; i < 3; i++) assert.equal((await produce(client, 'full', `before${i}`)).errorCode, ErrorCode.NONE)

  io.failWriteAt = io.writes + 1 // the disk is full from the next write on
  const refused = await produce(client, 'full', 'while-full')
  assert.equal(refused.errorCode, ErrorCode.KAFKA_STORAGE_ERROR)
  assert.ok(isRetriable(refused.errorCode))
  assert.equal((await produce(client, 'full', 'still-full')).errorCode, ErrorCode.KAFKA_STORAGE_ERROR, 'refused while the disk stays full')
  assert.deepEqual(await partitionValues(client, 'full', 0), ['before0', 'before1', 'before2'], 'reads go on')

  io.failWriteAt = Number.POSITIVE_INFINITY // space again
  const accepted = await waitFor(async () => {
    const answer = await produce(client, 'full', 'after')
    return answer.errorCode === ErrorCode.NONE ? answer : undefined
  }, { timeoutMs: 20_000, intervalMs: 200, what: 'a produce to succeed once there is space' })
  assert.equal(accepted.baseOffset, 3n, 'offsets go on where the acknowledged ones ended')
  assert.deepEqual(await partitionValues(client, 'full', 0), ['before0', 'before1', 'before2', 'after'], 'nothing acknowledged lost, nothing refused stored')
  client.close()
})

test('a KafkaJS idempotent producer sending through a full disk stores every record once, in order', { timeout: 120_000 }, async (t) => {
  const { io, broker, client } = await fullDiskBroker()
  const created = await client.request(CreateTopics, 7, { topics: [{ name: 'through', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }] })
  assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE)
  const count = 3_000
  const writing = writeWithKafkaJSIdempotent(broker.bootstrap, 'through', { prefix: 'r', count, partitions: 1, perSend: 25 })
  writing.catch(() => {})
  await waitFor(async () => (await partitionValues(client, 'through', 0)).length >= 500, { timeoutMs: 30_000, what: '500 records stored' })
  io.failWriteAt = io.writes + 1
  const full = await partitionValues(client, 'through', 0)
  await new Promise((resolve) => setTimeout(resolve, 1_500)) // the producer keeps retrying against the full disk
  assert.equal((await partitionValues(client, 'through', 0)).length, full.length, 'nothing stored while full')
  io.failWriteAt = Number.POSITIVE_INFINITY
  await writing
  await assertExactlyOnceInOrder((p) => partitionValues(client, 'through', p), 'r', count, 1)
  t.diagnostic(`${count} records through a full disk (${full.length} stored before it filled): each stored once, in order`)
  client.close()
})
