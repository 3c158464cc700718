// Records numbered "prefix-i" and sent to partition i % partitions, so a test can tell exactly
// what each partition must hold: every i once, in increasing order.
import assert from 'node:assert/strict'
import kafkajs from 'kafkajs'

/** What partition `p` must hold after `count` records were written. */
export function expectedInPartition(prefix: string, count: number, partitions: number, p: number): string[] {
  return Array.from({ length: Math.ceil((count - p) / partitions) }, (_, k) => `${prefix}-${p + k * partitions}`)
}

/** Asserts each partition (read with `read`) holds its records exactly once, in order. */
export async function assertExactlyOnceInOrder(read: (partition: number) => Promise<string[]>, prefix: string, count: number, partitions: number): Promise<void> {
  for (let p = 0; p < partitions; p++) {
    assert.deepEqual(await read(p), expectedInPartition(prefix, count, partitions, p), `partition ${p} holds each record once, in order`)
  }
}

/**
 * Writes the records with a KafkaJS idempotent producer (one request in flight, retrying through
 * lost connections and broker restarts), `perSend` at a time; `started` resolves once connected.
 */
export async function writeWithKafkaJSIdempotent(
  bootstrap: string,
  topic: string,
  { prefix, count, partitions, perSend, onConnected }: { prefix: string; count: number; partitions: number; perSend: number; onConnected?: () => void },
): Promise<void> {
  const kafka = new kafkajs.Kafka({
    brokers: [bootstrap],
    clientId: 'idempotent-writer',
    logLevel: kafkajs.logLevel.NOTHING,
    retry: { retries: 100, initialRetryTime: 20, maxRetryTime: 500 },
  })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  onConnected?.()
  try {
    for (let start = 0; start < count; start += perSend) {
      const messages = Array.from({ length: Math.min(perSend, count - start) }, (_, k) => ({ value: `${prefix}-${start + k}`, partition: (start + k) % partitions }))
      await producer.send({ topic, acks: -1, messages })
    }
  } finally {
    await producer.disconnect()
  }
}
