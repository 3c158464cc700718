// Developer check: compares our hand-written API descriptions (src/protocol/apis/) with Kafka's
// JSON message definitions, read at run time from a directory named on the command line (the
// JSON is Apache-licensed reference and never enters this repository; see style.md, "Checking
// against the reference").
//
//   node scripts/check-schemas.ts <dir-with-ProduceRequest.json-etc>
//
// Only the versions we serve are compared. Per version it checks: the regular fields and their
// order, each field's type (recursing into structs and arrays), nullability, tag numbers and
// where fields are tagged, and the flexible threshold. Defaults are compared where they reach
// the wire or a decoded value (tagged fields; fields absent from some served version). Fields
// that Kafka adds only above our range may be missing from ours. Differences in `ignorable`
// are printed as notes: they decide how strict our encoder is, not what is on the wire.
// Exits 1 on any mismatch, 2 on bad usage.

import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { allApis } from '../src/protocol/apis/index.ts'
import { defaultOf, type Field } from '../src/protocol/schema.ts'

type AnyField = Field<unknown, unknown, boolean>

interface KafkaField {
  name: string
  type: string
  versions: string
  nullableVersions?: string
  taggedVersions?: string
  tag?: number
  default?: string | number | boolean
  ignorable?: boolean
  flexibleVersions?: string
  fields?: KafkaField[]
}

interface KafkaMessage {
  apiKey?: number
  name: string
  validVersions: string
  flexibleVersions: string
  fields: KafkaField[]
  commonStructs?: { name: string; versions: string; fields: KafkaField[] }[]
}

type Range = readonly [number, number]

/** Removes `//` comments outside string literals (the JSON files carry license and doc comments). */
export function stripComments(text: string): string {
  let out = ''
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (inString) {
      out += c
      if (c === '\\') out += text[++i] ?? ''
      else if (c === '"') inString = false
    } else if (c === '"') {
      inString = true
      out += c
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++
      out += '\n'
    } else {
      out += c
    }
  }
  return out
}

/** "3+", "0-5", "7" or "none" as an inclusive range; null for none. */
function parseVersions(spec: string | undefined): Range | null {
  if (spec === undefined || spec === 'none' || spec === '') return null
  const plus = /^(\d+)\+$/.exec(spec)
  if (plus) return [Number(plus[1]), Number.POSITIVE_INFINITY]
  const dash = /^(\d+)-(\d+)$/.exec(spec)
  if (dash) return [Number(dash[1]), Number(dash[2])]
  if (/^\d+$/.test(spec)) return [Number(spec), Number(spec)]
  throw new Error(`cannot parse version spec ${JSON.stringify(spec)}`)
}

const inRange = (r: Range | null, v: number) => r !== null && v >= r[0] && v <= r[1]

const camel = (name: string) => name.charAt(0).toLowerCase() + name.slice(1)

function formatVersions(versions: number[]): string {
  const sorted = [...new Set(versions)].sort((a, b) => a - b)
  const parts: string[] = []
  let start = sorted[0]!
  let prev = start
  for (const v of [...sorted.slice(1), Number.NaN]) {
    if (v === prev + 1) {
      prev = v
      continue
    }
    parts.push(start === prev ? `v${start}` : `v${start}-${prev}`)
    start = v
    prev = v
  }
  return parts.join(',')
}

/** Collects findings keyed by text, so one problem spanning versions prints once. */
class Findings {
  readonly items = new Map<string, number[]>()
  add(text: string, version: number): void {
    const list = this.items.get(text) ?? []
    list.push(version)
    this.items.set(text, list)
  }
  lines(): string[] {
    return [...this.items].map(([text, versions]) => `${text} (${formatVersions(versions)})`)
  }
}

type Status = { kind: 'absent' } | { kind: 'regular' } | { kind: 'tagged'; tag: number }

