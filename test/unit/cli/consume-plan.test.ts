// Where `tideway consume` starts in a partition, and how a record is printed.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatRecord, parseStartSpec, startOffset, type ConsumedRecord } from '../../../src/cli/consume-plan.ts'
import { UsageError } from '../../../src/cli/errors.ts'

const offsets = { earliest: 10n, latest: 50n }

test('--from beginning and end start at the log start and the high watermark', () => {
  assert.equal(startOffset(parseStartSpec('beginning'), offsets), 10n)
  assert.equal(startOffset(parseStartSpec('end'), offsets), 50n)
})

test('an explicit offset is used as given inside the log and clamped outside it', () => {
  assert.equal(startOffset(parseStartSpec('25'), offsets), 25n)
  assert.equal(startOffset(parseStartSpec('0'), offsets), 10n, 'deleted by retention: start at the log start')
  assert.equal(startOffset(parseStartSpec('500'), offsets), 50n, 'not written yet: start at the end')
  assert.equal(startOffset(parseStartSpec('50'), offsets), 50n)
})

test('a timestamp starts at the offset ListOffsets found, or at the end when every record is older', () => {
  const spec = parseStartSpec('@1700000000000')
  assert.deepEqual(spec, { kind: 'timestamp', timestampMs: 1_700_000_000_000n })
  assert.equal(startOffset(spec, { ...offsets, atTimestamp: 42n }), 42n)
  assert.equal(startOffset(spec, { ...offsets, atTimestamp: -1n }), 50n)
})

test('an ISO date after @ is read as that instant', () => {
  assert.deepEqual(parseStartSpec('@2026-11-22T10:00:00Z'), { kind: 'timestamp', timestampMs: BigInt(Date.parse('2026-11-22T10:00:00Z')) })
  assert.deepEqual(parseStartSpec('@2026-11-22T10:00:00.250+01:00'), { kind: 'timestamp', timestampMs: BigInt(Date.parse('2026-11-22T09:00:00.250Z')) })
})

test('anything else after --from is a usage error', () => {
  for (const bad of ['', 'start', '-5', '1.5', '@', '@yesterday', '@March 7', '@2026-13-45']) {
    assert.throws(() => parseStartSpec(bad), UsageError, bad)
  }
})

const record: ConsumedRecord = {
  topic: 'orders',
  partition: 2,
  offset: 17n,
  timestamp: 1_700_000_000_123n,
  key: Buffer.from('user-1'),
  value: Buffer.from('paid'),
  headers: [[Buffer.from('source'), Buffer.from('web')]],
}

test('text output is partition:offset, key and value separated by tabs, with - for a null key', () => {
  assert.equal(formatRecord(record, 'text').toString(), '2:17\tuser-1\tpaid\n')
  assert.equal(formatRecord({ ...record, key: null, value: null }, 'text').toString(), '2:17\t-\t\n')
})

test('text output keeps the value\'s bytes exactly as stored', () => {
  const value = Buffer.from([0xff, 0x00, 0xc3])
  assert.deepEqual(formatRecord({ ...record, value }, 'text').subarray(-4), Buffer.concat([value, Buffer.from('\n')]))
})

test('json output is one object per line with numbers for offset and timestamp and null for absent fields', () => {
  assert.deepEqual(JSON.parse(formatRecord(record, 'json').toString()), {
    topic: 'orders',
    partition: 2,
    offset: 17,
    timestamp: 1_700_000_000_123,
    key: 'user-1',
    value: 'paid',
    headers: { source: 'web' },
  })
  const bare = JSON.parse(formatRecord({ ...record, key: null, value: null, headers: [] }, 'json').toString()) as Record<string, unknown>
  assert.equal(bare['key'], null)
  assert.equal(bare['value'], null)
  assert.deepEqual(bare['headers'], {})
  assert.ok(formatRecord(record, 'json').toString().endsWith('}\n'))
})
