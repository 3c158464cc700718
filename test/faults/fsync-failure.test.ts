// An fsync that fails under a live broker: the produce it covered is answered with the
// retriable KAFKA_STORAGE_ERROR (never success, never UNKNOWN_SERVER_ERROR), the partition stays
// fenced even once the disk "recovers" (a failed fsync is never retried into an ack), other
// partitions keep working, reads keep serving acknowledged data, the broker logs (once, at error
// level) which partition is fenced and why, and a restart recovers.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startBroker } from '../../src/broker/broker.ts'
import { jsonLogger, silentLogger } from '../../src/logger.ts'
import { CreateTopics, Fetch, Produce } from '../../src/protocol/apis/index.ts'
import { ErrorCode, isRetriable } from '../../src/protocol/error-codes.ts'
import { buildBatch, valuesOf } from '../helpers/batches.ts'
import { tempDir } from '../helpers/broker-process.ts'
import { FaultyFileIO } from '../helpers/faulty-file-io.ts'
import { RawClient } from '../helpers/raw-client.ts'

async function produce(client: RawClient, topic: string, partition: number, value: string) {
  const { batch } = buildBatch([{ value }])
  const response = await client.request(Produce, 8, {
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }],
  })
  return response.responses[0]!.partitionResponses[0]!
}

async function fetchValues(client: RawClient, topic: string, partition: number): Promise<string[]> {
  const response = await client.request(Fetch, 11, {
    maxWaitMs: 0,
    minBytes: 0,
    topics: [{ topic, partitions: [{ partition, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
    forgottenTopicsData: [],
  })
  return valuesOf(response.responses[0]!.partitions[0]!.records!)
}

test('a failed fsync answers KAFKA_STORAGE_ERROR, fences the partition, and loses nothing acknowledged', { timeout: 60_000 }, async () => {
  const dir = tempDir()
  const io = new FaultyFileIO()
  const logLines: Record<string, unknown>[] = []
  const logger = jsonLogger({ level: 'warn', stream: { write: (line: string) => logLines.push(JSON.parse(line) as Record<string, unknown>) } })
  let broker = await startBroker({ port: 0, dataDir: dir.path, logger, io })
  try {
    let client = await RawClient.connect(broker.bootstrap)
    const created = await client.request(CreateTopics, 7, {
      topics: [{ name: 'fragile', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
    })
    assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE)
    for (let i = 0; i < 3; i++) assert.equal((await produce(client, 'fragile', 0, `ok${i}`)).errorCode, ErrorCode.NONE)

    io.failDatasyncAt = io.datasyncs + 1
    const failed = await produce(client, 'fragile', 0, 'unsynced')
    assert.equal(failed.errorCode, ErrorCode.KAFKA_STORAGE_ERROR)
    assert.ok(isRetriable(failed.errorCode))
    io.failDatasyncAt = Number.POSITIVE_INFINITY
    // An operator sees which partition is fenced and why, once.
    const fencing = logLines.filter((l) => l.level === 'error' && String(l.msg).startsWith('storage failure: partition fenced'))
    assert.equal(fencing.length, 1, JSON.stringify(logLines))
    assert.deepEqual([fencing[0]!.topic, fencing[0]!.partition], ['fragile', 0])
    assert.match(JSON.stringify(fencing[0]!.err), /EIO|fsync|datasync/i)

    assert.equal((await produce(client, 'fragile', 0, 'after')).errorCode, ErrorCode.KAFKA_STORAGE_ERROR, 'stays fenced')
    assert.equal((await produce(client, 'fragile', 1, 'other')).errorCode, ErrorCode.NONE, 'other partitions work')
    // ... and so does a scrape: the failed fsync, the fenced partition, the error code answered.
    const metrics = await (await fetch(`${broker.httpUrl}/metrics`)).text()
    assert.match(metrics, /^tideway_fsync_failures_total 1$/m)
    assert.match(metrics, /^tideway_partitions_fenced 1$/m)
    assert.match(metrics, /^tideway_errors_total\{api="Produce",error="KAFKA_STORAGE_ERROR"\} 2$/m)
    const ready = (await (await fetch(`${broker.httpUrl}/ready`)).json()) as { status: string; fencedPartitions: number }
    assert.deepEqual([ready.status, ready.fencedPartitions], ['ready', 1])
    assert.deepEqual(await fetchValues(client, 'fragile', 0), ['ok0', 'ok1', 'ok2'], 'acknowledged data still served')
    client.close()

    await broker.close()
    broker = await startBroker({ port: 0, dataDir: dir.path, logger: silentLogger })
    client = await RawClient.connect(broker.bootstrap)
    const recovered = await fetchValues(client, 'fragile', 0)
    assert.deepEqual(recovered.slice(0, 3), ['ok0', 'ok1', 'ok2'])
    assert.equal((await produce(client, 'fragile', 0, 'resumed')).errorCode, ErrorCode.NONE, 'a restart recovers')
    client.close()
  } finally {
    await broker.close()
    dir.remove()
  }
})
