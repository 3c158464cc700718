// Kafka wire primitives: a bounds-checked Reader over one frame and a Writer that collects
// output as a list of buffers (large payloads such as record batches are referenced, not
// copied, so a fetch response is written with one writev and never concatenated).
//
// Rules (protocol guide, "Protocol Primitive Types"; KIP-482 for the unsigned varints):
// - every read checks the bytes left and throws only TidewayError(TIDEWAY_ERR_DECODE);
// - a length or count is checked against the bytes left *before* anything is allocated, so a
//   frame that claims 2^31 elements costs nothing (CVE-2022-34917 was exactly this bug);
// - UNSIGNED_VARINT is at most 5 bytes (32 bits); VARINT/VARLONG are zigzag encoded.

import { TidewayError } from '../errors.ts'

export function decodeError(detail: string): TidewayError {
  return new TidewayError('TIDEWAY_ERR_DECODE', detail)
}

const textDecoder = new TextDecoder('utf-8', { fatal: false })

/** The longest protocol string: an int16 length (Kafka holds compact strings to it too). */
export const MAX_STRING_BYTES = 0x7fff

export class Reader {
  readonly buf: Buffer
  pos: number
  readonly end: number

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  get remaining(): number {
    return this.end - this.pos
  }

  /** Throws unless `n` more bytes are available. */
  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw decodeError(`${what}: needs ${n} bytes at offset ${this.pos}, ${this.end - this.pos} left`)
    }
  }

  int8(): number {
    this.need(1, 'int8')
    return this.buf.readInt8(this.pos++)
  }
  uint8(): number {
    this.need(1, 'uint8')
    return this.buf[this.pos++]!
  }
  bool(): boolean {
    return this.int8() !== 0
  }
  int16(): number {
    this.need(2, 'int16')
    const v = this.buf.readInt16BE(this.pos)
    this.pos += 2
    return v
  }
  uint16(): number {
    this.need(2, 'uint16')
    const v = this.buf.readUInt16BE(this.pos)
    this.pos += 2
    return v
  }
  int32(): number {
    this.need(4, 'int32')
    const v = this.buf.readInt32BE(this.pos)
    this.pos += 4
    return v
  }
  uint32(): number {
    this.need(4, 'uint32')
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }
  int64(): bigint {
    this.need(8, 'int64')
    const v = this.buf.readBigInt64BE(this.pos)
    this.pos += 8
    return v
  }
  float64(): number {
    this.need(8, 'float64')
    const v = this.buf.readDoubleBE(this.pos)
    this.pos += 8
    return v
  }

  uvarint(): number {
    let result = 0
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.uint8()
      result += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) {
        if (result > 0xffffffff) throw decodeError('unsigned varint exceeds 32 bits')
        return result
      }
    }
    throw decodeError('unsigned varint longer than 5 bytes')
  }

  varint(): number {
    const zigzag = this.uvarint()
    return zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2
  }

  varlong(): bigint {
    let result = 0n
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = this.uint8()
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) {
        if (result >= 1n << 64n) throw decodeError('varlong exceeds 64 bits')
        return (result >> 1n) ^ -(result & 1n)
      }
    }
    throw decodeError('varlong longer than 10 bytes')
  }

  uuid(): string {
    this.need(16, 'uuid')
    const hex = this.buf.toString('hex', this.pos, this.pos + 16)
    this.pos += 16
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }

  /** A zero-copy view of the next `n` bytes. */
  bytes(n: number, what = 'bytes'): Buffer {
    this.need(n, what)
    const view = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return view
  }

  /**
   * A string of `n` UTF-8 bytes. Bytes that are not UTF-8 decode to U+FFFD, as in Kafka, and that
   * takes 3 bytes to write back: a string that would then no longer fit a protocol string is
   * refused, so whatever is accepted can be answered with (a name echoed, a client id in a
   * member id).
   */
  utf8(n: number): string {
    this.need(n, 'string')
    const s = textDecoder.decode(this.buf.subarray(this.pos, this.pos + n))
    if (n > MAX_STRING_BYTES / 3 && Buffer.byteLength(s, 'utf8') > MAX_STRING_BYTES) {
      throw decodeError(`string at offset ${this.pos}: ${n} bytes that re-encode to more than ${MAX_STRING_BYTES}`)
    }
    this.pos += n
    return s
  }

  /**
   * A count or length checked against what is left: a claim of more elements than the
   * remaining bytes could hold (at `minElementSize` each) is malformed input.
   */
  checkedCount(count: number, minElementSize: number, what: string): number {
    if (count < 0) throw decodeError(`${what}: negative length ${count}`)
    if (count * Math.max(minElementSize, 1) > this.remaining) {
      throw decodeError(`${what}: length ${count} exceeds the ${this.remaining} bytes left`)
    }
    return count
  }

  /** A reader over the next `n` bytes; the parent skips past them. */
  sub(n: number, what: string): Reader {
    this.need(n, what)
    const child = new Reader(this.buf, this.pos, this.pos + n)
    this.pos += n
    return child
  }

  skip(n: number, what: string): void {
    this.need(n, what)
    this.pos += n
  }
}

