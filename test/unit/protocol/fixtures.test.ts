// Byte fixtures (test/fixtures/protocol/<api>/*.hex): each must decode to the object written
// here AND re-encode to exactly the same bytes. The `spec-handbuilt` files were built by hand
// from the protocol guide's field definitions, independently of our encoder; real-client
// captures join them later under the same rule. Every .hex file must be listed below, so a new
// capture cannot sit in the directory untested.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ApiVersions, Fetch, Metadata, Produce } from '../../../src/protocol/apis/index.ts'
import {
  readRequestHeader,
  readResponseHeader,
  responseHeaderIsFlexible,
  writeRequestHeader,
  writeResponseHeader,
  type RequestHeader,
} from '../../../src/protocol/headers.ts'
import { Reader, Writer } from '../../../src/protocol/primitives.ts'
import type { Api } from '../../../src/protocol/schema.ts'
import { hexDump, loadHexFixture, parseHexFixture } from '../../helpers/hex-fixture.ts'

const FIXTURES = fileURLToPath(new URL('../../fixtures/protocol/', import.meta.url))

type FrameFixture =
  | { file: string; api: Api; version: number; kind: 'request'; header: RequestHeader; body: unknown }
  | { file: string; api: Api; version: number; kind: 'response'; correlationId: number; body: unknown }

const asApi = (a: unknown) => a as Api
const hex = (s: string) => Buffer.from(s, 'hex')
const NO_AUTHORIZED_OPERATIONS = -2147483648

const orders = { topic: 'orders' }

