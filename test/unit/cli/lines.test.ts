// Splitting stdin into records for `tideway produce`: lines are found in arbitrary chunkings,
// bytes are never decoded, and a line is bounded.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readLines, splitKey } from '../../../src/cli/lines.ts'

async function collect(chunks: (string | Buffer)[], maxLineBytes?: number): Promise<string[]> {
  const out: string[] = []
  for await (const line of readLines(
    (async function* () {
      yield* chunks
    })(),
    maxLineBytes,
  )) {
    out.push(line.toString('latin1'))
  }
  return out
}

test('every split of the input into chunks yields the same lines', async () => {
  const input = 'first\nsecond line\r\n\nlast without newline'
  const expected = ['first', 'second line', '', 'last without newline']
  for (let a = 0; a <= input.length; a++) {
    for (let b = a; b <= input.length; b += 3) {
      assert.deepEqual(await collect([input.slice(0, a), input.slice(a, b), input.slice(b)]), expected, `split at ${a}, ${b}`)
    }
  }
})

test('a trailing newline does not make an extra empty line, but an empty line in the middle is a line', async () => {
  assert.deepEqual(await collect(['a\n\nb\n']), ['a', '', 'b'])
  assert.deepEqual(await collect([]), [])
  assert.deepEqual(await collect(['\n']), [''])
})

test('bytes that are not UTF-8 pass through unchanged', async () => {
  const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0a, 0xc3])
  const lines: Buffer[] = []
  for await (const line of readLines((async function* () { yield bytes })())) lines.push(line)
  assert.deepEqual(lines, [Buffer.from([0xff, 0xfe, 0x00, 0x80]), Buffer.from([0xc3])])
})

test('a line longer than the limit is an error naming the line, even when it never ends', async () => {
  await assert.rejects(collect(['ok\n', 'x'.repeat(10), 'y'.repeat(10)], 16), /input line 2 is longer than 16 bytes/)
  await assert.rejects(collect(['ok\n', 'x'.repeat(17) + '\n'], 16), /input line 2 is longer than 16 bytes/)
  assert.deepEqual(await collect(['x'.repeat(16) + '\n'], 16), ['x'.repeat(16)])
})

test('the key is what precedes the first separator, and a line without one has a null key', () => {
  const sep = Buffer.from('::')
  const split = (line: string) => {
    const { key, value } = splitKey(Buffer.from(line), sep)
    return [key?.toString() ?? null, value.toString()]
  }
  assert.deepEqual(split('user-1::signed::up'), ['user-1', 'signed::up'])
  assert.deepEqual(split('::value'), ['', 'value'])
  assert.deepEqual(split('no separator'), [null, 'no separator'])
  assert.deepEqual(splitKey(Buffer.from('a::b'), undefined).key, null)
})
