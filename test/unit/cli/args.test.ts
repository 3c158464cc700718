// The client commands' flag parsing and help, both derived from one declaration per command.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseCommand, parseInteger, parsePairs, renderHelp } from '../../../src/cli/args.ts'
import { resolveConnection } from '../../../src/cli/connection.ts'
import { UsageError } from '../../../src/cli/errors.ts'

const spec = {
  name: 'tideway demo',
  synopsis: '<topic> [options]',
  summary: 'A command for the tests.',
  positionals: ['topic'],
  options: {
    partition: { type: 'string', placeholder: 'N', help: 'a partition' },
    header: { type: 'string', multiple: true, placeholder: 'K=V', help: 'a header' },
    follow: { type: 'boolean', short: 'f', help: 'keep going' },
  },
} as const

test('flags, repeated flags, short flags and positionals are parsed together', () => {
  const parsed = parseCommand(spec, ['t', '--partition', '2', '--header', 'a=1', '-f', '--header', 'b=2', '--json'])
  assert.equal(parsed.help, false)
  if (parsed.help) return
  assert.deepEqual(parsed.positionals, ['t'])
  assert.equal(parsed.options.partition, '2')
  assert.deepEqual(parsed.options.header, ['a=1', 'b=2'])
  assert.equal(parsed.options.follow, true)
  assert.equal(parsed.options.json, true)
})

test('--help shows the help whatever the positionals, but an unknown flag is still an error', () => {
  assert.deepEqual(parseCommand(spec, ['--help']), { help: true })
  assert.deepEqual(parseCommand(spec, ['a', 'b', 'c', '-h']), { help: true })
  assert.throws(() => parseCommand(spec, ['--help', '--bogus']), UsageError)
})

test('unknown flags, missing values and wrong positional counts are usage errors', () => {
  assert.throws(() => parseCommand(spec, ['t', '--bogus']), { name: 'UsageError', message: 'unknown option --bogus' })
  assert.throws(() => parseCommand(spec, ['t', '--partition']), UsageError)
  assert.throws(() => parseCommand(spec, []), { message: 'missing <topic>' })
  assert.throws(() => parseCommand(spec, ['t', 'u']), { message: 'unexpected argument "u"' })
})

test('the help lists every declared flag and the common ones, with placeholders', () => {
  const help = renderHelp(spec)
  assert.match(help, /^Usage: tideway demo <topic> \[options\]\n/)
  for (const line of [/--partition N\s+a partition/, /--header K=V \.\.\.\s+a header/, /-f, --follow\s+keep going/, /--bootstrap HOST:PORT/, /--json/, /-h, --help/]) {
    assert.match(help, line)
  }
})

test('integers are checked against their range, and key=value pairs split at the first =', () => {
  assert.equal(parseInteger('--max', '7', 1), 7)
  assert.throws(() => parseInteger('--max', '0', 1), { message: '--max must be at least 1, got 0' })
  assert.throws(() => parseInteger('--max', '2.5', 1), { message: '--max must be a whole number, got "2.5"' })
  assert.throws(() => parseInteger('--rf', '99999', 1, 32767), { message: '--rf must be between 1 and 32767, got 99999' })
  assert.deepEqual(parsePairs('--config', ['a=1', 'b=x=y', 'c=']), [['a', '1'], ['b', 'x=y'], ['c', '']])
  assert.throws(() => parsePairs('--config', ['=1']), UsageError)
  assert.deepEqual(parsePairs('--config', undefined), [])
})

test('the bootstrap comes from the flag, then TIDEWAY_BOOTSTRAP, then the default', () => {
  assert.equal(resolveConnection('h:1', { TIDEWAY_BOOTSTRAP: 'e:2' }).bootstrap, 'h:1')
  assert.equal(resolveConnection(undefined, { TIDEWAY_BOOTSTRAP: 'e:2' }).bootstrap, 'e:2')
  assert.equal(resolveConnection(undefined, {}).bootstrap, '127.0.0.1:9092')
  assert.deepEqual(resolveConnection('a:1,b:2', {}).clientOptions.bootstrapBrokers, ['a:1', 'b:2'])
  for (const bad of ['host', 'host:', ':9092', 'host:99999', 'a:1,,b:2']) assert.throws(() => resolveConnection(bad, {}), UsageError, bad)
})
