// Decoders under hostile input (style.md principle 6: "Hostile input is ordinary input").
//
// Invariants, checked for every case below:
//   1. decodeRequest/decodeResponse (and readRequestHeader) either return a value or throw a
//      TidewayError with code TIDEWAY_ERR_DECODE: never a RangeError, TypeError or anything else.
//   2. They never read past the frame: the frame sits inside a larger buffer with guard bytes on
//      both sides, the reader's position ends inside the frame, and every zero-copy Buffer in
//      the result lies within the frame.
//   3. They never allocate for more than the bytes left could hold: while decoding, no
//      `new Array(n)` or Buffer allocation asks for more elements than the frame has bytes
//      (the checkedCount guard), and every decoded array is within the same bound.
//   4. Whatever decodes can be encoded again at the same version (we can always echo what we
//      accepted), and that encoding decodes to the same value.
//
// Inputs, for every registered API, served version and side: random byte strings, and
// mutations of valid encodings of generated samples (bit flips, truncations, inserted and
// deleted bytes, and every integer/length field the decoder reads overwritten with extreme
// values such as -1, -2, 0x7fffffff or an oversized uvarint). About 20k cases in all, from a
// fixed seed printed at the start (env SEED replays another).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { allApis } from '../../../src/protocol/apis/index.ts'
import { readRequestHeader } from '../../../src/protocol/headers.ts'
import { Reader, Writer } from '../../../src/protocol/primitives.ts'
import type { Api } from '../../../src/protocol/schema.ts'
import { TidewayError } from '../../../src/errors.ts'
import { mutate, RecordingReader } from './mutate.ts'
import { totalsLine } from '../../helpers/history.ts'
import { Rng, sampleMessage, seedFor, servedVersions } from './sample.ts'

const seed = seedFor('decoder-fuzz.test.ts', 0x5eed_0003)
const TOTAL_CASES = Number(process.env.FUZZ_CASES ?? 20000)
const GUARD = 16

type Side = 'request' | 'response'

function encode(api: Api, side: Side, version: number, value: unknown): Buffer {
  const w = new Writer()
  if (side === 'request') api.encodeRequest(version, w, value as never)
  else api.encodeResponse(version, w, value as never)
  return w.toBuffer()
}

function decode(api: Api, side: Side, version: number, r: Reader): unknown {
  return side === 'request' ? api.decodeRequest(version, r) : api.decodeResponse(version, r)
}

/**
 * Runs `fn` with the Array constructor and Buffer's allocators replaced by spies recording the
 * largest size asked for (V8 makes a huge sparse `new Array(n)` cheap, so a missing count
 * guard would not show up as an exception or in memory use: it has to be observed here).
 */
function withAllocationSpy<T>(fn: () => T): { result: T; largest: number } {
  const g = globalThis as { Array: ArrayConstructor }
  const realArray = g.Array
  const { alloc, allocUnsafe, allocUnsafeSlow } = Buffer
  let largest = 0
  const note = (n: unknown) => {
    if (typeof n === 'number' && n > largest) largest = n
  }
  g.Array = new Proxy(realArray, {
    construct(target, args, newTarget) {
      if (args.length === 1) note(args[0])
      return Reflect.construct(target, args, newTarget)
    },
    apply(target, self, args) {
      if (args.length === 1) note(args[0])
      return Reflect.apply(target, self, args)
    },
  })
  Buffer.alloc = ((size: number, ...rest: never[]) => (note(size), alloc(size, ...rest))) as typeof Buffer.alloc
  Buffer.allocUnsafe = ((size: number) => (note(size), allocUnsafe(size))) as typeof Buffer.allocUnsafe
  Buffer.allocUnsafeSlow = ((size: number) => (note(size), allocUnsafeSlow(size))) as typeof Buffer.allocUnsafeSlow
  try {
    return { result: fn(), largest }
  } finally {
    g.Array = realArray
    Object.assign(Buffer, { alloc, allocUnsafe, allocUnsafeSlow })
  }
}

/** Walks a decoded value checking invariants 2 and 3 for its Buffers and arrays. */
function checkValue(value: unknown, backing: Buffer, start: number, end: number, where: string): void {
  const frameBytes = end - start
  const visit = (v: unknown, path: string): void => {
    if (v === null || typeof v !== 'object') return
    if (Buffer.isBuffer(v)) {
      assert.equal(v.buffer, backing.buffer, `${where} ${path}: a decoded Buffer must be a view of the frame`)
      const from = v.byteOffset - backing.byteOffset
      assert.ok(from >= start && from + v.length <= end, `${where} ${path}: Buffer [${from}, ${from + v.length}) outside the frame [${start}, ${end})`)
      return
    }
    if (Array.isArray(v)) {
      assert.ok(v.length <= frameBytes, `${where} ${path}: ${v.length} elements from a ${frameBytes}-byte frame`)
      v.forEach((item, i) => visit(item, `${path}/${i}`))
      return
    }
    for (const [k, item] of Object.entries(v)) visit(item, `${path}/${k}`)
  }
  visit(value, '')
}

interface Tally {
  cases: number
  decoded: number
  rejected: number
}

