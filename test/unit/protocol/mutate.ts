// Mutations of valid encodings, shared by the in-process decoder fuzzer and the live-broker
// fuzzer: bit flips, truncations, inserted and deleted bytes, and integer/length fields the
// decoder actually read (found by decoding the valid bytes with a RecordingReader) overwritten
// with extreme values such as -1, -2, 0x7fffffff or an oversized uvarint.

import { Reader } from '../../../src/protocol/primitives.ts'
import type { Rng } from './sample.ts'

export interface ReadField {
  at: number
  size: number
  kind: 'int16' | 'int32' | 'uvarint'
}

/** Records where the decoder read each integer, so mutations can target real length fields. */
export class RecordingReader extends Reader {
  readonly fields: ReadField[] = []
  override int16(): number {
    const at = this.pos
    const v = super.int16()
    this.fields.push({ at, size: 2, kind: 'int16' })
    return v
  }
  override int32(): number {
    const at = this.pos
    const v = super.int32()
    this.fields.push({ at, size: 4, kind: 'int32' })
    return v
  }
  override uvarint(): number {
    const at = this.pos
    const v = super.uvarint()
    this.fields.push({ at, size: this.pos - at, kind: 'uvarint' })
    return v
  }
}

const EXTREME_INT16 = ['7fff', '8000', 'ffff', 'fffe', '0000', '0001']
const EXTREME_INT32 = ['7fffffff', '80000000', 'ffffffff', 'fffffffe', '00000000', '00010000']
const EXTREME_UVARINT = ['ffffffff0f', 'ffffffff07', '00', '7f', '8080808080', 'ffffffffff01', '8001']

/** One random mutation of `valid`; `how` describes it for a failure message. */
export function mutate(rng: Rng, valid: Buffer, fields: readonly ReadField[]): { bytes: Buffer; how: string } {
  const op = rng.int(0, 5)
  const b = Buffer.from(valid)
  switch (op) {
    case 0: {
      const flips = rng.int(1, 3)
      for (let i = 0; i < flips && b.length > 0; i++) b[rng.int(0, b.length - 1)]! ^= 1 << rng.int(0, 7)
      return { bytes: b, how: `${flips} bit flips` }
    }
    case 1: {
      const at = rng.int(0, Math.max(0, b.length - 1))
      return { bytes: b.subarray(0, at), how: `truncated to ${at}` }
    }
    case 2: {
      const at = rng.int(0, b.length)
      const extra = rng.bytes(rng.int(1, 4))
      return { bytes: Buffer.concat([b.subarray(0, at), extra, b.subarray(at)]), how: `inserted ${extra.toString('hex')} at ${at}` }
    }
    case 3: {
      const at = rng.int(0, Math.max(0, b.length - 1))
      const n = rng.int(1, 4)
      return { bytes: Buffer.concat([b.subarray(0, at), b.subarray(at + n)]), how: `deleted ${n} at ${at}` }
    }
    default: {
      if (fields.length === 0) return { bytes: b, how: 'unchanged' }
      const f = rng.pick(fields)
      const pool = f.kind === 'int16' ? EXTREME_INT16 : f.kind === 'int32' ? EXTREME_INT32 : EXTREME_UVARINT
      const value = Buffer.from(rng.pick(pool), 'hex')
      return {
        bytes: Buffer.concat([b.subarray(0, f.at), value, b.subarray(f.at + f.size)]),
        how: `${f.kind} at ${f.at} set to ${value.toString('hex')}`,
      }
    }
  }
}
