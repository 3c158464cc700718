import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isTidewayError } from '../../../src/errors.ts'
import { INDEX_INTERVAL_BYTES, parseTopicConfig, toLogConfig, topicConfigTable } from '../../../src/storage/topic-config.ts'

const configError = (key: string) => (err: unknown) =>
  isTidewayError(err, 'TIDEWAY_ERR_CONFIG') && (err as Error).message.includes(key) && err.context.config === key

test('with no entries every key takes its documented default', () => {
  const config = parseTopicConfig({})
  for (const spec of topicConfigTable) {
    assert.equal(config[spec.name], spec.default, spec.name)
    assert.ok(spec.doc.length > 20, `${spec.name} is documented`)
  }
  assert.equal(config['retention.ms'], 604800000)
  assert.equal(config['retention.bytes'], -1)
  assert.equal(config['segment.bytes'], 134217728)
  assert.equal(config['max.message.bytes'], 1048588)
})

test('explicit entries are parsed by type and override the defaults', () => {
  const config = parseTopicConfig({ 'retention.ms': '-1', 'segment.bytes': '1024', 'cleanup.policy': 'delete' })
  assert.equal(config['retention.ms'], -1)
  assert.equal(config['segment.bytes'], 1024)
  assert.equal(config['cleanup.policy'], 'delete')
})

test('an unknown key, a non-integer, an out-of-range value or an unsupported policy is refused, naming the key', () => {
  assert.throws(() => parseTopicConfig({ 'no.such.key': '1' }), configError('no.such.key'))
  assert.throws(() => parseTopicConfig({ 'retention.ms': 'soon' }), configError('retention.ms'))
  assert.throws(() => parseTopicConfig({ 'retention.ms': '' }), configError('retention.ms'))
  assert.throws(() => parseTopicConfig({ 'retention.ms': '1.5' }), configError('retention.ms'))
  assert.throws(() => parseTopicConfig({ 'retention.bytes': '-2' }), configError('retention.bytes'))
  assert.throws(() => parseTopicConfig({ 'segment.bytes': '1023' }), configError('segment.bytes'))
  assert.throws(() => parseTopicConfig({ 'segment.bytes': String(2 ** 31) }), configError('segment.bytes'))
  assert.throws(() => parseTopicConfig({ 'cleanup.policy': 'compress' }), configError('cleanup.policy'))
  assert.throws(() => parseTopicConfig({ 'cleanup.policy': 'compact,compact' }), configError('cleanup.policy'))
  assert.throws(() => parseTopicConfig({ 'delete.retention.ms': '-1' }), configError('delete.retention.ms'))
  assert.throws(
    () => parseTopicConfig({ 'message.timestamp.type': 'LogAppendTime' }),
    (err) => configError('message.timestamp.type')(err) && /CreateTime/.test((err as Error).message),
  )
})

test('toLogConfig gives the partition log its settings and the broker flush policy', () => {
  const config = parseTopicConfig({ 'segment.bytes': '2048', 'segment.ms': '1000', 'retention.ms': '5000', 'retention.bytes': '9999' })
  assert.deepEqual(toLogConfig(config, { mode: 'interval', intervalMs: 10 }), {
    segmentBytes: 2048,
    segmentMs: 1000,
    retentionMs: 5000,
    retentionBytes: 9999,
    indexIntervalBytes: INDEX_INTERVAL_BYTES,
    flush: { mode: 'interval', intervalMs: 10 },
  })
})

test('idempotency-key dedup is off by default; turned on it gives the log its header and window', () => {
  assert.equal(toLogConfig(parseTopicConfig({}), { mode: 'always' }).dedup, undefined)
  const config = parseTopicConfig({ 'tideway.dedup.enable': 'TRUE', 'tideway.dedup.header': 'msg-id', 'tideway.dedup.window.ms': '120000' })
  assert.equal(config['tideway.dedup.enable'], true)
  assert.deepEqual(toLogConfig(config, { mode: 'always' }).dedup, { header: 'msg-id', windowMs: 120000, windowRecords: 100000 })
  assert.throws(() => parseTopicConfig({ 'tideway.dedup.enable': 'yes' }), configError('tideway.dedup.enable'))
  assert.throws(() => parseTopicConfig({ 'tideway.dedup.header': '' }), configError('tideway.dedup.header'))
  assert.throws(() => parseTopicConfig({ 'tideway.dedup.window.ms': '0' }), configError('tideway.dedup.window.ms'))
  assert.throws(() => parseTopicConfig({ 'tideway.dedup.window.records': '0' }), configError('tideway.dedup.window.records'))
})
