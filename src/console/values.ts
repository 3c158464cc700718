// How the console shows bytes it knows nothing about (record keys, values, header values): as
// pretty JSON when they parse, as text when they are UTF-8 without control characters, as hex
// otherwise, or as whichever of the three the operator asks for. Every rendering is cut to a
// byte budget and says so, so one huge record cannot make a huge page. Pure.

import { isUtf8 } from 'node:buffer'

export const VIEWS = ['auto', 'json', 'text', 'hex'] as const
export type View = (typeof VIEWS)[number]

export const isView = (text: string): text is View => (VIEWS as readonly string[]).includes(text)

export interface ShownBytes {
  /** How `data` shows the bytes; null bytes are 'null' and have no data. */
  readonly as: 'json' | 'text' | 'hex' | 'null'
  readonly data: string
  /** The whole field's length in bytes. */
  readonly size: number
  /** `data` shows only the first `limit` bytes (hex, text) or characters (json). */
  readonly truncated: boolean
}

// C0 controls other than tab, newline and carriage return: UTF-8 that holds them is more likely
// a binary encoding (protobuf, a varint) that happens to be valid UTF-8 than text.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/

export function showBytes(bytes: Buffer | null, view: View, limit: number): ShownBytes {
  if (bytes === null) return { as: 'null', data: '', size: 0, truncated: false }
  const text = isUtf8(bytes) ? bytes.toString('utf8') : null
  const readable = text !== null && !CONTROL.test(text)
  if ((view === 'auto' || view === 'json') && readable) {
    const json = prettyJson(text)
    if (json !== null) return { as: 'json', data: json.slice(0, limit), size: bytes.length, truncated: json.length > limit }
  }
  if ((view !== 'hex' && readable) || (view === 'text' && text !== null)) {
    return { as: 'text', data: utf8Prefix(bytes, limit), size: bytes.length, truncated: bytes.length > limit }
  }
  return { as: 'hex', data: bytes.subarray(0, limit).toString('hex'), size: bytes.length, truncated: bytes.length > limit }
}

/** The first `limit` bytes as text, cut before a character that would be split. */
function utf8Prefix(bytes: Buffer, limit: number): string {
  if (bytes.length <= limit) return bytes.toString('utf8')
  let end = limit
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.toString('utf8', 0, end)
}

/**
 * JSON re-indented, or null when it does not parse (a bare number or string is JSON too, but is
 * shown as text). Numbers keep their source text: a 64-bit id must not come out rounded.
 */
export function prettyJson(text: string): string | null {
  const first = text.trimStart()[0]
  if (first !== '{' && first !== '[') return null
  try {
    const exact = (_key: string, value: unknown, context?: { source?: string }) =>
      typeof value === 'number' && context?.source !== undefined ? rawJson(context.source) : value
    return JSON.stringify(JSON.parse(text, exact as (key: string, value: unknown) => unknown), null, 2)
  } catch {
    return null
  }
}

// JSON.rawJSON (V8 11.4, Node 21) is not in TypeScript's es2024 lib yet.
const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON
