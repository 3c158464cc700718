import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isTidewayError } from '../../../src/errors.ts'
import { FrameSplitter } from '../../../src/protocol/framing.ts'

// Invariant: however the stream is cut into chunks, the same frames come out, in order.
function frame(body: Buffer): Buffer {
  const size = Buffer.alloc(4)
  size.writeInt32BE(body.length)
  return Buffer.concat([size, body])
}

function seeded(seed: number) {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const bodies = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello world'), Buffer.alloc(70_000, 7), Buffer.from([1, 2, 3])]
const stream = Buffer.concat(bodies.map(frame))

test('frames fed one byte at a time come out whole and in order', () => {
  const splitter = new FrameSplitter(1 << 20)
  const out: Buffer[] = []
  for (let i = 0; i < stream.length; i++) out.push(...splitter.push(stream.subarray(i, i + 1)))
  assert.deepEqual(out, bodies)
  assert.equal(splitter.buffered, 0)
})

test('frames split at random points come out whole and in order', () => {
  const seed = Number(process.env.SEED ?? 42)
  const random = seeded(seed)
  for (let round = 0; round < 200; round++) {
    const splitter = new FrameSplitter(1 << 20)
    const out: Buffer[] = []
    let at = 0
    while (at < stream.length) {
      const n = 1 + Math.floor(random() * 9000)
      out.push(...splitter.push(stream.subarray(at, at + n)))
      at += n
    }
    assert.deepEqual(out, bodies, `seed ${seed} round ${round}`)
  }
})

test('a declared size above the limit is refused before any of it is buffered', () => {
  const splitter = new FrameSplitter(1024)
  const header = Buffer.alloc(4)
  header.writeInt32BE(0x7fffffff) // 2 GiB
  assert.throws(() => splitter.push(header), (err) => isTidewayError(err, 'TIDEWAY_ERR_FRAME_TOO_LARGE'))
})

test('"GET " sent to the Kafka port is refused as an oversized frame', () => {
  const splitter = new FrameSplitter(100 * 1024 * 1024)
  assert.throws(() => splitter.push(Buffer.from('GET / HTTP/1.1\r\n')), (err) => isTidewayError(err, 'TIDEWAY_ERR_FRAME_TOO_LARGE'))
})

test('a negative declared size is malformed input', () => {
  const splitter = new FrameSplitter(1024)
  assert.throws(() => splitter.push(Buffer.from([0xff, 0xff, 0xff, 0xfe])), (err) => isTidewayError(err, 'TIDEWAY_ERR_DECODE'))
})

test('a truncated frame stays buffered and yields nothing', () => {
  const splitter = new FrameSplitter(1024)
  assert.deepEqual(splitter.push(frame(Buffer.from('complete')).subarray(0, 7)), [])
  assert.equal(splitter.buffered, 7 - 4)
})

test('a frame has begun once its size prefix has arrived, even with no body byte yet', () => {
  const splitter = new FrameSplitter(1024)
  assert.equal(splitter.midFrame, false)
  splitter.push(Buffer.from([0, 0]))
  assert.equal(splitter.midFrame, true, 'half a size prefix')
  splitter.push(Buffer.from([0, 3]))
  assert.equal(splitter.buffered, 0)
  assert.equal(splitter.midFrame, true, 'the size, no body')
  assert.equal(splitter.pendingFrameSize, 3)
  assert.equal(splitter.push(Buffer.from('abc')).length, 1)
  assert.equal(splitter.midFrame, false)
  assert.equal(splitter.pendingFrameSize, -1)
})
