// Clients that hold a connection without completing anything, against brokers in child
// processes. Guards exercised:
// - requestReadTimeoutMs: a slow-loris connection, which sends a frame's size and then trickles
//   its bytes, is never idle, yet is closed once the frame has taken longer than the limit;
//   a frame that arrives slowly but within the limit is answered, and pauses between whole
//   frames do not count. Meanwhile a healthy connection and a real client (KafkaJS producer and
//   group consumer) carry on normally.
// - idleTimeoutMs: a connection that sends nothing is closed; one that keeps talking is not.
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import kafkajs from 'kafkajs'
import { ApiVersions, Metadata } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { writeRequestHeader } from '../../src/protocol/headers.ts'
import { Writer } from '../../src/protocol/primitives.ts'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { waitFor } from '../helpers/wait.ts'

const { Kafka, logLevel } = kafkajs
const READ_TIMEOUT_MS = 1000
const IDLE_TIMEOUT_MS = 1000
const SLACK_MS = 2000
const SLOW_LORIS = 50

const dirs = [tempDir('tideway-slow-'), tempDir('tideway-idle-')]
const slowBroker = new BrokerProcess(dirs[0]!.path, ['--request-read-timeout-ms', String(READ_TIMEOUT_MS)])
const idleBroker = new BrokerProcess(dirs[1]!.path, ['--idle-timeout-ms', String(IDLE_TIMEOUT_MS)])
const cleanups: (() => unknown)[] = []

before(async () => {
  await Promise.all([slowBroker.start(), idleBroker.start()])
})
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  await Promise.all([slowBroker.kill9(), idleBroker.kill9()])
  for (const dir of dirs) dir.remove()
})

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket))
    socket.on('error', () => {})
    socket.once('error', reject)
    cleanups.push(() => socket.destroy())
  })
}

/** Resolves with how long after `since` the socket was closed by the broker. */
function closedAfter(socket: Socket, since: number): Promise<number> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(Date.now() - since)
    socket.once('close', () => resolve(Date.now() - since))
  })
}

function apiVersionsFrame(correlationId: number): Buffer {
  const w = new Writer()
  w.int32(0)
  writeRequestHeader(w, { apiKey: ApiVersions.key, apiVersion: 3, correlationId, clientId: 'slow' }, true)
  ApiVersions.encodeRequest(3, w, { clientSoftwareName: 'slow', clientSoftwareVersion: '1' })
  const frame = w.toBuffer()
  frame.writeInt32BE(frame.length - 4, 0)
  return frame
}

test('guard requestReadTimeoutMs: 50 slow-loris connections are closed within the limit while a healthy connection and KafkaJS carry on', { timeout: 90_000 }, async () => {
  const topic = 'steady'
  await createTopic(slowBroker.bootstrap, topic, 2)
  const kafka = new Kafka({ brokers: [slowBroker.bootstrap], clientId: 'slow-loris-bystander', logLevel: logLevel.NOTHING })
  const producer = kafka.producer()
  const consumer = kafka.consumer({ groupId: 'steady-group', maxWaitTimeInMs: 200 })
  cleanups.push(() => producer.disconnect().catch(() => {}), () => consumer.disconnect().catch(() => {}))
  await producer.connect()
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const consumed = new Set<string>()
  await consumer.run({ eachMessage: async ({ message }) => void consumed.add(message.value!.toString()) })
  const healthy = await RawClient.connect(slowBroker.bootstrap)
  cleanups.push(() => healthy.close())

  // Each slow-loris connection declares a 100-byte frame and sends one byte of it every 200 ms.
  const started = Date.now()
  const lorises = await Promise.all(Array.from({ length: SLOW_LORIS }, () => open(slowBroker.port)))
  const closings = lorises.map((socket) => {
    const size = Buffer.alloc(4)
    size.writeInt32BE(100)
    socket.write(size)
    const drip = setInterval(() => socket.destroyed || socket.write(Buffer.from([0])), 200)
    return closedAfter(socket, started).finally(() => clearInterval(drip))
  })

  // A frame trickled in over about half the limit is still answered.
  const patient = await RawClient.connect(slowBroker.bootstrap)
  cleanups.push(() => patient.close())
  const whole = apiVersionsFrame(77)
  const answered = patient.rawRequest(77, Buffer.alloc(0), 10_000)
  for (let at = 0; at < whole.length; at += Math.ceil(whole.length / 5)) {
    patient.socket.write(whole.subarray(at, at + Math.ceil(whole.length / 5)))
    await delay(READ_TIMEOUT_MS / 10)
  }
  assert.equal((await answered).readInt32BE(0), 77)

  // Meanwhile: records flow through KafkaJS, and the healthy connection is answered, with gaps
  // between its requests longer than the read timeout (only incomplete frames are timed).
  let sent = 0
  const healthChecks: Promise<unknown>[] = []
  while (Date.now() - started < READ_TIMEOUT_MS + SLACK_MS) {
    await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, () => ({ value: `m${sent++}` })) })
    if (healthChecks.length < 3 && Date.now() - started > healthChecks.length * (READ_TIMEOUT_MS + 100)) {
      healthChecks.push(healthy.request(Metadata, 8, { topics: [{ name: topic }], allowAutoTopicCreation: false }))
    }
    await delay(100)
  }
  const times = await Promise.all(closings)
  for (const answer of await Promise.all(healthChecks)) assert.equal((answer as { topics: { errorCode: number }[] }).topics[0]!.errorCode, ErrorCode.NONE)
  await waitFor(() => consumed.size === sent, { timeoutMs: 30_000, what: `the consumer to read all ${sent} records` })
  assert.equal(healthy.isClosed, false, 'the healthy connection is still open')
  process.stdout.write(`# slow-clients: ${SLOW_LORIS} slow-loris connections closed after ${Math.min(...times)}-${Math.max(...times)} ms (limit ${READ_TIMEOUT_MS} ms); KafkaJS produced and consumed ${sent} records meanwhile\n`)
  assert.ok(Math.max(...times) <= READ_TIMEOUT_MS + SLACK_MS, `a slow-loris connection lasted ${Math.max(...times)} ms`)
  const warnings = slowBroker.log.split('\n').filter((line) => line.includes('request frame not received in time'))
  assert.ok(warnings.length > 0 && warnings.length <= 10 * Math.ceil((Date.now() - started) / 1000 + 1), `${warnings.length} warnings, rate-limited`)
})

test('guard idleTimeoutMs: a connection that sends nothing is closed, one that keeps talking is not', { timeout: 30_000 }, async () => {
  const silent = await open(idleBroker.port)
  const talking = await RawClient.connect(idleBroker.bootstrap)
  cleanups.push(() => talking.close())
  const since = Date.now()
  const silentClosed = closedAfter(silent, since)
  for (let i = 0; Date.now() - since < 3 * IDLE_TIMEOUT_MS; i++) {
    const answer = await talking.request(ApiVersions, 3, { clientSoftwareName: 'talking', clientSoftwareVersion: '1' })
    assert.equal(answer.errorCode, ErrorCode.NONE)
    await delay(IDLE_TIMEOUT_MS / 4)
  }
  const silentFor = await silentClosed
  process.stdout.write(`# slow-clients: a silent connection was closed after ${silentFor} ms (idle timeout ${IDLE_TIMEOUT_MS} ms)\n`)
  assert.ok(silentFor <= IDLE_TIMEOUT_MS + SLACK_MS, `the silent connection lasted ${silentFor} ms`)
  assert.equal(talking.isClosed, false, 'a connection in use for 3 idle timeouts stays open')
})
