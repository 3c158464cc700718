// librdkafka 2.0 through kcat, an unmodified client run as a child process: metadata, keyed
// produce to a 3-partition topic, consume back with per-partition order, consume from an offset
// and from a timestamp.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTopic } from '../helpers/admin.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { requireKcat, run } from '../helpers/tools.ts'

let broker: EmbeddedBroker

before(async () => {
  requireKcat()
  broker = await embeddedBroker()
})
after(async () => {
  await broker?.dispose()
})

interface Consumed {
  partition: number
  offset: number
  key: string
  value: string
}

async function kcatConsume(topic: string, extra: string[]): Promise<Consumed[]> {
  const result = await run('kcat', ['-C', '-b', broker.bootstrap, '-t', topic, '-e', '-q', '-f', '%p\t%o\t%k\t%s\n', ...extra], {
    timeoutMs: 60_000,
  })
  assert.equal(result.code, 0, `kcat -C failed: ${result.stderr}`)
  return result.stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [partition, offset, key, value] = line.split('\t')
      return { partition: Number(partition), offset: Number(offset), key: key!, value: value! }
    })
}

async function kcatProduce(topic: string, lines: string[], extra: string[] = []) {
  const result = await run('kcat', ['-P', '-b', broker.bootstrap, '-t', topic, '-K', ':', '-X', 'acks=all', ...extra], {
    input: lines.join('\n') + '\n',
    timeoutMs: 60_000,
  })
  assert.equal(result.code, 0, `kcat -P failed: ${result.stderr}`)
}

test('kcat -L lists this broker and the topic with its partitions', { timeout: 60_000 }, async () => {
  const topic = uniqueName('kcat-meta')
  await createTopic(broker.bootstrap, topic, 3)
  const result = await run('kcat', ['-L', '-J', '-b', broker.bootstrap, '-t', topic], { timeoutMs: 30_000 })
  assert.equal(result.code, 0, result.stderr)
  const metadata = JSON.parse(result.stdout) as {
    brokers: { id: number; name: string }[]
    topics: { topic: string; partitions: { partition: number; leader: number }[] }[]
  }
  assert.deepEqual(metadata.brokers.map((b) => b.name), [broker.bootstrap])
  const described = metadata.topics.find((t) => t.topic === topic)
  assert.ok(described, 'topic listed')
  assert.deepEqual(described.partitions.map((p) => p.partition).sort(), [0, 1, 2])
  assert.ok(described.partitions.every((p) => p.leader === 0))
})

test('1,000 keyed records produced by kcat come back complete, keyed and in order per partition', { timeout: 120_000 }, async () => {
  const topic = uniqueName('kcat-keyed')
  await createTopic(broker.bootstrap, topic, 3)
  const lines = Array.from({ length: 1000 }, (_, i) => `key-${i % 37}:${i}`)
  await kcatProduce(topic, lines)

  const consumed = await kcatConsume(topic, ['-o', 'beginning'])
  assert.equal(consumed.length, 1000)
  assert.deepEqual(consumed.map((r) => Number(r.value)).sort((a, b) => a - b), lines.map((_, i) => i))
  const partitionOfKey = new Map<string, number>()
  const byPartition = new Map<number, Consumed[]>()
  for (const record of consumed) {
    assert.equal(record.key, `key-${Number(record.value) % 37}`, 'key travels with its value')
    const seen = partitionOfKey.get(record.key)
    assert.ok(seen === undefined || seen === record.partition, `key ${record.key} stays on one partition`)
    partitionOfKey.set(record.key, record.partition)
    byPartition.set(record.partition, [...(byPartition.get(record.partition) ?? []), record])
  }
  assert.ok(byPartition.size >= 2, 'records spread over partitions')
  for (const [partition, records] of byPartition) {
    records.sort((a, b) => a.offset - b.offset)
    assert.deepEqual(records.map((r) => r.offset), records.map((_, i) => i), `partition ${partition}: dense offsets from 0`)
    const values = records.map((r) => Number(r.value))
    assert.deepEqual(values, [...values].sort((a, b) => a - b), `partition ${partition}: send order kept`)
  }
})

test('kcat consumes from a given offset and from a timestamp', { timeout: 120_000 }, async () => {
  const topic = uniqueName('kcat-seek')
  await createTopic(broker.bootstrap, topic, 1)
  await kcatProduce(topic, Array.from({ length: 50 }, (_, i) => `k:early-${i}`))
  const boundary = Date.now() + 1
  while (Date.now() <= boundary) await new Promise((resolve) => setImmediate(resolve))
  await kcatProduce(topic, Array.from({ length: 20 }, (_, i) => `k:late-${i}`))

  const fromOffset = await kcatConsume(topic, ['-p', '0', '-o', '45'])
  assert.equal(fromOffset[0]!.offset, 45)
  assert.deepEqual(fromOffset.map((r) => r.value), [...[45, 46, 47, 48, 49].map((i) => `early-${i}`), ...Array.from({ length: 20 }, (_, i) => `late-${i}`)])

  const fromTimestamp = await kcatConsume(topic, ['-p', '0', '-o', `s@${boundary}`])
  assert.deepEqual(fromTimestamp.map((r) => r.value), Array.from({ length: 20 }, (_, i) => `late-${i}`))
})
