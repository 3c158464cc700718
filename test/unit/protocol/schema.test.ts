// The schema compiler: every served version of every registered API round-trips generated
// samples (as Kafka's MessageTest does for all versions), and the rules kept in schema.ts
// (tags, defaults, absent fields, nullability, compact vs classic) hold on exact bytes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { allApis, ApiVersions, DeleteTopics, Metadata } from '../../../src/protocol/apis/index.ts'
import { Reader, Writer } from '../../../src/protocol/primitives.ts'
import { api, array, bytes, int16, int32, int8, string, struct, type Api } from '../../../src/protocol/schema.ts'
import { TidewayError } from '../../../src/errors.ts'
import { hexDump } from '../../helpers/hex-fixture.ts'
import { Rng, sampleMessage, seedFor, servedVersions } from './sample.ts'

const SAMPLES_PER_VERSION = 25
const seed = seedFor('schema.test.ts', 0x5eed_0001)

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')

function encodeWith(fn: (w: Writer) => void): Buffer {
  const w = new Writer()
  fn(w)
  return w.toBuffer()
}

function isCode(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof TidewayError, `expected a TidewayError, got ${String(err)}`)
    assert.equal(err.code, code)
    return true
  }
}

for (const target of allApis) {
  test(`${target.name} round-trips generated requests and responses at every served version`, { timeout: 30000 }, () => {
    const rng = new Rng(seed ^ (target.key * 0x9e3779b1))
    for (const version of servedVersions(target)) {
      for (const side of ['request', 'response'] as const) {
        const encode = (w: Writer, v: unknown) =>
          side === 'request' ? target.encodeRequest(version, w, v as never) : target.encodeResponse(version, w, v as never)
        const decode = (r: Reader) => (side === 'request' ? target.decodeRequest(version, r) : target.decodeResponse(version, r))
        for (let i = 0; i < SAMPLES_PER_VERSION; i++) {
          const sample = sampleMessage(target, version, side, rng)
          const where = `${target.name} v${version} ${side} sample ${i} (seed ${seed})`
          const first = encodeWith((w) => encode(w, sample))
          const r = new Reader(first)
          const decoded = decode(r)
          assert.equal(r.remaining, 0, `${where}: decoder left ${r.remaining} bytes`)
          assert.deepEqual(decoded, sample, where)
          const second = encodeWith((w) => encode(w, decoded))
          assert.ok(first.equals(second), `${where}: re-encoding differs\n${hexDump(first)}\n---\n${hexDump(second)}`)
        }
      }
    }
  })
}

// A small API whose versions exercise each rule: v0 classic, v1+ flexible.
const Probe = api({
  key: 9999,
  name: 'Probe',
  versions: [0, 2],
  flexibleFrom: 1,
  request: struct({
    id: int32,
    note: string.since(1).nullable(1).default(null),
    strict: int16.since(2),
    loose: int16.since(2).ignorable(),
    label: string.tag(0).default('x'),
    level: int8.tag(3).default(-1),
  }),
  response: struct({
    name: string.nullable(1),
    data: bytes.nullable(1),
    items: array(int16).nullable(1),
  }),
}) as unknown as Api

test('a tagged field is written only when it differs from its default', { timeout: 30000 }, () => {
  const atDefaults = encodeWith((w) => Probe.encodeRequest(2, w, { id: 1, note: null, strict: 0, label: 'x', level: -1 }))
  assert.deepEqual(atDefaults, hex('00000001 00 0000 0000 00'))
  const omitted = encodeWith((w) => Probe.encodeRequest(2, w, { id: 1 }))
  assert.deepEqual(omitted, atDefaults)
  const changed = encodeWith((w) => Probe.encodeRequest(2, w, { id: 1, label: 'yz', level: 5 }))
  // count 2; tag 0, size 3, compact string "yz"; tag 3, size 1, int8 5 (ascending tag order)
  assert.deepEqual(changed, hex('00000001 00 0000 0000 02 00 03 03 797a 03 01 05'))
  const decoded = Probe.decodeRequest(2, new Reader(changed))
  assert.deepEqual(decoded, { id: 1, note: null, strict: 0, loose: 0, label: 'yz', level: 5 })
})

test('the ApiVersions v3 response omits finalizedFeaturesEpoch while it is -1', { timeout: 30000 }, () => {
  const body = { errorCode: 0, apiKeys: [], throttleTimeMs: 0 }
  const atDefault = encodeWith((w) => ApiVersions.encodeResponse(3, w, { ...body, finalizedFeaturesEpoch: -1n }))
  assert.deepEqual(atDefault, hex('0000 01 00000000 00'))
  const set = encodeWith((w) => ApiVersions.encodeResponse(3, w, { ...body, finalizedFeaturesEpoch: 7n }))
  assert.deepEqual(set, hex('0000 01 00000000 01 01 08 0000000000000007'))
})

