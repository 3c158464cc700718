// Annotated hex fixtures (style.md, "Byte fixtures per API version"): one field per line, hex
// digits optionally grouped by spaces, and a `#` comment giving the field and its value.
//
//   00 12          # api_key int16 = 18 (ApiVersions)
//
// Everything after `#` and all whitespace is ignored; anything else must be hex digits, in
// pairs. A malformed line is reported with its number, so a typo in a hand-built fixture
// fails loudly instead of shifting every later field.

import { readFileSync } from 'node:fs'

export function parseHexFixture(text: string, source = 'fixture'): Buffer {
  const bytes: number[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const tokens = lines[i]!.replace(/#.*/, '').trim().split(/\s+/).filter((t) => t.length > 0)
    for (const token of tokens) {
      // Each group must be whole bytes: "0 12" is a typo, not 0x00 0x12.
      if (!/^([0-9a-fA-F]{2})+$/.test(token)) {
        throw new Error(`${source}:${i + 1}: expected pairs of hex digits, got ${JSON.stringify(token)}`)
      }
      for (let j = 0; j < token.length; j += 2) bytes.push(parseInt(token.slice(j, j + 2), 16))
    }
  }
  return Buffer.from(bytes)
}

export function loadHexFixture(path: string): Buffer {
  return parseHexFixture(readFileSync(path, 'utf8'), path)
}

/** Hex of `b` in 16-byte rows with offsets, for readable assertion failures. */
export function hexDump(b: Uint8Array): string {
  const rows: string[] = []
  for (let i = 0; i < b.length; i += 16) {
    const row = Buffer.from(b.subarray(i, i + 16)).toString('hex').replace(/(..)/g, '$1 ').trim()
    rows.push(`${i.toString(16).padStart(6, '0')}  ${row}`)
  }
  return rows.join('\n')
}