/** Runs one case through every invariant. */
function runCase(api: Api, side: Side, version: number, frame: Buffer, where: string, tally: Tally): void {
  const backing = Buffer.concat([Buffer.alloc(GUARD, 0x01), frame, Buffer.alloc(GUARD, 0x01)])
  const start = GUARD
  const end = GUARD + frame.length
  const r = new Reader(backing, start, end)
  tally.cases++
  let value: unknown
  let largest = 0
  try {
    const spied = withAllocationSpy(() => {
      try {
        return { value: decode(api, side, version, r), error: undefined }
      } catch (error) {
        return { value: undefined, error }
      }
    })
    largest = spied.largest
    assert.ok(largest <= frame.length, `${where}: allocated ${largest} elements for a ${frame.length}-byte frame (invariant 3)`)
    if (spied.result.error !== undefined) throw spied.result.error
    value = spied.result.value
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err
    if (!(err instanceof TidewayError) || err.code !== 'TIDEWAY_ERR_DECODE') {
      assert.fail(`${where}: threw ${err instanceof Error ? `${err.name} ${err.message}` : String(err)} (invariant 1)\n${frame.toString('hex')}`)
    }
    assert.ok(r.pos <= end, `${where}: reader at ${r.pos} past the frame end ${end} (invariant 2)`)
    tally.rejected++
    return
  }
  tally.decoded++
  assert.ok(r.pos >= start && r.pos <= end, `${where}: reader at ${r.pos} outside the frame (invariant 2)`)
  checkValue(value, backing, start, end, where)
  let again: Buffer
  try {
    again = encode(api, side, version, value)
  } catch (err) {
    assert.fail(`${where}: a decoded value failed to encode: ${String(err)} (invariant 4)\n${frame.toString('hex')}`)
  }
  const reread = decode(api, side, version, new Reader(again))
  assert.deepEqual(reread, normaliseStrings(value), `${where}: the re-encoded value decodes differently (invariant 4)`)
}

// Invalid UTF-8 decodes to U+FFFD, which then encodes as itself: compare after that round trip.
function normaliseStrings(v: unknown): unknown {
  if (typeof v === 'string') return Buffer.from(v, 'utf8').toString('utf8')
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return v
  if (Array.isArray(v)) return v.map(normaliseStrings)
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normaliseStrings(x)]))
}

const codecs = allApis.flatMap((api) => servedVersions(api).flatMap((version) => (['request', 'response'] as const).map((side) => ({ api, version, side }))))
const perCodec = Math.ceil(TOTAL_CASES / codecs.length)
const grand: Tally = { cases: 0, decoded: 0, rejected: 0 }

for (const api of allApis) {
  test(`${api.name} decoders return a value or TIDEWAY_ERR_DECODE for random and mutated frames, within the frame`, { timeout: 30000 }, () => {
    const rng = new Rng(seed ^ Math.imul(api.key + 1, 0x85ebca6b))
    const tally: Tally = { cases: 0, decoded: 0, rejected: 0 }
    for (const { version, side } of codecs.filter((c) => c.api === api)) {
      const randomCases = Math.floor(perCodec / 5)
      for (let i = 0; i < randomCases; i++) {
        const frame = rng.bytes(rng.chance(0.5) ? rng.int(0, 16) : rng.int(17, 200))
        runCase(api, side, version, frame, `${api.name} v${version} ${side} random #${i} (seed ${seed})`, tally)
      }
      for (let i = randomCases; i < perCodec; i++) {
        const valid = encode(api, side, version, sampleMessage(api, version, side, rng, {
          nullChance: 0.2,
          tagDefaultChance: 0.5,
          maxArray: 3,
          largePayloadChance: 0,
        }))
        const recorder = new RecordingReader(valid)
        decode(api, side, version, recorder)
        const { bytes, how } = mutate(rng, valid, recorder.fields)
        runCase(api, side, version, bytes, `${api.name} v${version} ${side} mutation #${i} (${how}, seed ${seed})`, tally)
      }
    }
    grand.cases += tally.cases
    grand.decoded += tally.decoded
    grand.rejected += tally.rejected
    assert.ok(tally.rejected > 0 && tally.decoded > 0, `${api.name}: the cases should both pass and fail decoding`)
  })
}

test('request headers return a value or TIDEWAY_ERR_DECODE for random and truncated bytes', { timeout: 30000 }, () => {
  const rng = new Rng(seed ^ 0x1234567)
  for (let i = 0; i < 2000; i++) {
    const prefix = Buffer.from('0001000c00000007', 'hex')
    const frame = rng.chance(0.5) ? rng.bytes(rng.int(0, 24)) : Buffer.concat([prefix, rng.bytes(rng.int(0, 16))])
    const backing = Buffer.concat([frame, Buffer.alloc(GUARD, 0x01)])
    const r = new Reader(backing, 0, frame.length)
    try {
      readRequestHeader(r, rng.chance(0.5))
    } catch (err) {
      assert.ok(err instanceof TidewayError && err.code === 'TIDEWAY_ERR_DECODE', `header ${frame.toString('hex')}: ${String(err)}`)
    }
    assert.ok(r.pos <= frame.length, `header ${frame.toString('hex')}: read past the frame`)
  }
})

test('the fuzz run covered the planned number of cases', { timeout: 30000 }, () => {
  process.stdout.write(`# decoder-fuzz: ${grand.cases} cases over ${codecs.length} codecs, ${grand.decoded} decoded, ${grand.rejected} rejected\n`)
  assert.ok(grand.cases >= TOTAL_CASES, `ran ${grand.cases} cases`)
  process.stdout.write(`# ${totalsLine({ fuzzedInputs: grand.cases })}\n`)
})
