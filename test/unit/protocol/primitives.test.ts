// Wire primitives: random round trips, the encodings at the edges where a varint grows a byte
// or zigzag flips sign, short reads that must surface only as our decode error, and the Writer's
// choice to reference large payloads rather than copy them, which must not change the bytes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Reader, Writer } from '../../../src/protocol/primitives.ts'
import { api, array, int32, struct, type Api } from '../../../src/protocol/schema.ts'
import { TidewayError } from '../../../src/errors.ts'
import { Rng, randomString, randomUuid, seedFor } from './sample.ts'

const seed = seedFor('primitives.test.ts', 0x5eed_0002)
const ROUNDS = 2000

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const write = (fn: (w: Writer) => void) => {
  const w = new Writer()
  fn(w)
  return w.toBuffer()
}

function throwsDecode(fn: () => unknown, what: string): void {
  assert.throws(
    fn,
    (err: unknown) => {
      assert.ok(err instanceof TidewayError, `${what}: expected TidewayError, got ${String(err)}`)
      assert.equal(err.code, 'TIDEWAY_ERR_DECODE', what)
      return true
    },
    what,
  )
}

type Kind = {
  name: string
  gen: (rng: Rng) => unknown
  put: (w: Writer, v: never) => unknown
  get: (r: Reader) => unknown
}

const kinds: Kind[] = [
  { name: 'int8', gen: (g) => g.int(-128, 127), put: (w, v) => w.int8(v), get: (r) => r.int8() },
  { name: 'uint8', gen: (g) => g.int(0, 255), put: (w, v) => w.uint8(v), get: (r) => r.uint8() },
  { name: 'bool', gen: (g) => g.chance(0.5), put: (w, v) => w.bool(v), get: (r) => r.bool() },
  { name: 'int16', gen: (g) => g.int(-32768, 32767), put: (w, v) => w.int16(v), get: (r) => r.int16() },
  { name: 'uint16', gen: (g) => g.int(0, 65535), put: (w, v) => w.uint16(v), get: (r) => r.uint16() },
  { name: 'int32', gen: (g) => g.int(-(2 ** 31), 2 ** 31 - 1), put: (w, v) => w.int32(v), get: (r) => r.int32() },
  { name: 'uint32', gen: (g) => g.uint32(), put: (w, v) => w.uint32(v), get: (r) => r.uint32() },
  { name: 'int64', gen: (g) => g.int64(), put: (w, v) => w.int64(v), get: (r) => r.int64() },
  { name: 'float64', gen: (g) => (g.float() - 0.5) * 2 ** g.int(-60, 60), put: (w, v) => w.float64(v), get: (r) => r.float64() },
  // uvarint/varint: spread over every encoded length, not just the 5-byte ones a uniform pick favours.
  { name: 'uvarint', gen: (g) => Math.floor(g.float() * 2 ** g.int(0, 32)), put: (w, v) => w.uvarint(v), get: (r) => r.uvarint() },
  {
    name: 'varint',
    gen: (g) => Math.max(-(2 ** 31), Math.floor((g.float() - 0.5) * 2 ** g.int(1, 32))),
    put: (w, v) => w.varint(v),
    get: (r) => r.varint(),
  },
  { name: 'varlong', gen: (g) => g.int64() >> BigInt(g.int(0, 63)), put: (w, v) => w.varlong(v), get: (r) => r.varlong() },
  { name: 'uuid', gen: (g) => randomUuid(g), put: (w, v) => w.uuid(v), get: (r) => r.uuid() },
]

test('every primitive round-trips random values, alone and in sequence', { timeout: 30000 }, () => {
  const rng = new Rng(seed)
  for (const kind of kinds) {
    for (let i = 0; i < ROUNDS; i++) {
      const v = kind.gen(rng)
      const r = new Reader(write((w) => kind.put(w, v as never)))
      assert.deepEqual(kind.get(r), v, `${kind.name} ${String(v)} (seed ${seed})`)
      assert.equal(r.remaining, 0)
    }
  }
  // A long mixed sequence crosses the Writer's scratch-buffer boundaries.
  const picks = Array.from({ length: 5000 }, () => rng.pick(kinds))
  const values = picks.map((k) => k.gen(rng))
  const buf = write((w) => picks.forEach((k, i) => k.put(w, values[i] as never)))
  const r = new Reader(buf)
  picks.forEach((k, i) => assert.deepEqual(k.get(r), values[i], `${k.name} at ${i} (seed ${seed})`))
  assert.equal(r.remaining, 0)
})

test('strings round-trip as UTF-8 of the stated byte length', { timeout: 30000 }, () => {
  const rng = new Rng(seed + 1)
  for (let i = 0; i < ROUNDS; i++) {
    const s = randomString(rng, 20)
    const encoded = Buffer.from(s, 'utf8')
    const r = new Reader(write((w) => w.utf8(s)))
    assert.equal(r.remaining, encoded.length)
    assert.equal(r.utf8(encoded.length), s)
  }
})

