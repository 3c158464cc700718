// Declarative descriptions of Kafka messages, from which every served version's encoder and
// decoder is derived (no per-version hand-written codecs). A description is TypeScript data:
//
//   const PartitionData = struct({
//     index: int32,
//     records: records.nullable(),
//     logStartOffset: int64.since(5).default(-1n),
//     currentLeader: LeaderIdAndEpoch.since(10).tag(0),
//   })
//
// Object-literal key order is wire order. Each field may carry a version range (`since`,
// `until`), a nullable range, a default, `ignorable()` and a tag (KIP-482 tagged field). The
// decoded type is inferred (`Infer<typeof X>`), and the encoder input type makes optional every
// field that has a default or does not exist in all versions.
//
// Rules kept here, in one place (Kafka's generator enforces the same ones, see FieldSpec.java):
// - in flexible versions strings, bytes and arrays are "compact" (length+1 as UNSIGNED_VARINT,
//   0 = null) and every struct ends with a tagged-field buffer; unknown tags are skipped;
// - a tagged field is written only when it differs from its default;
// - a field absent from a version decodes as its default; encoding a non-default value into a
//   version that lacks the field is an error unless the field is ignorable (then it is dropped).

import { TidewayError } from '../errors.ts'
import { MAX_STRING_BYTES, Reader, Writer, decodeError } from './primitives.ts'

export type VersionRange = readonly [min: number, max: number]

type Scalar = 'int8' | 'int16' | 'int32' | 'int64' | 'uint16' | 'uint32' | 'float64' | 'bool' | 'uuid'

type WireType =
  | { readonly kind: Scalar }
  | { readonly kind: 'string' }
  | { readonly kind: 'bytes' }
  /** A record set: nullable bytes kept as a zero-copy view of the frame. */
  | { readonly kind: 'records' }
  | { readonly kind: 'array'; readonly items: Field<unknown, unknown, boolean> }
  | { readonly kind: 'struct'; readonly fields: Readonly<Record<string, Field<unknown, unknown, boolean>>> }

interface FieldOptions {
  readonly since: number
  readonly until: number
  /** First version in which null is allowed (Infinity: never). */
  readonly nullableFrom: number
  readonly hasDefault: boolean
  readonly defaultValue: unknown
  readonly ignorable: boolean
  readonly tag: number | undefined
  /** Text for people (an error message) that is cut to fit rather than fail the response. */
  readonly clip: boolean
}

const baseOptions: FieldOptions = {
  since: 0,
  until: Number.POSITIVE_INFINITY,
  nullableFrom: Number.POSITIVE_INFINITY,
  hasDefault: false,
  defaultValue: undefined,
  ignorable: false,
  tag: undefined,
  clip: false,
}

/**
 * One field's description. `Out` is the decoded type, `In` what the encoder accepts, and
 * `Optional` whether the encoder input may omit it (phantom type parameters).
 */
export class Field<Out, In, Optional extends boolean> {
  declare readonly __out: Out
  declare readonly __in: In
  declare readonly __optional: Optional
  readonly type: WireType
  readonly options: FieldOptions

  constructor(type: WireType, options: FieldOptions = baseOptions) {
    this.type = type
    this.options = options
  }

  #with(changes: Partial<FieldOptions>): never {
    return new Field(this.type, { ...this.options, ...changes }) as never
  }

  /** The field exists from this version on. */
  since(version: number): Field<Out, In, true> {
    return this.#with({ since: version })
  }
  /** The field exists up to and including this version. */
  until(version: number): Field<Out, In, true> {
    return this.#with({ until: version })
  }
  /** Null is allowed from this version on (default: every version). */
  nullable(fromVersion = 0): Field<Out | null, In | null, Optional> {
    return this.#with({ nullableFrom: fromVersion })
  }
  default(value: In): Field<Out, In, true> {
    return this.#with({ hasDefault: true, defaultValue: value })
  }
  /** May be silently dropped when encoding a version that lacks it. */
  ignorable(): Field<Out, In, Optional> {
    return this.#with({ ignorable: true })
  }
  /**
   * Human-readable text, such as an error message, that may be cut (ending in "…") to fit the
   * 32767 bytes a string may hold, rather than fail the whole response. Messages quote what the
   * request sent, which can itself be that long.
   */
  clipped(): Field<Out, In, Optional> {
    return this.#with({ clip: true })
  }
  /** A KIP-482 tagged field (only ever present in flexible versions). */
  tag(tag: number): Field<Out, In, true> {
    return this.#with({ tag })
  }
}

