// Splits a byte stream into Kafka frames: a 4-byte big-endian size, then that many bytes.
// Pure and transport-free: it is fed arbitrary chunks and returns whole frames. The declared
// size is checked before anything is buffered for it, so a client claiming 2 GiB (or sending
// "GET " = 1195725856 to the Kafka port) costs nothing and is refused at once.

import { TidewayError } from '../errors.ts'

export class FrameSplitter {
  readonly maxFrameBytes: number
  #chunks: Buffer[] = []
  #buffered = 0
  #expected = -1 // body size of the frame being assembled, -1 while the size is unread

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes
  }

  /** Bytes received but not yet returned as part of a frame. */
  get buffered(): number {
    return this.#buffered
  }

  /** The declared body size of the frame being assembled, or -1 while its size is unread. */
  get pendingFrameSize(): number {
    return this.#expected
  }

  /** True while a frame has begun to arrive (its size prefix, or part of it) and is not complete. */
  get midFrame(): boolean {
    return this.#buffered > 0 || this.#expected >= 0
  }

  /**
   * Adds a chunk and returns the frames it completes (bodies without the size prefix).
   * Throws TidewayError TIDEWAY_ERR_FRAME_TOO_LARGE or TIDEWAY_ERR_DECODE for a bad size; the
   * stream cannot be resynchronised after that, so the caller closes the connection.
   */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk)
      this.#buffered += chunk.length
    }
    const frames: Buffer[] = []
    for (;;) {
      if (this.#expected < 0) {
        if (this.#buffered < 4) break
        const size = this.#take(4).readInt32BE(0)
        if (size < 0) throw new TidewayError('TIDEWAY_ERR_DECODE', `negative frame size ${size}`)
        if (size > this.maxFrameBytes) {
          throw new TidewayError('TIDEWAY_ERR_FRAME_TOO_LARGE', `declared ${size} bytes, limit ${this.maxFrameBytes}`)
        }
        this.#expected = size
      }
      if (this.#buffered < this.#expected) break
      frames.push(this.#take(this.#expected))
      this.#expected = -1
    }
    return frames
  }

  /** Removes `n` buffered bytes; zero-copy when they lie in one chunk. */
  #take(n: number): Buffer {
    this.#buffered -= n
    const first = this.#chunks[0]
    if (first && first.length >= n) {
      const out = first.subarray(0, n)
      if (first.length === n) this.#chunks.shift()
      else this.#chunks[0] = first.subarray(n)
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    let consumed = 0 // whole chunks used up, removed with one splice (shift() per chunk is O(n^2))
    while (filled < n) {
      const chunk = this.#chunks[consumed]!
      const used = Math.min(chunk.length, n - filled)
      chunk.copy(out, filled, 0, used)
      filled += used
      if (used === chunk.length) consumed++
      else this.#chunks[consumed] = chunk.subarray(used)
    }
    this.#chunks.splice(0, consumed)
    return out
  }
}
