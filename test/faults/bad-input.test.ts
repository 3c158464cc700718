// Hostile and malformed input against a live broker. Each case names the guard it exercises and
// the documented outcome (README, "Bad input"): the offending connection is closed (or, for
// ApiVersions at an unknown version, answered with UNSUPPORTED_VERSION), a second healthy
// connection keeps being served throughout, and data produced before is intact afterwards.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { ApiVersions, Fetch, Metadata } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { readBatchHeader } from '../../src/protocol/record-batch.ts'
import { createTopic } from '../helpers/admin.ts'
import { embeddedBroker, uniqueName, type EmbeddedBroker } from '../helpers/embedded.ts'
import { RawClient } from '../helpers/raw-client.ts'

const { Kafka, logLevel } = kafkajs
let broker: EmbeddedBroker
let healthy: RawClient
const topic = uniqueName('bad-input')
const RECORDS = 200

before(async () => {
  broker = await embeddedBroker({ maxFrameBytes: 1024 * 1024 })
  await createTopic(broker.bootstrap, topic, 1)
  const producer = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).producer()
  await producer.connect()
  await producer.send({ topic, acks: -1, messages: Array.from({ length: RECORDS }, (_, i) => ({ value: `v${i}` })) })
  await producer.disconnect()
  healthy = await RawClient.connect(broker.bootstrap)
})
after(async () => {
  healthy?.close()
  await broker?.dispose()
})

/** The healthy connection still gets answers, and every record produced before is readable. */
async function assertUndisturbed() {
  const metadata = await healthy.request(Metadata, 8, { topics: [{ name: topic }], allowAutoTopicCreation: false })
  assert.equal(metadata.topics[0]!.errorCode, ErrorCode.NONE)
  const fetched = await healthy.request(Fetch, 11, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 10 * 1024 * 1024,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 10 * 1024 * 1024 }] }],
    forgottenTopicsData: [],
  })
  const partition = fetched.responses[0]!.partitions[0]!
  assert.equal(partition.errorCode, ErrorCode.NONE)
  assert.equal(partition.highWatermark, BigInt(RECORDS))
  let records = 0
  for (let at = 0; at < partition.records!.length; ) {
    const header = readBatchHeader(partition.records!, at)
    records += header.recordCount
    at += 12 + header.batchLength
  }
  assert.equal(records, RECORDS)
}

function frameOf(body: Buffer): Buffer {
  const size = Buffer.alloc(4)
  size.writeInt32BE(body.length)
  return Buffer.concat([size, body])
}

function header(apiKey: number, apiVersion: number, correlationId: number): Buffer {
  const b = Buffer.alloc(10)
  b.writeInt16BE(apiKey, 0)
  b.writeInt16BE(apiVersion, 2)
  b.writeInt32BE(correlationId, 4)
  b.writeInt16BE(-1, 8) // null client id
  return b
}

async function expectClosed(send: (client: RawClient) => void, what: string) {
  const client = await RawClient.connect(broker.bootstrap)
  send(client)
  assert.ok(await client.closedWithin(5_000), `${what}: the broker closes the connection`)
  assert.deepEqual(client.unsolicited, [], `${what}: no response is sent`)
  await assertUndisturbed()
}

test('guard frame-size: random bytes close that connection only', { timeout: 30_000 }, async () => {
  for (let i = 0; i < 5; i++) await expectClosed((c) => c.socket.write(randomBytes(4096)), 'random bytes')
})

test('guard frame-size: a frame declaring 2 GiB is refused before it is buffered', { timeout: 30_000 }, async () => {
  const claim = Buffer.alloc(4)
  claim.writeInt32BE(0x7fffffff)
  await expectClosed((c) => c.socket.write(claim), '2 GiB frame')
})

test('guard framing: a truncated frame followed by a close leaves the broker serving', { timeout: 30_000 }, async () => {
  const client = await RawClient.connect(broker.bootstrap)
  const whole = frameOf(Buffer.concat([header(3, 9, 7), Buffer.from([0x01, 0x01, 0x00, 0x00, 0x00])]))
  client.socket.end(whole.subarray(0, whole.length - 3))
  await client.closed
  await assertUndisturbed()
})

test('guard api-key: an unknown API key closes the connection', { timeout: 30_000 }, async () => {
  await expectClosed((c) => c.socket.write(frameOf(header(9999, 0, 1))), 'unknown api key')
})

test('guard version: an unsupported version of a known API closes the connection', { timeout: 30_000 }, async () => {
  await expectClosed((c) => c.socket.write(frameOf(header(3, 99, 1))), 'Metadata v99')
})

test('guard version: ApiVersions at an unknown version gets UNSUPPORTED_VERSION with the supported list', { timeout: 30_000 }, async () => {
  const client = await RawClient.connect(broker.bootstrap)
  try {
    const answer = await client.rawRequest(42, frameOf(header(18, 77, 42)))
    const { Reader } = await import('../../src/protocol/primitives.ts')
    const r = new Reader(answer)
    assert.equal(r.int32(), 42) // response header v0: correlation id only
    const body = ApiVersions.decodeResponse(0, r)
    assert.equal(body.errorCode, ErrorCode.UNSUPPORTED_VERSION)
    const apiVersions = body.apiKeys.find((k) => k.apiKey === 18)
    assert.deepEqual(apiVersions, { apiKey: 18, minVersion: 0, maxVersion: 3 })
    assert.equal(client.isClosed, false, 'the connection stays open for the retry')
    const retried = await client.request(ApiVersions, 3, { clientSoftwareName: 'raw', clientSoftwareVersion: '1' })
    assert.equal(retried.errorCode, ErrorCode.NONE)
  } finally {
    client.close()
  }
  await assertUndisturbed()
})

test('guard decoder: a body whose array length exceeds the frame closes the connection', { timeout: 30_000 }, async () => {
  // Metadata v1: topics array claiming 2^31-1 entries inside a 14-byte frame.
  const body = Buffer.concat([header(3, 1, 5), Buffer.from([0x7f, 0xff, 0xff, 0xff])])
  await expectClosed((c) => c.socket.write(frameOf(body)), 'huge array count')
})

test('guard decoder: a header cut short inside a frame closes the connection', { timeout: 30_000 }, async () => {
  await expectClosed((c) => c.socket.write(frameOf(Buffer.from([0x00, 0x03, 0x00]))), 'three-byte frame')
})