function theirStatus(f: KafkaField, v: number): Status {
  if (!inRange(parseVersions(f.versions), v)) return { kind: 'absent' }
  if (f.tag !== undefined && inRange(parseVersions(f.taggedVersions), v)) return { kind: 'tagged', tag: f.tag }
  return { kind: 'regular' }
}

function ourStatus(f: AnyField, v: number, flexible: boolean): Status {
  const o = f.options
  if (v < o.since || v > o.until) return { kind: 'absent' }
  if (o.tag !== undefined) return flexible ? { kind: 'tagged', tag: o.tag } : { kind: 'absent' }
  return { kind: 'regular' }
}

const statusText = (s: Status) => (s.kind === 'tagged' ? `tagged (tag ${s.tag})` : s.kind)

interface Context {
  readonly message: KafkaMessage
  readonly flexible: (v: number) => boolean
  readonly errors: Findings
  readonly notes: Findings
}

/** Resolves a struct type's fields: inline, or from the message's commonStructs. */
function structFieldsOf(ctx: Context, f: KafkaField, typeName: string): KafkaField[] {
  if (f.fields) return f.fields
  const common = ctx.message.commonStructs?.find((s) => s.name === typeName)
  if (!common) throw new Error(`${ctx.message.name}: no fields for struct type ${typeName}`)
  return common.fields
}

const SCALARS = new Set(['int8', 'int16', 'int32', 'int64', 'uint16', 'uint32', 'float64', 'bool', 'uuid'])

/** Describes a Kafka type in our vocabulary: a scalar or string/bytes/records name, or a struct. */
type TypeShape =
  | { kind: 'leaf'; name: string }
  | { kind: 'array'; items: TypeShape }
  | { kind: 'struct'; fields: KafkaField[] }

function theirShape(ctx: Context, f: KafkaField, type = f.type): TypeShape {
  if (type.startsWith('[]')) {
    const inner = type.slice(2)
    if (SCALARS.has(inner) || inner === 'string' || inner === 'bytes' || inner === 'records') {
      return { kind: 'array', items: { kind: 'leaf', name: inner } }
    }
    return { kind: 'array', items: { kind: 'struct', fields: structFieldsOf(ctx, f, inner) } }
  }
  if (SCALARS.has(type) || type === 'string' || type === 'bytes' || type === 'records') return { kind: 'leaf', name: type }
  return { kind: 'struct', fields: structFieldsOf(ctx, f, type) }
}

const ourShapeName = (f: AnyField): string =>
  f.type.kind === 'array' ? `[]${ourShapeName(f.type.items)}` : f.type.kind === 'struct' ? 'struct' : f.type.kind
const theirShapeName = (s: TypeShape): string =>
  s.kind === 'array' ? `[]${theirShapeName(s.items)}` : s.kind === 'struct' ? 'struct' : s.name

/** Kafka's implied default for a field (FieldSpec: numbers 0, strings "", arrays empty, …). */
function theirDefault(f: KafkaField, shape: TypeShape): unknown {
  const d = f.default
  if (d === 'null') return null
  if (shape.kind === 'array') return []
  if (shape.kind === 'struct') return undefined // structs: defaults of their fields, compared there
  switch (shape.name) {
    case 'int64':
      return d === undefined ? 0n : BigInt(d)
    case 'int8':
    case 'int16':
    case 'int32':
    case 'uint16':
    case 'uint32':
      return d === undefined ? 0 : Number(d)
    case 'float64':
      return d === undefined ? 0 : Number(d)
    case 'bool':
      return d === true || d === 'true'
    case 'string':
      return d === undefined ? '' : String(d)
    case 'uuid':
      return '00000000-0000-0000-0000-000000000000'
    case 'bytes':
      return Buffer.alloc(0)
    case 'records':
      return null
  }
  return undefined
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0
  if (Array.isArray(a) && Array.isArray(b)) return a.length === 0 && b.length === 0
  return a === b
}