type AnyField = Field<unknown, unknown, boolean>
type Fields = Readonly<Record<string, AnyField>>

export type Infer<F> = F extends Field<infer Out, unknown, boolean> ? Out : never
export type InferInput<F> = F extends Field<unknown, infer In, boolean> ? In : never

type Simplify<T> = { [K in keyof T]: T[K] } & {}
type RequiredKeys<S extends Fields> = { [K in keyof S]: S[K] extends Field<unknown, unknown, true> ? never : K }[keyof S]
type OptionalKeys<S extends Fields> = Exclude<keyof S, RequiredKeys<S>>

export type StructOut<S extends Fields> = Simplify<{ -readonly [K in keyof S]: Infer<S[K]> }>
export type StructIn<S extends Fields> = Simplify<
  { -readonly [K in RequiredKeys<S>]: InferInput<S[K]> } & { -readonly [K in OptionalKeys<S>]?: InferInput<S[K]> }
>

const scalar = <T>(kind: Scalar) => new Field<T, T, false>({ kind })

export const int8 = scalar<number>('int8')
export const int16 = scalar<number>('int16')
export const int32 = scalar<number>('int32')
export const int64 = scalar<bigint>('int64')
export const uint16 = scalar<number>('uint16')
export const uint32 = scalar<number>('uint32')
export const float64 = scalar<number>('float64')
export const bool = scalar<boolean>('bool')
/** A UUID in its canonical 8-4-4-4-12 hex form. */
export const uuid = scalar<string>('uuid')
export const string = new Field<string, string, false>({ kind: 'string' })
export const bytes = new Field<Buffer, Uint8Array, false>({ kind: 'bytes' })
/** RecordBatch bytes, passed through untouched (nullable on the wire in every version). */
export const records = new Field<Buffer | null, Uint8Array | null, true>(
  { kind: 'records' },
  { ...baseOptions, nullableFrom: 0, hasDefault: true, defaultValue: null },
)

export function array<Out, In>(items: Field<Out, In, boolean>): Field<Out[], In[], false> {
  return new Field({ kind: 'array', items })
}

export function struct<S extends Fields>(fields: S): Field<StructOut<S>, StructIn<S>, false> {
  return new Field({ kind: 'struct', fields })
}

// ---------------------------------------------------------------------------------------------
// Compilation: one decoder and one encoder per (type, version), closures with no per-field
// version checks at run time.

type Decode = (r: Reader) => unknown
type Encode = (w: Writer, value: unknown, path: string) => void

interface Compiled {
  readonly decode: Decode
  readonly encode: Encode
  /** Fewest bytes one value can occupy: bounds array counts before allocating. */
  readonly minSize: number
}

const present = (f: AnyField, version: number) => version >= f.options.since && version <= f.options.until
const nullableAt = (f: AnyField, version: number) => version >= f.options.nullableFrom

const ZERO_UUID = '00000000-0000-0000-0000-000000000000'

/** The value a field takes when a version lacks it or a tagged field is not sent. */
export function defaultOf(f: AnyField): unknown {
  if (f.options.hasDefault) return f.options.defaultValue
  const t = f.type
  switch (t.kind) {
    case 'int64':
      return 0n
    case 'bool':
      return false
    case 'uuid':
      return ZERO_UUID
    case 'string':
      return ''
    case 'bytes':
      return Buffer.alloc(0)
    case 'records':
      return null
    case 'array':
      return []
    case 'struct': {
      const out: Record<string, unknown> = {}
      for (const [name, child] of Object.entries(t.fields)) out[name] = defaultOf(child)
      return out
    }
    default:
      return 0
  }
}

