// A KafkaJS 2.2.4 producer as its own process, for the idempotency-key tests: it sends records
// whose idempotency key (header `idempotency-key`, also the record key) is "<prefix>-i" for i in
// [first, last), one record per send() so each answer is that record's offset, with value
// "<tag>:<key>". KafkaJS's default partitioner is murmur2 (Java's), so a key lands on the same
// partition as from librdkafka with partitioner=murmur2_random. Retries through lost connections
// and broker restarts. Prints one JSON line: {"reports": {key: [partition, offset]}}.
//
// Usage: node kafkajs_keyed_producer.ts <bootstrap> <topic> <prefix> <first> <last> <tag>
//        [--idempotent] [--concurrency N]
import { parseArgs } from 'node:util'
import kafkajs from 'kafkajs'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { idempotent: { type: 'boolean', default: false }, concurrency: { type: 'string', default: '1' } },
})
const [bootstrap, topic, prefix, firstArg, lastArg, tag] = positionals
if (!bootstrap || !topic || !prefix || !firstArg || !lastArg || !tag) {
  process.stderr.write('usage: kafkajs_keyed_producer.ts <bootstrap> <topic> <prefix> <first> <last> <tag> [--idempotent] [--concurrency N]\n')
  process.exit(2)
}

const kafka = new kafkajs.Kafka({
  brokers: [bootstrap],
  clientId: `keyed-${tag}`,
  logLevel: kafkajs.logLevel.NOTHING,
  retry: { retries: 100, initialRetryTime: 20, maxRetryTime: 500 },
})
// An idempotent KafkaJS producer allows one request in flight; a plain one may run several.
const concurrency = values.idempotent ? 1 : Number(values.concurrency)
const producer = kafka.producer({ idempotent: values.idempotent, maxInFlightRequests: concurrency })
await producer.connect()
const reports: Record<string, [number, string]> = {}
let next = Number(firstArg)
const last = Number(lastArg)
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < last) {
      const key = `${prefix}-${next++}`
      const [meta] = await producer.send({ topic, acks: -1, messages: [{ key, value: `${tag}:${key}`, headers: { 'idempotency-key': key } }] })
      reports[key] = [meta!.partition, meta!.baseOffset!]
    }
  }),
)
await producer.disconnect()
process.stdout.write(JSON.stringify({ reports }) + '\n')