const show = (v: unknown) => (typeof v === 'bigint' ? `${v}` : v instanceof Uint8Array ? `<${v.length} bytes>` : JSON.stringify(v))

/** Compares the fields of one struct at the versions in `versions` (where the struct exists). */
function compareStruct(
  ctx: Context,
  path: string,
  ours: Readonly<Record<string, AnyField>>,
  theirs: KafkaField[],
  versions: number[],
): void {
  const ourNames = Object.keys(ours)
  const theirByName = new Map(theirs.map((f) => [camel(f.name), f]))

  for (const v of versions) {
    const flexible = ctx.flexible(v)
    const ourRegular = ourNames.filter((n) => ourStatus(ours[n]!, v, flexible).kind === 'regular')
    const theirRegular = theirs.filter((f) => theirStatus(f, v).kind === 'regular').map((f) => camel(f.name))
    if (ourRegular.join() !== theirRegular.join()) {
      ctx.errors.add(`${path}: field order [${ourRegular.join(', ')}] differs from Kafka's [${theirRegular.join(', ')}]`, v)
    }
  }

  const names = [...new Set([...ourNames, ...theirByName.keys()])]
  for (const name of names) {
    const ourField = ours[name]
    const theirField = theirByName.get(name)
    const fieldPath = `${path}/${name}`
    const presentIn: number[] = []
    const absentIn: number[] = []
    for (const v of versions) {
      const flexible = ctx.flexible(v)
      const os: Status = ourField ? ourStatus(ourField, v, flexible) : { kind: 'absent' }
      const ts: Status = theirField ? theirStatus(theirField, v) : { kind: 'absent' }
      if (statusText(os) !== statusText(ts)) {
        ctx.errors.add(`${fieldPath}: ours is ${statusText(os)}, Kafka's is ${statusText(ts)}`, v)
      }
      if (theirField?.flexibleVersions !== undefined && ts.kind !== 'absent' && flexible) {
        ctx.errors.add(`${fieldPath}: Kafka overrides flexibleVersions (${theirField.flexibleVersions}); the DSL cannot express it`, v)
      }
      if (os.kind !== 'absent' && ts.kind !== 'absent') presentIn.push(v)
      else if (os.kind === 'absent' && ts.kind === 'absent') absentIn.push(v)
    }
    if (!ourField || !theirField || presentIn.length === 0) continue

    const shape = theirShape(ctx, theirField)
    const ourName = ourShapeName(ourField)
    const theirName = theirShapeName(shape)
    if (ourName !== theirName) {
      for (const v of presentIn) ctx.errors.add(`${fieldPath}: type ${ourName}, Kafka's is ${theirField.type}`, v)
      continue
    }

    const theirNullable = parseVersions(theirField.nullableVersions)
    for (const v of presentIn) {
      // Our records are nullable in every version by construction, as Kafka declares them.
      const ourNullable = v >= ourField.options.nullableFrom || ourField.type.kind === 'records'
      const theirs = inRange(theirNullable, v)
      if (ourNullable !== theirs) {
        ctx.errors.add(`${fieldPath}: ${ourNullable ? 'nullable' : 'not nullable'}, Kafka's is ${theirs ? 'nullable' : 'not nullable'}`, v)
      }
    }

    const tagged = presentIn.some((v) => theirStatus(theirField, v).kind === 'tagged')
    if (tagged || absentIn.length > 0) {
      const expected = theirDefault(theirField, shape)
      const actual = defaultOf(ourField)
      if (shape.kind !== 'struct' && !sameValue(expected, actual)) {
        const where = tagged ? 'tagged field, so it decides whether the field is written' : 'decoded where the field is absent'
        for (const v of tagged ? presentIn : absentIn) {
          ctx.errors.add(`${fieldPath}: default ${show(actual)}, Kafka's is ${show(expected)} (${where})`, v)
        }
      }
    }
    if (absentIn.length > 0 && Boolean(theirField.ignorable) !== ourField.options.ignorable) {
      for (const v of absentIn) {
        ctx.notes.add(`${fieldPath}: ${ourField.options.ignorable ? 'ignorable' : 'not ignorable'}, Kafka's is ${theirField.ignorable ? 'ignorable' : 'not ignorable'}`, v)
      }
    }

    if (shape.kind === 'struct' && ourField.type.kind === 'struct') {
      compareStruct(ctx, fieldPath, ourField.type.fields, shape.fields, presentIn)
    } else if (shape.kind === 'array' && ourField.type.kind === 'array') {
      const items = ourField.type.items
      if (shape.items.kind === 'struct' && items.type.kind === 'struct') {
        compareStruct(ctx, `${fieldPath}[]`, items.type.fields, shape.items.fields, presentIn)
      }
    }
  }
}