function isDefault(f: AnyField, value: unknown): boolean {
  return value === undefined || deepEqual(value, defaultOf(f))
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  if (Array.isArray(a) || Array.isArray(b)) return false
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
  if (ka.length !== kb.length) return false
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

function encodeError(path: string, detail: string): TidewayError {
  return new TidewayError('TIDEWAY_ERR_ENCODE', `${path}: ${detail}`)
}

function compileScalar(kind: Scalar): Compiled {
  switch (kind) {
    case 'int8':
      return { minSize: 1, decode: (r) => r.int8(), encode: (w, v) => w.int8((v as number) ?? 0) }
    case 'int16':
      return { minSize: 2, decode: (r) => r.int16(), encode: (w, v) => w.int16((v as number) ?? 0) }
    case 'int32':
      return { minSize: 4, decode: (r) => r.int32(), encode: (w, v) => w.int32((v as number) ?? 0) }
    case 'int64':
      return { minSize: 8, decode: (r) => r.int64(), encode: (w, v) => w.int64((v as bigint) ?? 0n) }
    case 'uint16':
      return { minSize: 2, decode: (r) => r.uint16(), encode: (w, v) => w.uint16((v as number) ?? 0) }
    case 'uint32':
      return { minSize: 4, decode: (r) => r.uint32(), encode: (w, v) => w.uint32((v as number) ?? 0) }
    case 'float64':
      return { minSize: 8, decode: (r) => r.float64(), encode: (w, v) => w.float64((v as number) ?? 0) }
    case 'bool':
      return { minSize: 1, decode: (r) => r.bool(), encode: (w, v) => w.bool((v as boolean) ?? false) }
    case 'uuid':
      return { minSize: 16, decode: (r) => r.uuid(), encode: (w, v) => w.uuid((v as string) ?? ZERO_UUID) }
  }
}

/** Reads a length prefix: compact (N+1 uvarint, 0 = null) or classic (int16/int32, -1 = null). */
function lengthReader(flexible: boolean, classicWidth: 16 | 32): (r: Reader) => number {
  if (flexible) return (r) => r.uvarint() - 1
  return classicWidth === 16 ? (r) => r.int16() : (r) => r.int32()
}
function lengthWriter(flexible: boolean, classicWidth: 16 | 32): (w: Writer, n: number) => void {
  if (flexible) return (w, n) => w.uvarint(n + 1)
  return classicWidth === 16 ? (w, n) => w.int16(n) : (w, n) => w.int32(n)
}

const ELLIPSIS = Buffer.from('…', 'utf8')

/** The longest prefix of `encoded` that ends on a character boundary and leaves room for "…", then "…". */
function clipUtf8(encoded: Buffer, max: number): Buffer {
  let end = max - ELLIPSIS.length
  while (end > 0 && (encoded[end]! & 0xc0) === 0x80) end-- // a continuation byte: back to the character's start
  return Buffer.concat([encoded.subarray(0, end), ELLIPSIS])
}

function compileField(f: AnyField, version: number, flexible: boolean): Compiled {
  const nullable = nullableAt(f, version)
  const t = f.type
  switch (t.kind) {
    case 'string': {
      const readLen = lengthReader(flexible, 16)
      const writeLen = lengthWriter(flexible, 16)
      return {
        minSize: flexible ? 1 : 2,
        decode: (r) => {
          const n = readLen(r)
          if (n === -1 && nullable) return null
          if (n < 0) throw decodeError(`string: invalid length ${n}`)
          // Compact strings too: whatever a request stores (a group id, a config value) can be
          // answered later in a version whose strings have an int16 length (Kafka's generated
          // code refuses the same lengths).
          if (n > MAX_STRING_BYTES) throw decodeError(`string: length ${n} over ${MAX_STRING_BYTES} bytes`)
          return r.utf8(n)
        },
        encode: (w, v, path) => {
          if (v === null || v === undefined) {
            if (v === null && !nullable) throw encodeError(path, `null is not allowed in v${version}`)
            if (v === undefined && !nullable) return writeLen(w, 0)
            return writeLen(w, -1)
          }
          let encoded: Buffer = Buffer.from(v as string, 'utf8')
          if (encoded.length > MAX_STRING_BYTES) {
            if (!f.options.clip) throw encodeError(path, `string longer than ${MAX_STRING_BYTES} bytes`)
            encoded = clipUtf8(encoded, MAX_STRING_BYTES)
          }
          writeLen(w, encoded.length)
          w.raw(encoded)
        },
      }
    }
    case 'bytes':
    case 'records': {
      const readLen = lengthReader(flexible, 32)
      const writeLen = lengthWriter(flexible, 32)
      const canBeNull = nullable || t.kind === 'records'
      return {
        minSize: flexible ? 1 : 4,
        decode: (r) => {
          const n = readLen(r)
          if (n === -1 && canBeNull) return null
          if (n < 0) throw decodeError(`bytes: invalid length ${n}`)
          return r.bytes(n, t.kind)
        },
        encode: (w, v, path) => {
          if (v === null || v === undefined) {
            if (!canBeNull) {
              if (v === null) throw encodeError(path, `null is not allowed in v${version}`)
              return writeLen(w, 0)
            }
            return writeLen(w, -1)
          }
          const data = v as Uint8Array
          writeLen(w, data.length)
          w.raw(data)
        },
      }
    }
    case 'array': {
      const item = compileField(t.items, version, flexible)
      const readLen = lengthReader(flexible, 32)
      const writeLen = lengthWriter(flexible, 32)
      return {
        minSize: flexible ? 1 : 4,
        decode: (r) => {
          const n = readLen(r)
          if (n === -1 && nullable) return null
          const count = r.checkedCount(n, item.minSize, 'array')
          const out = new Array<unknown>(count)
          for (let i = 0; i < count; i++) out[i] = item.decode(r)
          return out
        },
        encode: (w, v, path) => {
          if (v === null || v === undefined) {
            if (v === null && !nullable) throw encodeError(path, `null is not allowed in v${version}`)
            return writeLen(w, v === null ? -1 : 0)
          }
          const items = v as unknown[]
          writeLen(w, items.length)
          for (let i = 0; i < items.length; i++) item.encode(w, items[i], `${path}/${i}`)
        },
      }
    }
    case 'struct':
      return compileStruct(t.fields, version, flexible, nullable)
    default:
      return compileScalar(t.kind)
  }
}

const MAX_TAGS = 1024

function compileStruct(fields: Fields, version: number, flexible: boolean, nullable = false): Compiled {
  const names = Object.keys(fields)
  const regular: { name: string; codec: Compiled; field: AnyField }[] = []
  const tagged = new Map<number, { name: string; codec: Compiled; field: AnyField }>()
  const absent: { name: string; field: AnyField }[] = []

  for (const name of names) {
    const field = fields[name]!
    const tag = field.options.tag
    if (!present(field, version) || (tag !== undefined && !flexible)) {
      absent.push({ name, field })
    } else if (tag !== undefined) {
      tagged.set(tag, { name, field, codec: compileField(field, version, true) })
    } else {
      regular.push({ name, field, codec: compileField(field, version, flexible) })
    }
  }
  const taggedInOrder = [...tagged.entries()].sort((a, b) => a[0] - b[0])
  // A nullable struct is prefixed by an int8 presence marker (-1 = null), as in Kafka; a null
  // one is that single byte, so it bounds array counts rather than the fields' sum.
  const presence = nullable
  const minSize = presence ? 1 : regular.reduce((sum, f) => sum + f.codec.minSize, 0) + (flexible ? 1 : 0)

  const decode: Decode = (r) => {
    if (presence && r.int8() < 0) return null
    const out: Record<string, unknown> = {}
    for (const name of names) out[name] = undefined // fix the key order to the declaration
    for (const f of absent) out[f.name] = defaultOf(f.field)
    for (const f of taggedInOrder) out[f[1].name] = defaultOf(f[1].field)
    for (const f of regular) out[f.name] = f.codec.decode(r)
    if (flexible) {
      const count = r.uvarint()
      if (count > MAX_TAGS) throw decodeError(`tagged fields: count ${count} exceeds ${MAX_TAGS}`)
      for (let i = 0; i < count; i++) {
        const tag = r.uvarint()
        const size = r.uvarint()
        const known = tagged.get(tag)
        if (known) {
          const sub = r.sub(size, `tagged field ${tag}`)
          out[known.name] = known.codec.decode(sub)
        } else {
          r.skip(size, `unknown tagged field ${tag}`) // KIP-482: unknown tags are skipped
        }
      }
    }
    return out
  }

  const encode: Encode = (w, value, path) => {
    if (presence) {
      if (value === null || value === undefined) return void w.int8(-1)
      w.int8(1)
    } else if (value === null) {
      throw encodeError(path, `null is not allowed in v${version}`)
    }
    const obj = (value ?? {}) as Record<string, unknown>
    for (const f of absent) {
      const v = obj[f.name]
      if (!f.field.options.ignorable && !isDefault(f.field, v)) {
        throw encodeError(`${path}/${f.name}`, `field does not exist in v${version} and is not ignorable`)
      }
    }
    for (const f of regular) {
      const v = obj[f.name]
      f.codec.encode(w, v === undefined ? defaultOf(f.field) : v, `${path}/${f.name}`)
    }
    if (flexible) {
      const toWrite = taggedInOrder.filter(([, f]) => !isDefault(f.field, obj[f.name]))
      w.uvarint(toWrite.length)
      for (const [tag, f] of toWrite) {
        const inner = new Writer(64)
        f.codec.encode(inner, obj[f.name], `${path}/${f.name}`)
        const body = inner.toBuffer()
        w.uvarint(tag).uvarint(body.length).raw(body)
      }
    }
  }

  return { decode, encode, minSize }
}

// ---------------------------------------------------------------------------------------------
// API descriptions

// No constraint on ReqF/ResF on purpose: a constraint becomes the contextual type of an inline
// struct({...}) argument and widens its inferred field types to unknown.
export interface ApiDefinition<ReqF, ResF> {
  readonly key: number
  readonly name: string
  /** The versions this broker serves (not necessarily all of Kafka's). */
  readonly versions: VersionRange
  /** First flexible (KIP-482) version; omit when none is served. */
  readonly flexibleFrom?: number
  readonly request: ReqF
  readonly response: ResF
}

/** A compiled API: `ReqOut`/`ResOut` are decoded types, `ReqIn`/`ResIn` what the encoders accept. */
export interface Api<ReqOut = unknown, ReqIn = unknown, ResOut = unknown, ResIn = unknown> {
  readonly key: number
  readonly name: string
  readonly versions: VersionRange
  readonly flexibleFrom: number
  readonly request: AnyField
  readonly response: AnyField
  isSupported(version: number): boolean
  isFlexible(version: number): boolean
  decodeRequest(version: number, r: Reader): ReqOut
  encodeRequest(version: number, w: Writer, value: ReqIn): void
  decodeResponse(version: number, r: Reader): ResOut
  encodeResponse(version: number, w: Writer, value: ResIn): void
}

export type RequestOf<A> = A extends { decodeRequest(version: number, r: Reader): infer R } ? R : never
export type RequestInput<A> = A extends { encodeRequest(version: number, w: Writer, value: infer R): void } ? R : never
export type ResponseOf<A> = A extends { decodeResponse(version: number, r: Reader): infer R } ? R : never
export type ResponseInput<A> = A extends { encodeResponse(version: number, w: Writer, value: infer R): void } ? R : never

function structFields(f: AnyField): Fields {
  if (f.type.kind !== 'struct') throw new TypeError('request and response must be structs')
  return f.type.fields
}

export function api<ReqF, ResF>(
  def: ApiDefinition<ReqF, ResF>,
): Api<Infer<ReqF>, InferInput<ReqF>, Infer<ResF>, InferInput<ResF>> {
  const [min, max] = def.versions
  const flexibleFrom = def.flexibleFrom ?? Number.POSITIVE_INFINITY
  const requestCodecs: Compiled[] = []
  const responseCodecs: Compiled[] = []
  for (let v = min; v <= max; v++) {
    const flexible = v >= flexibleFrom
    requestCodecs[v] = compileStruct(structFields(def.request as unknown as AnyField), v, flexible)
    responseCodecs[v] = compileStruct(structFields(def.response as unknown as AnyField), v, flexible)
  }
  // Decoding an unserved version is bad input (DECODE), encoding one is our misuse (ENCODE).
  const codec = (table: Compiled[], version: number, code: 'TIDEWAY_ERR_DECODE' | 'TIDEWAY_ERR_ENCODE'): Compiled => {
    const c = table[version]
    if (!c) throw new TidewayError(code, `${def.name} v${version} is not served (${min}-${max})`)
    return c
  }
  return {
    key: def.key,
    name: def.name,
    versions: def.versions,
    flexibleFrom,
    request: def.request as unknown as AnyField,
    response: def.response as unknown as AnyField,
    isSupported: (v) => Number.isInteger(v) && v >= min && v <= max,
    isFlexible: (v) => v >= flexibleFrom,
    decodeRequest: (v, r) => codec(requestCodecs, v, 'TIDEWAY_ERR_DECODE').decode(r) as Infer<ReqF>,
    encodeRequest: (v, w, value) => codec(requestCodecs, v, 'TIDEWAY_ERR_ENCODE').encode(w, value, `${def.name}Request`),
    decodeResponse: (v, r) => codec(responseCodecs, v, 'TIDEWAY_ERR_DECODE').decode(r) as Infer<ResF>,
    encodeResponse: (v, w, value) => codec(responseCodecs, v, 'TIDEWAY_ERR_ENCODE').encode(w, value, `${def.name}Response`),
  }
}