const frames: FrameFixture[] = [
  {
    file: 'api-versions/v0-request.spec-handbuilt.hex',
    api: asApi(ApiVersions),
    version: 0,
    kind: 'request',
    header: { apiKey: 18, apiVersion: 0, correlationId: 1, clientId: 'rdkafka' },
    body: { clientSoftwareName: '', clientSoftwareVersion: '' },
  },
  {
    file: 'api-versions/v0-response.spec-handbuilt.hex',
    api: asApi(ApiVersions),
    version: 0,
    kind: 'response',
    correlationId: 1,
    body: {
      errorCode: 35,
      apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 3 }],
      throttleTimeMs: 0,
      supportedFeatures: [],
      finalizedFeaturesEpoch: -1n,
      finalizedFeatures: [],
      zkMigrationReady: false,
    },
  },
  {
    file: 'api-versions/v3-request.spec-handbuilt.hex',
    api: asApi(ApiVersions),
    version: 3,
    kind: 'request',
    header: { apiKey: 18, apiVersion: 3, correlationId: 2, clientId: 'rdkafka' },
    body: { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.0.2' },
  },
  {
    file: 'api-versions/v3-response.spec-handbuilt.hex',
    api: asApi(ApiVersions),
    version: 3,
    kind: 'response',
    correlationId: 2,
    body: {
      errorCode: 0,
      apiKeys: [
        { apiKey: 0, minVersion: 0, maxVersion: 8 },
        { apiKey: 1, minVersion: 4, maxVersion: 12 },
        { apiKey: 18, minVersion: 0, maxVersion: 3 },
      ],
      throttleTimeMs: 0,
      supportedFeatures: [],
      finalizedFeaturesEpoch: -1n,
      finalizedFeatures: [],
      zkMigrationReady: false,
    },
  },
  {
    file: 'metadata/v1-request.spec-handbuilt.hex',
    api: asApi(Metadata),
    version: 1,
    kind: 'request',
    header: { apiKey: 3, apiVersion: 1, correlationId: 3, clientId: null },
    body: {
      topics: [{ name: 'orders' }],
      allowAutoTopicCreation: true,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    },
  },
  {
    file: 'metadata/v1-response.spec-handbuilt.hex',
    api: asApi(Metadata),
    version: 1,
    kind: 'response',
    correlationId: 3,
    body: {
      throttleTimeMs: 0,
      brokers: [{ nodeId: 1, host: 'localhost', port: 9092, rack: null }],
      clusterId: null,
      controllerId: 1,
      topics: [
        {
          errorCode: 0,
          name: 'orders',
          isInternal: false,
          partitions: [
            { errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: -1, replicaNodes: [1], isrNodes: [1], offlineReplicas: [] },
          ],
          topicAuthorizedOperations: NO_AUTHORIZED_OPERATIONS,
        },
      ],
      clusterAuthorizedOperations: NO_AUTHORIZED_OPERATIONS,
    },
  },
  {
    file: 'metadata/v8-request.spec-handbuilt.hex',
    api: asApi(Metadata),
    version: 8,
    kind: 'request',
    header: { apiKey: 3, apiVersion: 8, correlationId: 4, clientId: 'tideway' },
    body: {
      topics: [{ name: 'orders' }, { name: 'payments' }],
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: true,
    },
  },
  {
    file: 'metadata/v8-response.spec-handbuilt.hex',
    api: asApi(Metadata),
    version: 8,
    kind: 'response',
    correlationId: 5,
    body: {
      throttleTimeMs: 0,
      brokers: [{ nodeId: 1, host: 'localhost', port: 9092, rack: null }],
      clusterId: 'tideway',
      controllerId: 1,
      topics: [
        {
          errorCode: 0,
          name: 'orders',
          isInternal: false,
          partitions: [0, 1].map((partitionIndex) => ({
            errorCode: 0,
            partitionIndex,
            leaderId: 1,
            leaderEpoch: 0,
            replicaNodes: [1],
            isrNodes: [1],
            offlineReplicas: [],
          })),
          topicAuthorizedOperations: NO_AUTHORIZED_OPERATIONS,
        },
      ],
      clusterAuthorizedOperations: NO_AUTHORIZED_OPERATIONS,
    },
  },
  {
    file: 'produce/v3-request.spec-handbuilt.hex',
    api: asApi(Produce),
    version: 3,
    kind: 'request',
    header: { apiKey: 0, apiVersion: 3, correlationId: 5, clientId: 'rdkafka' },
    body: {
      transactionalId: null,
      acks: -1,
      timeoutMs: 30000,
      topicData: [{ name: 'orders', partitionData: [{ index: 0, records: hex('deadbeef0001') }] }],
    },
  },
  {
    file: 'produce/v3-response.spec-handbuilt.hex',
    api: asApi(Produce),
    version: 3,
    kind: 'response',
    correlationId: 5,
    body: {
      responses: [
        {
          name: 'orders',
          partitionResponses: [
            { index: 0, errorCode: 0, baseOffset: 42n, logAppendTimeMs: -1n, logStartOffset: -1n, recordErrors: [], errorMessage: null },
          ],
        },
      ],
      throttleTimeMs: 0,
    },
  },
  {
    file: 'produce/v8-request.spec-handbuilt.hex',
    api: asApi(Produce),
    version: 8,
    kind: 'request',
    header: { apiKey: 0, apiVersion: 8, correlationId: 6, clientId: 'kafkajs' },
    body: {
      transactionalId: 'tx-1',
      acks: 1,
      timeoutMs: 5000,
      topicData: [
        {
          name: 'orders',
          partitionData: [
            { index: 0, records: hex('0a0b0c') },
            { index: 1, records: null },
          ],
        },
      ],
    },
  },
  {
    file: 'produce/v8-response.spec-handbuilt.hex',
    api: asApi(Produce),
    version: 8,
    kind: 'response',
    correlationId: 6,
    body: {
      responses: [
        {
          name: 'orders',
          partitionResponses: [
            { index: 0, errorCode: 0, baseOffset: 100n, logAppendTimeMs: -1n, logStartOffset: 0n, recordErrors: [], errorMessage: null },
            {
              index: 1,
              errorCode: 87,
              baseOffset: -1n,
              logAppendTimeMs: -1n,
              logStartOffset: -1n,
              recordErrors: [{ batchIndex: 0, batchIndexErrorMessage: 'bad' }],
              errorMessage: 'bad batch',
            },
          ],
        },
      ],
      throttleTimeMs: 0,
    },
  },
  ...fetchResponses(),
  {
    file: 'fetch/v11-request.spec-handbuilt.hex',
    api: asApi(Fetch),
    version: 11,
    kind: 'request',
    header: { apiKey: 1, apiVersion: 11, correlationId: 10, clientId: 'rdkafka' },
    body: fetchRequest(1),
  },
  {
    file: 'fetch/v12-request.spec-handbuilt.hex',
    api: asApi(Fetch),
    version: 12,
    kind: 'request',
    header: { apiKey: 1, apiVersion: 12, correlationId: 11, clientId: 'rdkafka' },
    body: fetchRequest(0),
  },
]