test('unknown tags are skipped on decode, known ones still read', { timeout: 30000 }, () => {
  // tags: 1 (unknown, 3 bytes), 3 (level = 9), 40 (unknown, empty), in one buffer of count 3
  const frame = hex('00000007 00 0000 0000 03 01 03 aabbcc 03 01 09 28 00')
  const r = new Reader(frame)
  assert.deepEqual(Probe.decodeRequest(2, r), { id: 7, note: null, strict: 0, loose: 0, label: 'x', level: 9 })
  assert.equal(r.remaining, 0)
})

test('an unknown tag whose size runs past the frame is a decode error', { timeout: 30000 }, () => {
  const frame = hex('00000007 00 0000 0000 01 05 10 aabb')
  assert.throws(() => Probe.decodeRequest(2, new Reader(frame)), isCode('TIDEWAY_ERR_DECODE'))
})

test('a field absent from a version decodes as its default', { timeout: 30000 }, () => {
  // v0 is classic: only `id` is on the wire; tagged fields do not exist without flexibility.
  const decoded = Probe.decodeRequest(0, new Reader(hex('0000002a')))
  assert.deepEqual(decoded, { id: 42, note: null, strict: 0, loose: 0, label: 'x', level: -1 })
  // Metadata v1 has no allowAutoTopicCreation (v4+), whose default is true.
  const metadata = Metadata.decodeRequest(1, new Reader(hex('ffffffff')))
  assert.deepEqual(metadata, {
    topics: null,
    allowAutoTopicCreation: true,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  })
})

test('encoding a non-default value into a version lacking a non-ignorable field throws', { timeout: 30000 }, () => {
  assert.throws(() => encodeWith((w) => Probe.encodeRequest(1, w, { id: 1, strict: 5 })), isCode('TIDEWAY_ERR_ENCODE'))
  assert.throws(() => encodeWith((w) => Probe.encodeRequest(0, w, { id: 1, label: 'other' })), isCode('TIDEWAY_ERR_ENCODE'))
  assert.throws(
    () => encodeWith((w) => Metadata.encodeRequest(7, w, { topics: null, includeTopicAuthorizedOperations: true })),
    isCode('TIDEWAY_ERR_ENCODE'),
  )
  // The default value itself is fine: nothing is lost.
  assert.deepEqual(encodeWith((w) => Probe.encodeRequest(1, w, { id: 1, strict: 0 })), hex('00000001 00 00'))
})

test('an ignorable field is dropped from a version that lacks it', { timeout: 30000 }, () => {
  assert.deepEqual(encodeWith((w) => Probe.encodeRequest(1, w, { id: 1, loose: 5 })), hex('00000001 00 00'))
  // Metadata v1 responses have no throttle time (v3+): the value is dropped, not an error.
  const withThrottle = encodeWith((w) => Metadata.encodeResponse(1, w, { throttleTimeMs: 500, brokers: [], topics: [] }))
  const without = encodeWith((w) => Metadata.encodeResponse(1, w, { brokers: [], topics: [] }))
  assert.deepEqual(withThrottle, without)
})

test('null in a version where the field is not nullable throws, and is accepted where it is', { timeout: 30000 }, () => {
  assert.throws(() => encodeWith((w) => Probe.encodeResponse(0, w, { name: null, data: Buffer.alloc(0), items: [] })), isCode('TIDEWAY_ERR_ENCODE'))
  assert.throws(() => encodeWith((w) => Probe.encodeResponse(0, w, { name: '', data: null, items: [] })), isCode('TIDEWAY_ERR_ENCODE'))
  assert.throws(() => encodeWith((w) => Probe.encodeResponse(0, w, { name: '', data: Buffer.alloc(0), items: null })), isCode('TIDEWAY_ERR_ENCODE'))
  assert.deepEqual(encodeWith((w) => Probe.encodeResponse(1, w, { name: null, data: null, items: null })), hex('00 00 00 00'))
  // DeleteTopics response names become nullable only in v6.
  const result = (name: string | null) => ({ responses: [{ name, errorCode: 0 }] })
  assert.throws(() => encodeWith((w) => DeleteTopics.encodeResponse(5, w, result(null))), isCode('TIDEWAY_ERR_ENCODE'))
  encodeWith((w) => DeleteTopics.encodeResponse(6, w, result(null)))
  // A classic null length where null is not allowed is malformed input.
  assert.throws(() => Probe.decodeResponse(0, new Reader(hex('ffff 00000000 00000000'))), isCode('TIDEWAY_ERR_DECODE'))
})