test('unsigned varints have the exact encodings at the edges', { timeout: 30000 }, () => {
  const cases: [number, string][] = [
    [0, '00'],
    [1, '01'],
    [127, '7f'],
    [128, '8001'],
    [16383, 'ff7f'],
    [16384, '808001'],
    [2 ** 31 - 1, 'ffffffff07'],
    [2 ** 32 - 1, 'ffffffff0f'],
  ]
  for (const [value, bytes] of cases) {
    assert.deepEqual(write((w) => w.uvarint(value)), hex(bytes), `uvarint ${value}`)
    assert.equal(new Reader(hex(bytes)).uvarint(), value)
  }
})

test('zigzag varints have the exact encodings at the edges', { timeout: 30000 }, () => {
  const cases: [number, string][] = [
    [0, '00'],
    [-1, '01'],
    [1, '02'],
    [63, '7e'],
    [-64, '7f'],
    [64, '8001'],
    [-65, '8101'],
    [2 ** 31 - 1, 'feffffff0f'],
    [-(2 ** 31), 'ffffffff0f'],
  ]
  for (const [value, bytes] of cases) {
    assert.deepEqual(write((w) => w.varint(value)), hex(bytes), `varint ${value}`)
    assert.equal(new Reader(hex(bytes)).varint(), value)
  }
})

test('varlongs and int64s carry the full signed 64-bit range', { timeout: 30000 }, () => {
  const max = 2n ** 63n - 1n
  const min = -(2n ** 63n)
  const varlongs: [bigint, string][] = [
    [0n, '00'],
    [-1n, '01'],
    [63n, '7e'],
    [-64n, '7f'],
    [64n, '8001'],
    [2n ** 31n, '8080808010'],
    [max, 'feffffffffffffffff01'],
    [min, 'ffffffffffffffffff01'],
  ]
  for (const [value, bytes] of varlongs) {
    assert.deepEqual(write((w) => w.varlong(value)), hex(bytes), `varlong ${value}`)
    assert.equal(new Reader(hex(bytes)).varlong(), value)
  }
  const int64s: [bigint, string][] = [
    [max, '7fffffffffffffff'],
    [min, '8000000000000000'],
    [-1n, 'ffffffffffffffff'],
    [0n, '0000000000000000'],
  ]
  for (const [value, bytes] of int64s) {
    assert.deepEqual(write((w) => w.int64(value)), hex(bytes))
    assert.equal(new Reader(hex(bytes)).int64(), value)
  }
})

test('a uuid is 16 raw bytes read back in canonical lower-case form', { timeout: 30000 }, () => {
  const id = '0123ABCD-4567-89ef-0011-2233445566FF'
  const bytes = write((w) => w.uuid(id))
  assert.deepEqual(bytes, hex('0123abcd456789ef00112233445566ff'))
  assert.equal(new Reader(bytes).uuid(), id.toLowerCase())
  assert.equal(new Reader(Buffer.alloc(16)).uuid(), '00000000-0000-0000-0000-000000000000')
})

test('every kind of short read throws TIDEWAY_ERR_DECODE and nothing else', { timeout: 30000 }, () => {
  const fixed: [string, number, (r: Reader) => unknown][] = [
    ['int8', 1, (r) => r.int8()],
    ['uint8', 1, (r) => r.uint8()],
    ['bool', 1, (r) => r.bool()],
    ['int16', 2, (r) => r.int16()],
    ['uint16', 2, (r) => r.uint16()],
    ['int32', 4, (r) => r.int32()],
    ['uint32', 4, (r) => r.uint32()],
    ['int64', 8, (r) => r.int64()],
    ['float64', 8, (r) => r.float64()],
    ['uuid', 16, (r) => r.uuid()],
    ['bytes(5)', 5, (r) => r.bytes(5)],
    ['utf8(5)', 5, (r) => r.utf8(5)],
    ['sub(5)', 5, (r) => r.sub(5, 'sub')],
    ['skip(5)', 5, (r) => r.skip(5, 'skip')],
  ]
  for (const [name, size, read] of fixed) {
    for (let have = 0; have < size; have++) {
      // The reader's window ends early inside a larger buffer: the bytes beyond must stay unread.
      const backing = Buffer.alloc(size + 8, 0x41)
      throwsDecode(() => read(new Reader(backing, 2, 2 + have)), `${name} with ${have} of ${size} bytes`)
    }
    assert.doesNotThrow(() => read(new Reader(Buffer.alloc(size))), `${name} with enough bytes`)
  }
  // Variable-length reads cut at every byte.
  const variable: [string, string, (r: Reader) => unknown][] = [
    ['uvarint', 'ffffffff0f', (r) => r.uvarint()],
    ['varint', 'feffffff0f', (r) => r.varint()],
    ['varlong', 'feffffffffffffffff01', (r) => r.varlong()],
  ]
  for (const [name, full, read] of variable) {
    const bytes = hex(full)
    for (let have = 0; have < bytes.length; have++) {
      throwsDecode(() => read(new Reader(bytes, 0, have)), `${name} cut to ${have} bytes`)
    }
  }
  // Negative sizes (a length field of -2 reaching a read) are refused, not treated as zero.
  throwsDecode(() => new Reader(Buffer.alloc(8)).bytes(-2), 'bytes(-2)')
  throwsDecode(() => new Reader(Buffer.alloc(8)).utf8(-1), 'utf8(-1)')
  throwsDecode(() => new Reader(Buffer.alloc(8)).skip(-1, 'skip'), 'skip(-1)')
  throwsDecode(() => new Reader(Buffer.alloc(8)).sub(-1, 'sub'), 'sub(-1)')
})