function loadMessage(dir: string, name: string): KafkaMessage | null {
  const file = join(dir, `${name}.json`)
  if (!existsSync(file)) return null
  return JSON.parse(stripComments(readFileSync(file, 'utf8'))) as KafkaMessage
}

function checkApi(dir: string, api: (typeof allApis)[number]): { errors: string[]; notes: string[] } {
  const errors: string[] = []
  const notes: string[] = []
  const [min, max] = api.versions
  const served: number[] = []
  for (let v = min; v <= max; v++) served.push(v)

  for (const side of ['Request', 'Response'] as const) {
    const message = loadMessage(dir, `${api.name}${side}`)
    if (!message) {
      errors.push(`${api.name}${side}.json not found in ${dir}`)
      continue
    }
    if (message.apiKey !== undefined && message.apiKey !== api.key) {
      errors.push(`${side}: api key ${api.key}, Kafka's is ${message.apiKey}`)
    }
    const valid = parseVersions(message.validVersions)
    const invalid = served.filter((v) => !inRange(valid, v))
    if (invalid.length > 0) errors.push(`${side}: we serve ${formatVersions(invalid)}, which Kafka does not define (${message.validVersions})`)

    const flexible = parseVersions(message.flexibleVersions)
    const ctx: Context = { message, flexible: (v) => api.isFlexible(v), errors: new Findings(), notes: new Findings() }
    for (const v of served) {
      if (api.isFlexible(v) !== inRange(flexible, v)) {
        ctx.errors.add(`${side}: flexible ${api.isFlexible(v)}, Kafka's flexibleVersions is ${message.flexibleVersions}`, v)
      }
    }
    const root = (side === 'Request' ? api.request : api.response) as AnyField
    if (root.type.kind !== 'struct') throw new Error(`${api.name}${side} is not a struct`)
    compareStruct(ctx, side, root.type.fields, message.fields, served.filter((v) => inRange(valid, v)))
    errors.push(...ctx.errors.lines())
    notes.push(...ctx.notes.lines())
  }
  return { errors, notes }
}

function main(argv: string[]): number {
  const dir = argv[0]
  if (!dir || argv.length !== 1) {
    process.stderr.write('usage: node scripts/check-schemas.ts <dir containing Kafka message JSON>\n')
    return 2
  }
  let failed = 0
  for (const api of allApis) {
    const { errors, notes } = checkApi(dir, api)
    const title = `${api.name} (key ${api.key}, served v${api.versions[0]}-${api.versions[1]})`
    if (errors.length === 0) process.stdout.write(`${title}: OK\n`)
    else {
      failed++
      process.stdout.write(`${title}: ${errors.length} mismatch${errors.length === 1 ? '' : 'es'}\n`)
      for (const e of errors) process.stdout.write(`  - ${e}\n`)
    }
    for (const n of notes) process.stdout.write(`  note: ${n}\n`)
  }
  process.stdout.write(failed === 0 ? `\nall ${allApis.length} APIs match\n` : `\n${failed} of ${allApis.length} APIs have mismatches\n`)
  return failed === 0 ? 0 : 1
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2))
