// Flag parsing for the client commands. Each command declares its options once, as data; the
// parser (node:util parseArgs, strict) and the `--help` text are both derived from that
// declaration, so the help can never list a flag the parser refuses or miss one it accepts.
import { parseArgs } from 'node:util'
import { UsageError } from './errors.ts'

export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  /** The flag may repeat (`--header a=1 --header b=2`); its value is then a list. */
  readonly multiple?: boolean
  readonly short?: string
  /** Placeholder for the value in the help, e.g. `N` in `--partitions N`. */
  readonly placeholder?: string
  readonly help: string
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>

export interface CommandSpec<O extends OptionSpecs> {
  /** `tideway topics create`: what error messages and the help name the command by. */
  readonly name: string
  /** What follows the name in the usage line, e.g. `<name> [options]`. */
  readonly synopsis: string
  readonly summary: string
  /** Names of the positional arguments, all required; extra positionals are a usage error. */
  readonly positionals: readonly string[]
  readonly options: O
  /** Paragraphs printed after the options (formats, examples). */
  readonly notes?: string
}

type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean'
  ? boolean | undefined
  : S['multiple'] extends true
    ? string[] | undefined
    : string | undefined

export type ParsedOptions<O extends OptionSpecs> = { -readonly [K in keyof O]: ValueOf<O[K]> }

/** Options every client command takes. */
export const commonOptions = {
  bootstrap: {
    type: 'string',
    placeholder: 'HOST:PORT',
    help: 'broker(s) to connect to, comma-separated (env TIDEWAY_BOOTSTRAP; default 127.0.0.1:9092)',
  },
  json: { type: 'boolean', help: 'machine-readable output (JSON)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const satisfies OptionSpecs

export type Parsed<O extends OptionSpecs> =
  | { help: true }
  | { help: false; positionals: string[]; options: ParsedOptions<O & typeof commonOptions> }

export function parseCommand<O extends OptionSpecs>(spec: CommandSpec<O>, argv: string[]): Parsed<O> {
  const all: OptionSpecs = { ...commonOptions, ...spec.options }
  const config: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {}
  for (const [name, option] of Object.entries(all)) {
    config[name] = { type: option.type, ...(option.multiple ? { multiple: true } : {}), ...(option.short ? { short: option.short } : {}) }
  }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: config, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(parseErrorMessage(err))
  }
  if (parsed.values['help'] === true) return { help: true }
  const { positionals } = parsed
  if (positionals.length < spec.positionals.length) {
    const missing = spec.positionals.slice(positionals.length).map((p) => `<${p}>`)
    throw new UsageError(`missing ${missing.join(' ')}`)
  }
  if (positionals.length > spec.positionals.length) {
    throw new UsageError(`unexpected argument "${positionals[spec.positionals.length]}"`)
  }
  return { help: false, positionals, options: parsed.values as ParsedOptions<O & typeof commonOptions> }
}

function parseErrorMessage(err: unknown): string {
  const code = (err as { code?: unknown }).code
  const message = err instanceof Error ? err.message : String(err)
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    // Node's text goes on about `--` for positionals; the flag itself is what matters.
    const flag = /'([^']+)'/.exec(message)?.[1]
    return flag ? `unknown option ${flag}` : message
  }
  // The other parseArgs errors (missing value, value given to a boolean) are one clear sentence.
  return message
}

export function renderHelp<O extends OptionSpecs>(spec: CommandSpec<O>): string {
  const all: OptionSpecs = { ...spec.options, ...commonOptions }
  const flags = Object.entries(all).map(([name, option]) => {
    const short = option.short ? `-${option.short}, ` : ''
    const value = option.type === 'string' ? ` ${option.placeholder ?? 'VALUE'}` : ''
    const repeat = option.multiple ? ' ...' : ''
    return [`${short}--${name}${value}${repeat}`, option.help]
  })
  const width = Math.max(...flags.map(([flag]) => flag!.length))
  const lines = [
    `Usage: ${spec.name} ${spec.synopsis}`.trimEnd(),
    '',
    spec.summary,
    '',
    'Options:',
    ...flags.map(([flag, help]) => `  ${flag!.padEnd(width)}  ${help}`),
  ]
  if (spec.notes) lines.push('', spec.notes)
  return lines.join('\n') + '\n'
}

/** A whole number within [min, max], or a usage error naming the flag. */
export function parseInteger(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number, got "${text}"`)
  const value = Number(text)
  if (value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`
    throw new UsageError(`${flag} must be ${range}, got ${text}`)
  }
  return value
}

const UNIT_MS: Readonly<Record<string, number>> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 }

/**
 * A duration in milliseconds: compact (`90s`, `15m`, `1h30m`, `2d`, `250ms`) or ISO 8601
 * (`PT15M`, `P1DT2H`, as kafka-consumer-groups.sh takes it). Must be more than zero.
 */
export function parseDuration(flag: string, text: string): number {
  let total = Number.NaN
  const iso = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(text)
  if (iso && !/T$/i.test(text) && text.length > 1) {
    const [, d, h, m, s] = iso
    total = Number(d ?? 0) * UNIT_MS['d']! + Number(h ?? 0) * UNIT_MS['h']! + Number(m ?? 0) * UNIT_MS['m']! + Math.round(Number(s ?? 0) * 1000)
  } else if (/^(?:\d+(?:ms|d|h|m|s))+$/.test(text)) {
    total = 0
    for (const [, amount, unit] of text.matchAll(/(\d+)(ms|d|h|m|s)/g)) total += Number(amount) * UNIT_MS[unit!]!
  }
  if (!(total > 0) || !Number.isSafeInteger(total)) {
    throw new UsageError(`${flag} takes a duration such as 15m, 1h30m, 2d or PT15M, more than zero; got "${text}"`)
  }
  return total
}

/** `key=value` pairs from a repeatable flag, in order; the value may itself contain `=`. */
export function parsePairs(flag: string, items: string[] | undefined): [string, string][] {
  return (items ?? []).map((item) => {
    const at = item.indexOf('=')
    if (at <= 0) throw new UsageError(`${flag} takes key=value, got "${item}"`)
    return [item.slice(0, at), item.slice(at + 1)]
  })
}
