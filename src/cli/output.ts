// Output for the client commands: aligned tables for people, JSON for programs, and a stdout
// writer that respects backpressure and treats a closed pipe (`tideway consume t | head`) as the
// reader being done, not as a failure.
import type { Writable } from 'node:stream'

/**
 * Columns padded to their widest cell, two spaces apart. Columns named in `rightAligned`
 * (numbers, offsets) are aligned on the right so digits line up.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[], rightAligned: readonly number[] = []): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (rightAligned.includes(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].join('\n') + '\n'
}

/** `key  value` lines with the keys padded to the same width. */
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(...fields.map(([key]) => key.length))
  return fields.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n') + '\n'
}

/** JSON with bigints as numbers when they fit exactly (offsets, timestamps), else as strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()
  })
}

/** Writes to a stream, waiting for 'drain' when its buffer is full, and notices a closed pipe. */
export class OutputSink {
  readonly #stream: Writable
  #closed = false
  #error: Error | undefined

  constructor(stream: Writable) {
    this.#stream = stream
    stream.on('error', (err: NodeJS.ErrnoException) => {
      this.#closed = true
      if (err.code !== 'EPIPE') this.#error = err
    })
  }

  /** True once the reader has gone away (EPIPE) or the stream failed. */
  get closed(): boolean {
    return this.#closed
  }

  /** A write error other than the reader going away, to report once output stops. */
  get error(): Error | undefined {
    return this.#error
  }

  async write(text: string | Uint8Array): Promise<void> {
    if (this.#closed || text.length === 0) return
    if (this.#stream.write(text)) return
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#stream.off('drain', done)
        this.#stream.off('error', done)
        this.#stream.off('close', done)
        resolve()
      }
      this.#stream.on('drain', done)
      this.#stream.on('error', done)
      this.#stream.on('close', done)
    })
  }
}
