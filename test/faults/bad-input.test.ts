// Hostile and malformed input against a live broker. Each case names the guard it exercises and
// the documented outcome (README, "Bad input"): the offending connection is closed (or, for
// ApiVersions at an unknown version, answered with UNSUPPORTED_VERSION), a second healthy
// connection keeps being served throughout, and data produced before is intact afterwards.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import kafkajs from 'kafkajs'
import { jsonLogger } from '../../src/logger.ts'
import { ApiVersions, CreatePartitions, CreateTopics, DescribeConfigs, Fetch, JoinGroup, Metadata, Produce } from '../../src/protocol/apis/index.ts'
import { writeRequestHeader } from '../../src/protocol/headers.ts'
import { Reader, Writer } from '../../src/protocol/primitives.ts'
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

test('guard partition-count: CreateTopics and CreatePartitions asking for more partitions than a topic may have get INVALID_PARTITIONS', { timeout: 30_000 }, async () => {
  // Found by test/faults/live-fuzz.test.ts: a count over the 10,000 a topic may have was refused by
  // the topic store as a config error, answered INVALID_TOPIC_EXCEPTION / INVALID_CONFIG.
  const client = await RawClient.connect(broker.bootstrap)
  try {
    const created = await client.request(CreateTopics, 7, {
      topics: [{ name: uniqueName('too-wide'), numPartitions: 10_001, replicationFactor: -1, assignments: [], configs: [] }],
      timeoutMs: 10_000,
      validateOnly: false,
    })
    assert.equal(created.topics[0]!.errorCode, ErrorCode.INVALID_PARTITIONS)
    const grown = await client.request(CreatePartitions, 3, { topics: [{ name: topic, count: 0x7fffffff, assignments: null }], timeoutMs: 10_000, validateOnly: false })
    assert.equal(grown.results[0]!.errorCode, ErrorCode.INVALID_PARTITIONS)
  } finally {
    client.close()
  }
  await assertUndisturbed()
})

// The next four were found by test/faults/live-fuzz.test.ts once it sent strings of about 32 KiB:
// answers quote or embed what the request sent, and a protocol string holds at most 32767 bytes.

test('guard message length: an error message quoting a 32 KiB name is cut to fit, not a failed answer', { timeout: 30_000 }, async () => {
  // "topic <name> ...", "unknown broker <name>" in v0-4 strings (int16 length) made the encoder
  // throw, so the handler "failed" and the connection was closed. Messages are now clipped.
  const long = 'é'.repeat(16_383) // 32766 bytes
  const client = await RawClient.connect(broker.bootstrap)
  const clipped = (message: string | null | undefined) => {
    assert.ok(message && Buffer.byteLength(message) <= 32_767 && message.endsWith('…'), `message of ${Buffer.byteLength(message ?? '')} bytes`)
  }
  try {
    const twice = await client.request(CreateTopics, 4, {
      topics: [0, 1].map(() => ({ name: long, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] })),
      timeoutMs: 10_000,
      validateOnly: false,
    })
    assert.equal(twice.topics[0]!.errorCode, ErrorCode.INVALID_REQUEST)
    clipped(twice.topics[0]!.errorMessage)
    const described = await client.request(DescribeConfigs, 2, { resources: [{ resourceType: 4, resourceName: long, configurationKeys: null }], includeSynonyms: false })
    assert.equal(described.results[0]!.errorCode, ErrorCode.INVALID_REQUEST)
    clipped(described.results[0]!.errorMessage)
    const grown = await client.request(CreatePartitions, 1, { topics: [{ name: long, count: 2, assignments: null }], timeoutMs: 10_000, validateOnly: false })
    assert.equal(grown.results[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    clipped(grown.results[0]!.errorMessage)
    const produced = await client.request(Produce, 8, { acks: 1, timeoutMs: 10_000, topicData: [{ name: long, partitionData: [{ index: 0, records: Buffer.alloc(70) }] }] })
    assert.equal(produced.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    clipped(produced.responses[0]!.partitionResponses[0]!.errorMessage)
  } finally {
    client.close()
  }
  await assertUndisturbed()
})

test('guard member id: a 32 KiB client id still gets a member id that fits', { timeout: 30_000 }, async () => {
  // Member ids are "<client id>-<uuid>" (Kafka's form): with a client id that fills a string the
  // JoinGroup answer could not be encoded. The client id part is now cut to 200 characters.
  const w = new Writer()
  w.int32(0)
  writeRequestHeader(w, { apiKey: JoinGroup.key, apiVersion: 4, correlationId: 31, clientId: 'c'.repeat(32_767) }, false)
  JoinGroup.encodeRequest(4, w, {
    groupId: uniqueName('long-client'),
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 1_000,
    memberId: '',
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.alloc(0) }],
  })
  const frame = w.toBuffer()
  frame.writeInt32BE(frame.length - 4, 0)
  const client = await RawClient.connect(broker.bootstrap)
  try {
    const r = new Reader(await client.rawRequest(31, frame))
    assert.equal(r.int32(), 31)
    const joined = JoinGroup.decodeResponse(4, r)
    assert.equal(joined.errorCode, ErrorCode.MEMBER_ID_REQUIRED)
    assert.match(joined.memberId, /^c{200}-[0-9a-f-]{36}$/)
  } finally {
    client.close()
  }
  await assertUndisturbed()
})

test('guard string length: a compact string declaring more than 32767 bytes closes the connection, as in Kafka', { timeout: 30_000 }, async () => {
  // JoinGroup v6 (flexible) with a 40,000-byte group id: accepted, it would be stored and later
  // listed by ListGroups v0-2, whose strings have an int16 length.
  const groupId = Buffer.alloc(40_000, 0x67)
  const length = Buffer.from([0xc1, 0xb8, 0x02]) // uvarint 40,001: length + 1
  // The rest is well-formed: timeouts, memberId "", groupInstanceId null, protocolType "", no protocols, no tags.
  const rest = Buffer.from('0000271000002710' + '01' + '00' + '01' + '01' + '00', 'hex')
  const body = Buffer.concat([header(11, 6, 9), Buffer.from([0x00]), length, groupId, rest])
  await expectClosed((c) => c.socket.write(frameOf(body)), 'a 40,000-byte compact string')
})

test('guard string length: a string whose bad UTF-8 would write back longer than 32767 bytes closes the connection', { timeout: 30_000 }, async () => {
  // Invalid UTF-8 decodes to U+FFFD, three bytes each: a 32767-byte name of 0xff bytes comes out
  // 98,301 bytes long, and Metadata echoes the names it was asked for.
  // Before, the name was accepted and the answer failed to encode ('request handler failed');
  // the client saw the same close, so this test reads the log of a broker of its own.
  const lines: string[] = []
  const own = await embeddedBroker({ logger: jsonLogger({ level: 'warn', stream: { write: (line: string) => lines.push(line) } }) })
  try {
    const name = Buffer.alloc(32_767, 0xff)
    const count = Buffer.alloc(6)
    count.writeInt32BE(1, 0)
    count.writeInt16BE(name.length, 4)
    const client = await RawClient.connect(own.bootstrap)
    client.socket.write(frameOf(Buffer.concat([header(3, 1, 12), count, name])))
    assert.ok(await client.closedWithin(5_000), 'the broker closes the connection')
    assert.deepEqual(lines.filter((line) => line.includes('request handler failed')), [])
    assert.ok(lines.some((line) => line.includes('closing connection after bad input') && line.includes('re-encode')), 'refused as bad input')
  } finally {
    await own.dispose()
  }
  await assertUndisturbed()
})