const SCRATCH_SIZE = 8 * 1024
/** Payloads at least this large are referenced, not copied, into the output. */
const REFERENCE_THRESHOLD = 4 * 1024

export class Writer {
  #chunks: Buffer[] = []
  #buf: Buffer
  #start = 0 // where the not-yet-chunked part of #buf begins
  #pos = 0
  #flushedLength = 0

  constructor(initialSize = SCRATCH_SIZE) {
    this.#buf = Buffer.allocUnsafe(initialSize)
  }

  get length(): number {
    return this.#flushedLength + (this.#pos - this.#start)
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return
    this.#seal()
    this.#buf = Buffer.allocUnsafe(Math.max(SCRATCH_SIZE, n))
    this.#start = 0
    this.#pos = 0
  }

  #seal(): void {
    if (this.#pos > this.#start) {
      const chunk = this.#buf.subarray(this.#start, this.#pos)
      this.#chunks.push(chunk)
      this.#flushedLength += chunk.length
      this.#start = this.#pos
    }
  }

  int8(v: number): this {
    this.#ensure(1)
    this.#buf.writeInt8(v, this.#pos)
    this.#pos += 1
    return this
  }
  uint8(v: number): this {
    this.#ensure(1)
    this.#buf[this.#pos++] = v
    return this
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0)
  }
  int16(v: number): this {
    this.#ensure(2)
    this.#buf.writeInt16BE(v, this.#pos)
    this.#pos += 2
    return this
  }
  uint16(v: number): this {
    this.#ensure(2)
    this.#buf.writeUInt16BE(v, this.#pos)
    this.#pos += 2
    return this
  }
  int32(v: number): this {
    this.#ensure(4)
    this.#buf.writeInt32BE(v, this.#pos)
    this.#pos += 4
    return this
  }
  uint32(v: number): this {
    this.#ensure(4)
    this.#buf.writeUInt32BE(v, this.#pos)
    this.#pos += 4
    return this
  }
  int64(v: bigint): this {
    this.#ensure(8)
    this.#buf.writeBigInt64BE(v, this.#pos)
    this.#pos += 8
    return this
  }
  float64(v: number): this {
    this.#ensure(8)
    this.#buf.writeDoubleBE(v, this.#pos)
    this.#pos += 8
    return this
  }

  uvarint(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`uvarint out of range: ${v}`)
    this.#ensure(5)
    while (v >= 0x80) {
      this.#buf[this.#pos++] = (v & 0x7f) | 0x80
      v = Math.floor(v / 128)
    }
    this.#buf[this.#pos++] = v
    return this
  }

  varint(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`varint out of range: ${v}`)
    return this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1)
  }

  varlong(v: bigint): this {
    let zigzag = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n))
    this.#ensure(10)
    while (zigzag >= 0x80n) {
      this.#buf[this.#pos++] = Number(zigzag & 0x7fn) | 0x80
      zigzag >>= 7n
    }
    this.#buf[this.#pos++] = Number(zigzag)
    return this
  }

  uuid(v: string): this {
    const hex = v.replaceAll('-', '')
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a UUID: ${v}`)
    return this.raw(Buffer.from(hex, 'hex'))
  }

  /** Appends bytes; large payloads are referenced rather than copied. */
  raw(bytes: Uint8Array): this {
    if (bytes.length >= REFERENCE_THRESHOLD) {
      this.#seal()
      const view = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
      this.#chunks.push(view)
      this.#flushedLength += view.length
      return this
    }
    this.#ensure(bytes.length)
    this.#buf.set(bytes, this.#pos)
    this.#pos += bytes.length
    return this
  }

  utf8(s: string): this {
    return this.raw(Buffer.from(s, 'utf8'))
  }

  /** The output as a list of buffers (for writev). The writer must not be used afterwards. */
  chunks(): Buffer[] {
    this.#seal()
    return this.#chunks
  }

  toBuffer(): Buffer {
    const chunks = this.chunks()
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#flushedLength)
  }
}
