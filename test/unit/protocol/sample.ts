// Seeded randomness and a generator of valid messages for any API description and version.
// The generator walks the description the way the compiler does: a field absent from the
// version (or tagged, in a non-flexible version) takes its default, since that is what the
// decoder will return; null appears only where the version allows it.

import { defaultOf, type Api, type Field } from '../../../src/protocol/schema.ts'

type AnyField = Field<unknown, unknown, boolean>

/** The seed from env SEED, else the fixed default, printed so a failure can be replayed. */
export function seedFor(name: string, fallback: number): number {
  const fromEnv = process.env.SEED
  const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) >>> 0 : fallback
  process.stdout.write(`# ${name}: seed ${seed} (replay with SEED=${seed})\n`)
  return seed
}

/** mulberry32: small, fast and good enough to pick test inputs. */
export class Rng {
  #state: number
  constructor(seed: number) {
    this.#state = seed >>> 0
  }
  uint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.uint32() / 2 ** 32
  }
  /** Uniform integer in [min, max] (inclusive; |max - min| < 2^32). */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1))
  }
  chance(p: number): boolean {
    return this.float() < p
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = this.uint32() & 0xff
    return b
  }
  int64(): bigint {
    return BigInt.asIntN(64, (BigInt(this.uint32()) << 32n) | BigInt(this.uint32()))
  }
  /** Integers biased towards the edges, where encodings change shape. */
  edgy(min: number, max: number, edges: readonly number[]): number {
    return this.chance(0.3) ? this.pick(edges.filter((e) => e >= min && e <= max)) : this.int(min, max)
  }
}

const STRING_PIECES = ['a', 'topic', '-', '.', '_', '0', 'Z', 'é', '日本', '🦀', ' ', 'ß']

export function randomString(rng: Rng, maxPieces = 6): string {
  let s = ''
  const n = rng.int(0, maxPieces)
  for (let i = 0; i < n; i++) s += rng.pick(STRING_PIECES)
  return s
}

export function randomUuid(rng: Rng): string {
  const hex = rng.bytes(16).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export interface SampleOptions {
  /** Probability that a nullable field is null. */
  readonly nullChance: number
  /** Probability that a tagged field keeps its default (and so is not written). */
  readonly tagDefaultChance: number
  readonly maxArray: number
  /** Probability that a records/bytes value is large enough to be referenced by the Writer. */
  readonly largePayloadChance: number
}

const defaults: SampleOptions = { nullChance: 0.2, tagDefaultChance: 0.4, maxArray: 3, largePayloadChance: 0.02 }

const INT_EDGES = [0, 1, -1, 63, -64, 64, 127, 128, -128, 255, 32767, -32768, 65535, 2147483647, -2147483648, 4294967295]

function present(f: AnyField, version: number, flexible: boolean): boolean {
  const o = f.options
  return version >= o.since && version <= o.until && (o.tag === undefined || flexible)
}

/** A random value of `f` valid at `version`, shaped as the decoder returns it. */
export function sampleField(
  f: AnyField,
  version: number,
  flexible: boolean,
  rng: Rng,
  opts: SampleOptions = defaults,
  depth = 0,
): unknown {
  const o = f.options
  const nullable = version >= o.nullableFrom || f.type.kind === 'records'
  if (nullable && rng.chance(opts.nullChance)) return null
  const t = f.type
  switch (t.kind) {
    case 'int8':
      return rng.edgy(-128, 127, INT_EDGES)
    case 'int16':
      return rng.edgy(-32768, 32767, INT_EDGES)
    case 'int32':
      return rng.edgy(-2147483648, 2147483647, INT_EDGES)
    case 'uint16':
      return rng.edgy(0, 65535, INT_EDGES)
    case 'uint32':
      return rng.edgy(0, 4294967295, INT_EDGES)
    case 'int64':
      return rng.chance(0.3) ? rng.pick([0n, -1n, 2n ** 63n - 1n, -(2n ** 63n)]) : rng.int64()
    case 'float64':
      return rng.chance(0.2) ? rng.pick([0, -0, 1.5, Number.MAX_VALUE, Infinity]) : (rng.float() - 0.5) * 1e12
    case 'bool':
      return rng.chance(0.5)
    case 'uuid':
      return randomUuid(rng)
    case 'string':
      return randomString(rng)
    case 'bytes':
    case 'records':
      return rng.bytes(rng.chance(opts.largePayloadChance) ? rng.int(4000, 9000) : rng.int(0, 24))
    case 'array': {
      const n = depth > 4 ? 0 : rng.int(0, opts.maxArray)
      const out: unknown[] = []
      for (let i = 0; i < n; i++) out.push(sampleField(t.items, version, flexible, rng, opts, depth + 1))
      return out
    }
    case 'struct':
      return sampleStruct(t.fields, version, flexible, rng, opts, depth + 1)
  }
}

function sampleStruct(
  fields: Readonly<Record<string, AnyField>>,
  version: number,
  flexible: boolean,
  rng: Rng,
  opts: SampleOptions,
  depth: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, f] of Object.entries(fields)) {
    if (!present(f, version, flexible)) out[name] = defaultOf(f)
    else if (f.options.tag !== undefined && rng.chance(opts.tagDefaultChance)) out[name] = defaultOf(f)
    else out[name] = sampleField(f, version, flexible, rng, opts, depth)
  }
  return out
}

export function sampleMessage(
  api: Api,
  version: number,
  side: 'request' | 'response',
  rng: Rng,
  opts: SampleOptions = defaults,
): Record<string, unknown> {
  const root = (side === 'request' ? api.request : api.response) as AnyField
  if (root.type.kind !== 'struct') throw new TypeError('not a struct')
  return sampleStruct(root.type.fields, version, api.isFlexible(version), rng, opts, 0)
}

export function servedVersions(api: Api): number[] {
  const out: number[] = []
  for (let v = api.versions[0]; v <= api.versions[1]; v++) out.push(v)
  return out
}
