// One member of a KafkaJS 2.2.4 consumer group, as its own process, for the multi-process group
// tests. It processes each record (optionally slowly), lets KafkaJS commit after each batch (the
// at-least-once default: handle, then commit), and reports what happens as JSON lines on stdout:
//   {"event":"assigned","memberId":M,"partitions":[...],"t":ms}                  (each GROUP_JOIN)
//   {"event":"generation","assignment":A,"generation":G,"t":ms}
//        (KafkaJS's GROUP_JOIN does not carry the generation; its heartbeats and commits do, so
//        the first of those after an assignment reports it)
//   {"event":"record","partition":P,"offset":O,"value":V,"assignment":A,"t":ms}
//        (A: how many assigned events came before this record's, minus one)
//   {"event":"committed","partitions":[[P,nextOffset],...],"generation":G,"t":ms} (each COMMIT_OFFSETS)
//   {"event":"crashed","error":"...","restart":R}  (consumer failed; without restart the process exits 4)
// SIGTERM disconnects cleanly (LeaveGroup). It exits by itself after --lifetime-ms, so a test
// that forgets it cannot leave it running.
//
// Usage: node kafkajs_group_member.ts <bootstrap> <topic> <group> [--session-timeout-ms N]
//        [--sleep-every N] [--lifetime-ms N] [--request-timeout-ms N]
import { setTimeout as delay } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import kafkajs from 'kafkajs'

const { Kafka, logLevel } = kafkajs

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    'session-timeout-ms': { type: 'string', default: '10000' },
    // Sleep 1 ms after every N records, so a test can kill a member while it still has work.
    'sleep-every': { type: 'string', default: '0' },
    'lifetime-ms': { type: 'string', default: '240000' },
    // How long a request may go unanswered before KafkaJS gives up on the connection (its default
    // is 30 s; network-fault tests with half-open connections use less).
    'request-timeout-ms': { type: 'string', default: '30000' },
  },
})
const [bootstrap, topic, groupId] = positionals
if (!bootstrap || !topic || !groupId) {
  process.stderr.write('usage: kafkajs_group_member.ts <bootstrap> <topic> <group> [options]\n')
  process.exit(2)
}
const sleepEvery = Number(values['sleep-every'])

function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ ...event, t: Date.now() }) + '\n')
}

const kafka = new Kafka({
  brokers: [bootstrap],
  clientId: 'group-member',
  // MEMBER_LOG=1 sends KafkaJS's own log to stderr (stdout carries only the events).
  logLevel: process.env.MEMBER_LOG ? logLevel.INFO : logLevel.NOTHING,
  logCreator: () => ({ namespace, level, log }) => {
    const { message, ...extra } = log
    process.stderr.write(`${new Date().toISOString()} ${level} ${namespace}: ${message} ${JSON.stringify(extra)}\n`)
  },
  // Keep retrying through a broker restart instead of crashing the consumer.
  retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
  requestTimeout: Number(values['request-timeout-ms']),
})
const consumer = kafka.consumer({
  groupId,
  sessionTimeout: Number(values['session-timeout-ms']),
  heartbeatInterval: 500,
  maxWaitTimeInMs: 100,
})

let assignment = -1
let generationReported = false
consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
  assignment++
  generationReported = false
  const partitions = (payload.memberAssignment[topic] ?? []).slice().sort((a, b) => a - b)
  emit({ event: 'assigned', memberId: payload.memberId, partitions })
})
function reportGeneration(generation: number): void {
  if (generationReported || assignment < 0) return
  generationReported = true
  emit({ event: 'generation', assignment, generation })
}
consumer.on(consumer.events.HEARTBEAT, ({ payload }) => reportGeneration(payload.groupGenerationId))
consumer.on(consumer.events.COMMIT_OFFSETS, ({ payload }) => {
  reportGeneration(payload.groupGenerationId)
  const partitions = payload.topics
    .filter((t) => t.topic === topic)
    .flatMap((t) => t.partitions.map((p) => [Number(p.partition), Number(p.offset)]))
  emit({ event: 'committed', partitions, generation: payload.groupGenerationId })
})
consumer.on(consumer.events.CRASH, ({ payload }) => {
  emit({ event: 'crashed', error: String(payload.error), restart: payload.restart })
  // A consumer KafkaJS will not restart is dead: exit, so the test (a supervisor, in production)
  // sees it and can start another, instead of a live process that consumes nothing.
  if (!payload.restart) process.exit(4)
})

let processed = 0
await consumer.connect()
await consumer.subscribe({ topic, fromBeginning: true })
await consumer.run({
  eachMessage: async ({ partition, message }) => {
    emit({ event: 'record', partition, offset: Number(message.offset), value: message.value?.toString(), assignment })
    processed++
    if (sleepEvery > 0 && processed % sleepEvery === 0) await delay(1)
  },
})

const lifetime = setTimeout(() => process.exit(3), Number(values['lifetime-ms']))
process.once('SIGTERM', () => {
  clearTimeout(lifetime)
  consumer.disconnect().then(
    () => process.exit(0),
    () => process.exit(1),
  )
})
