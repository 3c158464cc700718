// librdkafka through Debian's python3-confluent-kafka: 10,000 records with delivery reports, and
// each compression codec (gzip, snappy, lz4, zstd) round-trips byte-identical. The broker stores
// batches as sent, so the log on disk must hold batches compressed with the producer's codec;
// and ListOffsets by time must find a record inside such a batch (the broker inflates
// librdkafka's real snappy, lz4, gzip and zstd to look).
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { ListOffsets } from '../../src/protocol/apis/index.ts'
import { readBatchHeader, compressionCodecOf, type BatchHeader } from '../../src/protocol/record-batch.ts'
import { recordTimes } from '../../src/protocol/records.ts'
import { createTopic } from '../helpers/admin.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { PYTHON, requirePythonKafka, run } from '../helpers/tools.ts'

const SCRIPT = fileURLToPath(new URL('./clients/confluent_roundtrip.py', import.meta.url))
let broker: EmbeddedBroker

before(async () => {
  requirePythonKafka()
  broker = await embeddedBroker()
})
after(async () => {
  await broker?.dispose()
})

interface Summary {
  produced: number
  delivered: number
  undelivered_after_flush: number
  delivery_errors: string[]
  consumed: number
  mismatches: number
  order_violations: number
}

async function roundTrip(topic: string, count: number, compression: string): Promise<Summary> {
  const result = await run(PYTHON, [SCRIPT, broker.bootstrap, topic, String(count), compression], { timeoutMs: 150_000 })
  assert.equal(result.code, 0, `python client failed: ${result.stderr}`)
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Summary
}

/** The batches stored in a partition's log files, in order. */
function storedBatches(topic: string, partition: number): { batch: Buffer; header: BatchHeader }[] {
  const dir = join(broker.dataDir, `${topic}-${partition}`)
  const batches: { batch: Buffer; header: BatchHeader }[] = []
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.log')).sort()) {
    const bytes = readFileSync(join(dir, name))
    for (let at = 0; at + 61 <= bytes.length; ) {
      const header = readBatchHeader(bytes, at)
      batches.push({ batch: bytes.subarray(at, at + 12 + header.batchLength), header })
      at += 12 + header.batchLength
    }
  }
  return batches
}

function storedCodecs(topic: string, partition: number): Set<number> {
  return new Set(storedBatches(topic, partition).map(({ header }) => compressionCodecOf(header.attributes)))
}

/**
 * Picks a record inside a stored batch (not its first) whose timestamp is later than the record
 * before it, and checks ListOffsets by that time answers that record's offset, as Kafka does.
 */
async function assertTimeLookupInsideBatch(topic: string): Promise<void> {
  for (const { batch, header } of storedBatches(topic, 0)) {
    const times = await recordTimes(batch, header)
    const k = times.findIndex((r, i) => i > 0 && r.timestamp > times[i - 1]!.timestamp)
    if (k < 0) continue
    const client = await RawClient.connect(broker.bootstrap)
    try {
      const response = await client.request(ListOffsets, 5, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: times[k]!.timestamp }] }],
      })
      const answer = response.topics[0]!.partitions[0]!
      assert.deepEqual([answer.offset, answer.timestamp], [header.baseOffset + BigInt(times[k]!.offsetDelta), times[k]!.timestamp])
    } finally {
      client.socket.destroy()
    }
    return
  }
  assert.fail('no stored batch had two records with different timestamps')
}

test('10,000 records produced with delivery reports are all delivered and consumed back', { timeout: 180_000 }, async () => {
  const topic = uniqueName('py-10k')
  await createTopic(broker.bootstrap, topic, 3)
  const summary = await roundTrip(topic, 10_000, 'none')
  console.log('python confluent-kafka 10k:', JSON.stringify(summary))
  assert.deepEqual(summary.delivery_errors, [])
  assert.equal(summary.delivered, 10_000)
  assert.equal(summary.consumed, 10_000)
  assert.equal(summary.mismatches, 0)
  assert.equal(summary.order_violations, 0)
})

const codecs = { gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const
for (const [compression, codec] of Object.entries(codecs)) {
  test(`${compression} batches round-trip byte-identical, are stored as sent, and are searched by time inside`, { timeout: 120_000 }, async () => {
    const topic = uniqueName(`py-${compression}`)
    await createTopic(broker.bootstrap, topic, 1)
    const summary = await roundTrip(topic, 2_000, compression)
    assert.deepEqual(summary.delivery_errors, [])
    assert.equal(summary.delivered, 2_000)
    assert.equal(summary.consumed, 2_000)
    assert.equal(summary.mismatches, 0)
    assert.deepEqual([...storedCodecs(topic, 0)], [codec], `stored batches use ${compression}`)
    await assertTimeLookupInsideBatch(topic)
  })
}
