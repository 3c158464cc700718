// Records keyed "k-i" (record key and idempotency-key header alike) written and read by real
// client processes, for the idempotency-key dedup tests: librdkafka (python confluent-kafka) and
// KafkaJS producers that report where each key's answer said it went, a librdkafka reader that
// reports every stored record and how far it got, and the exactly-once-per-key check.
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { PYTHON, run } from './tools.ts'

const PY_PRODUCER = fileURLToPath(new URL('../integration/clients/confluent_keyed_producer.py', import.meta.url))
const PY_READER = fileURLToPath(new URL('../integration/clients/confluent_read_all.py', import.meta.url))
const JS_PRODUCER = fileURLToPath(new URL('../integration/clients/kafkajs_keyed_producer.ts', import.meta.url))

/** key -> [partition, offset] from the producer's delivery reports. */
export type Reports = Record<string, [number, number | string]>

export async function pythonProduce(bootstrap: string, topic: string, range: [number, number], tag: string, options: Record<string, unknown> = {}, step = 1, pace = 0): Promise<{ delivered: number; errors: string[]; reports: Reports }> {
  const result = await run(PYTHON, [PY_PRODUCER, bootstrap, topic, 'k', String(range[0]), String(range[1]), tag, JSON.stringify(options), String(step), String(pace)], { timeoutMs: 180_000 })
  assert.equal(result.code, 0, result.stderr)
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!)
}

export async function kafkajsProduce(bootstrap: string, topic: string, range: [number, number], tag: string, flags: string[] = []): Promise<Reports> {
  const result = await run(process.execPath, [JS_PRODUCER, bootstrap, topic, 'k', String(range[0]), String(range[1]), tag, ...flags], { timeoutMs: 180_000 })
  assert.equal(result.code, 0, result.stderr)
  return (JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { reports: Reports }).reports
}

export interface ReadBack {
  records: [number, number, string, string][]
  positions: Record<string, number>
  ends: Record<string, number>
  complete: boolean
}

/** Every record of the topic, read by a librdkafka consumer, with where it ended up. */
export async function pythonReadAll(bootstrap: string, topic: string, partitions: number): Promise<ReadBack> {
  const result = await run(PYTHON, [PY_READER, bootstrap, topic, String(partitions)], { timeoutMs: 120_000 })
  assert.equal(result.code, 0, result.stderr)
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!)
}

/** Asserts every key is stored exactly once and returns where: key -> [partition, offset, value]. */
export function assertEachKeyOnce(read: ReadBack, expectedKeys: number): Map<string, [number, number, string]> {
  const stored = new Map<string, [number, number, string]>()
  const repeated: string[] = []
  for (const [partition, offset, key, value] of read.records) {
    if (stored.has(key)) repeated.push(key)
    stored.set(key, [partition, offset, value])
  }
  assert.deepEqual(repeated.slice(0, 10), [], `${repeated.length} keys stored more than once`)
  assert.equal(stored.size, expectedKeys)
  for (let i = 0; i < expectedKeys; i++) assert.ok(stored.has(`k-${i}`), `k-${i} is stored`)
  assert.ok(read.complete, 'the reader reached the end of every partition')
  assert.deepEqual(read.positions, read.ends, 'the reader moved past every hole and marker to the end')
  return stored
}