test('a sub-reader cannot read past its window even when its parent could', { timeout: 30000 }, () => {
  const parent = new Reader(hex('0102030405060708'))
  const child = parent.sub(3, 'window')
  assert.equal(parent.pos, 3)
  assert.equal(child.uint16(), 0x0102)
  throwsDecode(() => child.uint16(), 'child int16 across its end')
  assert.equal(child.uint8(), 0x03)
})

test('over-long varints are rejected', { timeout: 30000 }, () => {
  throwsDecode(() => new Reader(hex('808080808000')).uvarint(), 'uvarint with 6 bytes')
  throwsDecode(() => new Reader(hex('ffffffff1f')).uvarint(), 'uvarint above 2^32-1')
  throwsDecode(() => new Reader(hex('ffffffff7f')).varint(), 'varint above 32 bits')
  throwsDecode(() => new Reader(hex('8080808080808080808000')).varlong(), 'varlong with 11 bytes')
  throwsDecode(() => new Reader(hex('ffffffffffffffffff02')).varlong(), 'varlong above 64 bits')
  // The longest legal forms still read.
  assert.equal(new Reader(hex('ffffffff0f')).uvarint(), 2 ** 32 - 1)
  assert.equal(new Reader(hex('ffffffffffffffffff01')).varlong(), -(2n ** 63n))
})

test('checkedCount rejects a count the bytes left could not hold', { timeout: 30000 }, () => {
  const r = new Reader(Buffer.alloc(20))
  assert.equal(r.checkedCount(5, 4, 'array'), 5)
  assert.equal(r.checkedCount(20, 1, 'array'), 20)
  assert.equal(r.checkedCount(20, 0, 'array'), 20) // zero-size elements are still counted at one byte
  throwsDecode(() => r.checkedCount(6, 4, 'array'), '6 x 4 in 20 bytes')
  throwsDecode(() => r.checkedCount(21, 0, 'array'), '21 x 0 in 20 bytes')
  throwsDecode(() => r.checkedCount(2 ** 31 - 1, 4, 'array'), '2^31-1 elements')
  throwsDecode(() => r.checkedCount(-1, 4, 'array'), 'negative count')
  assert.equal(r.pos, 0)
})

test('an array claiming 2^31-1 elements in a 20-byte frame fails before reading any element', { timeout: 30000 }, () => {
  const Ints = api({ key: 9997, name: 'Ints', versions: [0, 1], flexibleFrom: 1, request: struct({ xs: array(int32) }), response: struct({}) }) as unknown as Api
  const classic = Buffer.concat([hex('7fffffff'), Buffer.alloc(16, 0x01)])
  const compact = Buffer.concat([hex('ffffffff07'), Buffer.alloc(15, 0x01)])
  for (const [version, frame, lengthBytes] of [[0, classic, 4], [1, compact, 5]] as const) {
    const r = new Reader(frame)
    throwsDecode(() => Ints.decodeRequest(version, r), `v${version}`)
    // The reader stopped right after the count: no element was read, nothing was allocated for them.
    assert.equal(r.pos, lengthBytes)
  }
})

test('the Writer gives the same bytes whether a payload is copied or referenced', { timeout: 30000 }, () => {
  const rng = new Rng(seed + 2)
  for (const size of [0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 20000]) {
    const payload = rng.bytes(size)
    const prefix = rng.bytes(rng.int(0, 9000))
    const expected = Buffer.concat([hex('7fff'), prefix, payload, hex('0102030405')])
    for (const input of [payload, new Uint8Array(payload)]) {
      const w = new Writer(64)
      w.int16(0x7fff).raw(prefix).raw(input).int32(0x01020304).int8(5)
      assert.equal(w.length, expected.length)
      const chunks = w.chunks()
      assert.deepEqual(Buffer.concat(chunks), expected, `payload ${size}`)
      const referenced = chunks.some((c) => c.buffer === input.buffer && c.byteOffset === input.byteOffset)
      assert.equal(referenced, size >= 4096, `payload of ${size} bytes referenced: ${referenced}`)
    }
  }
})

test('the Writer copies small payloads, so later changes to the caller\'s buffer do not leak in', { timeout: 30000 }, () => {
  const small = Buffer.from('abc')
  const w = new Writer()
  w.raw(small)
  small[0] = 0x7a
  assert.equal(w.toBuffer().toString(), 'abc')
})
