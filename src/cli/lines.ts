// Splits a byte stream into lines without decoding it: a record's key and value are the bytes
// that were on the line (bytes stay bytes; no UTF-8 round trip). `\n` ends a line and a `\r`
// before it is dropped; a last line without `\n` still counts. Lines are bounded, so a stream
// with no newline cannot grow memory without limit.
import { CommandError } from './errors.ts'

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024

const NEWLINE = 0x0a
const CARRIAGE_RETURN = 0x0d

export async function* readLines(chunks: AsyncIterable<Buffer | string>, maxLineBytes = DEFAULT_MAX_LINE_BYTES): AsyncGenerator<Buffer> {
  let partial: Buffer[] = []
  let partialBytes = 0
  let lineNumber = 0
  for await (const input of chunks) {
    const chunk = typeof input === 'string' ? Buffer.from(input) : input
    let start = 0
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, end)
      const line = partialBytes === 0 ? piece : Buffer.concat([...partial, piece], partialBytes + piece.length)
      partial = []
      partialBytes = 0
      lineNumber++
      if (line.length > maxLineBytes) throw tooLong(lineNumber, maxLineBytes)
      yield withoutCarriageReturn(line)
      start = end + 1
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start)
      partial.push(rest)
      partialBytes += rest.length
      if (partialBytes > maxLineBytes) throw tooLong(lineNumber + 1, maxLineBytes)
    }
  }
  if (partialBytes > 0) yield withoutCarriageReturn(Buffer.concat(partial, partialBytes))
}

function withoutCarriageReturn(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN ? line.subarray(0, line.length - 1) : line
}

function tooLong(lineNumber: number, maxLineBytes: number): CommandError {
  return new CommandError(`input line ${lineNumber} is longer than ${maxLineBytes} bytes`)
}

/**
 * With a key separator, the bytes before its first occurrence are the key and the rest the
 * value; a line without the separator has no key (null) and is all value.
 */
export function splitKey(line: Buffer, separator: Buffer | undefined): { key: Buffer | null; value: Buffer } {
  if (separator === undefined) return { key: null, value: line }
  const at = line.indexOf(separator)
  if (at === -1) return { key: null, value: line }
  return { key: line.subarray(0, at), value: line.subarray(at + separator.length) }
}