function fetchRequest(isolationLevel: number) {
  return {
    clusterId: null,
    replicaId: -1,
    maxWaitMs: 500,
    minBytes: 1,
    maxBytes: 52428800,
    isolationLevel,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        ...orders,
        partitions: [
          { partition: 0, currentLeaderEpoch: -1, fetchOffset: 5n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1048576 },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  }
}

function fetchResponses(): FrameFixture[] {
  const partition = (logStartOffset: bigint) => ({
    partitionIndex: 0,
    errorCode: 0,
    highWatermark: 10n,
    lastStableOffset: 10n,
    logStartOffset,
    divergingEpoch: { epoch: -1, endOffset: -1n },
    currentLeader: { leaderId: -1, leaderEpoch: -1 },
    snapshotId: { endOffset: -1n, epoch: -1 },
    abortedTransactions: null,
    preferredReadReplica: -1,
    records: hex('cafebabe'),
  })
  const body = (logStartOffset: bigint) => ({
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    responses: [{ ...orders, partitions: [partition(logStartOffset)] }],
  })
  return [
    // v4 has no log_start_offset on the wire: it decodes as the default, -1.
    { file: 'fetch/v4-response.spec-handbuilt.hex', api: asApi(Fetch), version: 4, kind: 'response', correlationId: 7, body: body(-1n) },
    { file: 'fetch/v11-response.spec-handbuilt.hex', api: asApi(Fetch), version: 11, kind: 'response', correlationId: 8, body: body(0n) },
    { file: 'fetch/v12-response.spec-handbuilt.hex', api: asApi(Fetch), version: 12, kind: 'response', correlationId: 9, body: body(0n) },
  ]
}

function assertSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (!actual.equals(expected)) {
    let at = 0
    while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++
    assert.fail(`${what}: re-encoded bytes differ at offset ${at}\nexpected:\n${hexDump(expected)}\nactual:\n${hexDump(actual)}`)
  }
}

for (const fx of frames) {
  const label = `${fx.api.name} v${fx.version} ${fx.kind}`
  test(`the ${label} fixture ${fx.file.split('/')[1]} decodes to the expected object and re-encodes to the same bytes`, { timeout: 30000 }, () => {
    const frame = loadHexFixture(join(FIXTURES, fx.file))
    assert.equal(frame.readInt32BE(0), frame.length - 4, 'frame size prefix')
    const r = new Reader(frame, 4)
    const bodyFlexible = fx.api.isFlexible(fx.version)
    const w = new Writer()
    w.int32(frame.length - 4)
    if (fx.kind === 'request') {
      assert.deepEqual(readRequestHeader(r, bodyFlexible), fx.header)
      assert.deepEqual(fx.api.decodeRequest(fx.version, r), fx.body)
      writeRequestHeader(w, fx.header, bodyFlexible)
      fx.api.encodeRequest(fx.version, w, fx.body as never)
    } else {
      const headerFlexible = responseHeaderIsFlexible(fx.api.key, bodyFlexible)
      assert.equal(readResponseHeader(r, headerFlexible), fx.correlationId)
      assert.deepEqual(fx.api.decodeResponse(fx.version, r), fx.body)
      writeResponseHeader(w, fx.correlationId, headerFlexible)
      fx.api.encodeResponse(fx.version, w, fx.body as never)
    }
    assert.equal(r.remaining, 0, 'bytes left after the body')
    assertSameBytes(w.toBuffer(), frame, fx.file)
  })
}