test('strings, bytes and arrays use int16/int32 lengths in classic versions and length+1 uvarints in flexible ones', { timeout: 30000 }, () => {
  const value = { name: 'abc', data: Buffer.from([0xde, 0xad]), items: [1, -1] }
  const classic = encodeWith((w) => Probe.encodeResponse(0, w, value))
  assert.deepEqual(classic, hex('0003 616263  00000002 dead  00000002 0001 ffff'))
  const compact = encodeWith((w) => Probe.encodeResponse(1, w, value))
  assert.deepEqual(compact, hex('04 616263  03 dead  03 0001 ffff  00'))
  const empty = { name: '', data: Buffer.alloc(0), items: [] }
  assert.deepEqual(encodeWith((w) => Probe.encodeResponse(0, w, empty)), hex('0000 00000000 00000000'))
  assert.deepEqual(encodeWith((w) => Probe.encodeResponse(1, w, empty)), hex('01 01 01 00'))
  const nulls = { name: null, data: null, items: null }
  assert.deepEqual(encodeWith((w) => Probe.encodeResponse(2, w, nulls)), hex('00 00 00 00'))
  assert.deepEqual(Probe.decodeResponse(1, new Reader(compact)), value)
  assert.deepEqual(Probe.decodeResponse(0, new Reader(classic)), value)
  assert.deepEqual(Probe.decodeResponse(2, new Reader(hex('00 00 00 00'))), nulls)
  // A string length counts UTF-8 bytes, not UTF-16 code units.
  assert.deepEqual(encodeWith((w) => Probe.encodeResponse(1, w, { ...empty, name: 'é🦀' })), hex('07 c3a9 f09fa680 01 01 00'))
})

test('a nullable struct carries an int8 presence marker', { timeout: 30000 }, () => {
  const Holder = api({
    key: 9998,
    name: 'Holder',
    versions: [0, 0],
    request: struct({ inner: struct({ a: int32 }).nullable(), xs: array(struct({ a: int32 }).nullable()) }),
    response: struct({}),
  }) as unknown as Api
  const bytesOut = encodeWith((w) => Holder.encodeRequest(0, w, { inner: null, xs: [{ a: 2 }, null] }))
  assert.deepEqual(bytesOut, hex('ff 00000002 01 00000002 ff'))
  assert.deepEqual(Holder.decodeRequest(0, new Reader(bytesOut)), { inner: null, xs: [{ a: 2 }, null] })
  // Twenty null elements take 20 bytes: the count bound must use the null form's size.
  const many = encodeWith((w) => Holder.encodeRequest(0, w, { inner: null, xs: new Array(20).fill(null) }))
  assert.equal((Holder.decodeRequest(0, new Reader(many)) as { xs: unknown[] }).xs.length, 20)
})

test('decoding or encoding a version the API does not serve is refused', { timeout: 30000 }, () => {
  assert.throws(() => Probe.decodeRequest(3, new Reader(hex('00000001'))), isCode('TIDEWAY_ERR_DECODE'))
  assert.throws(() => encodeWith((w) => Probe.encodeRequest(3, w, { id: 1 })), isCode('TIDEWAY_ERR_ENCODE'))
})

test('a string holds at most 32767 bytes in every encoding; clipped text is cut at a character boundary instead', { timeout: 30000 }, () => {
  const Message = api({
    key: 9000,
    name: 'Message',
    versions: [0, 1],
    flexibleFrom: 1,
    request: struct({ name: string }),
    response: struct({ errorMessage: string.nullable().clipped() }),
  })
  const long = 'x' + '日'.repeat(11_000) // 33001 bytes
  for (const version of [0, 1]) {
    assert.throws(() => encodeWith((w) => Message.encodeRequest(version, w, { name: long })), isCode('TIDEWAY_ERR_ENCODE'))
    const r = new Reader(encodeWith((w) => Message.encodeResponse(version, w, { errorMessage: long })))
    const { errorMessage } = Message.decodeResponse(version, r)
    assert.ok(errorMessage!.endsWith('…') && long.startsWith(errorMessage!.slice(0, -1)), `v${version}: cut on a character`)
    assert.ok(Buffer.byteLength(errorMessage!) <= 32767)
  }
  // A compact string claiming 32768 bytes (uvarint 32769 = 81 80 02) is refused before it is read.
  const compact = Buffer.concat([hex('81 80 02'), Buffer.alloc(32768, 0x61)])
  assert.throws(() => Message.decodeRequest(1, new Reader(compact)), isCode('TIDEWAY_ERR_DECODE'))
  // 11,000 bytes of bad UTF-8 decode to 33,000 bytes of U+FFFD: too long to echo, refused.
  const bad = Buffer.concat([hex('2af8'), Buffer.alloc(11_000, 0xff)])
  assert.throws(() => Message.decodeRequest(0, new Reader(bad)), isCode('TIDEWAY_ERR_DECODE'))
})
