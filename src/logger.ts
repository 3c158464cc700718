// One logger interface for every layer: level methods plus child(bindings). The broker writes
// JSON lines (one object per line, easy to ship and grep); tests pass `silentLogger` or a
// capturing logger. Never log per record: per request at debug is the finest grain.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  child(bindings: Record<string, unknown>): Logger
}

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(levelRank, value)
}

function serialise(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Error) {
    const withCode = value as Error & { code?: unknown }
    return { name: value.name, message: value.message, code: withCode.code }
  }
  return value
}

/** JSON-lines logger writing to a stream (stderr by default, so stdout stays for data). */
export function jsonLogger(
  options: { level?: LogLevel; stream?: { write(chunk: string): unknown }; bindings?: Record<string, unknown> } = {},
): Logger {
  const minimum = levelRank[options.level ?? 'info']
  const stream = options.stream ?? process.stderr
  const bindings = options.bindings ?? {}
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (levelRank[level] < minimum) return
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...bindings, ...fields }, (_k, v) =>
      serialise(v),
    )
    stream.write(line + '\n')
  }
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (more) => jsonLogger({ ...options, bindings: { ...bindings, ...more } }),
  }
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
}