const headers: { file: string; check: (b: Buffer) => void }[] = [
  {
    file: 'request-header/v1.spec-handbuilt.hex',
    check: (b) => {
      const expected = { apiKey: 3, apiVersion: 1, correlationId: 2147483647, clientId: null }
      const r = new Reader(b)
      assert.deepEqual(readRequestHeader(r, false), expected)
      assert.equal(r.remaining, 0)
      const w = new Writer()
      writeRequestHeader(w, expected, false)
      assertSameBytes(w.toBuffer(), b, 'request header v1')
    },
  },
  {
    file: 'request-header/v2.spec-handbuilt.hex',
    check: (b) => {
      const expected = { apiKey: 1, apiVersion: 12, correlationId: 7, clientId: 'consumer-1-1' }
      const r = new Reader(b)
      assert.deepEqual(readRequestHeader(r, true), expected)
      assert.equal(r.remaining, 0)
      const w = new Writer()
      writeRequestHeader(w, expected, true)
      assertSameBytes(w.toBuffer(), b, 'request header v2')
    },
  },
  {
    file: 'response-header/v0.spec-handbuilt.hex',
    check: (b) => {
      const r = new Reader(b)
      assert.equal(readResponseHeader(r, false), -2147483648)
      assert.equal(r.remaining, 0)
      const w = new Writer()
      writeResponseHeader(w, -2147483648, false)
      assertSameBytes(w.toBuffer(), b, 'response header v0')
    },
  },
  {
    file: 'response-header/v1.spec-handbuilt.hex',
    check: (b) => {
      const r = new Reader(b)
      assert.equal(readResponseHeader(r, true), 42)
      assert.equal(r.remaining, 0)
      const w = new Writer()
      writeResponseHeader(w, 42, true)
      assertSameBytes(w.toBuffer(), b, 'response header v1')
    },
  },
]

for (const h of headers) {
  test(`the ${h.file.replace('/', ' ').replace('.spec-handbuilt.hex', '')} fixture decodes and re-encodes to the same bytes`, { timeout: 30000 }, () => {
    h.check(loadHexFixture(join(FIXTURES, h.file)))
  })
}

test('the ApiVersions response header is v0 at every version, other APIs switch to v1 when flexible', { timeout: 30000 }, () => {
  assert.equal(responseHeaderIsFlexible(ApiVersions.key, ApiVersions.isFlexible(3)), false)
  assert.equal(responseHeaderIsFlexible(Metadata.key, Metadata.isFlexible(9)), true)
  assert.equal(responseHeaderIsFlexible(Metadata.key, Metadata.isFlexible(8)), false)
})

test('a request header v2 skips tagged fields it does not know', { timeout: 30000 }, () => {
  // client_id "ab", then two header tags (0: 2 bytes, 5: 0 bytes), then one body byte.
  const r = new Reader(hex('0001000c00000007' + '00026162' + '02' + '00020102' + '0500' + '99'))
  assert.deepEqual(readRequestHeader(r, true), { apiKey: 1, apiVersion: 12, correlationId: 7, clientId: 'ab' })
  assert.equal(r.remaining, 1)
})

test('every fixture file in test/fixtures/protocol is checked by this test', { timeout: 30000 }, () => {
  const listed = new Set([...frames.map((f) => f.file), ...headers.map((h) => h.file)])
  const onDisk = readdirSync(FIXTURES, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.hex'))
    .map((f) => f.split('\\').join('/'))
  for (const f of onDisk) assert.ok(listed.has(f), `${f} is not listed in fixtures.test.ts`)
  assert.equal(onDisk.length, listed.size)
})

test('the hex fixture parser ignores comments and whitespace and rejects split bytes', { timeout: 30000 }, () => {
  assert.deepEqual(parseHexFixture('# title\n00 12   # api key\n\n  0a0B # two bytes\n'), Buffer.from([0x00, 0x12, 0x0a, 0x0b]))
  assert.throws(() => parseHexFixture('00\n0 12 # typo\n', 'x.hex'), /x\.hex:2/)
  assert.throws(() => parseHexFixture('zz\n'), /pairs of hex digits/)
})
