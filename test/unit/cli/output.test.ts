// Human tables and JSON for the client commands.
import assert from 'node:assert/strict'
import { PassThrough, Writable } from 'node:stream'
import { test } from 'node:test'
import { formatFields, formatTable, OutputSink, toJson } from '../../../src/cli/output.ts'

test('table columns are as wide as their widest cell, with chosen columns aligned right', () => {
  const table = formatTable(['TOPIC', 'PARTITIONS'], [['orders', '3'], ['a-much-longer-name', '12']], [1])
  assert.equal(table, ['TOPIC               PARTITIONS', 'orders                       3', 'a-much-longer-name          12', ''].join('\n'))
})

test('field lists pad their keys to one width', () => {
  assert.equal(formatFields([['topic', 'orders'], ['partitions', '3']]), 'topic       orders\npartitions  3\n')
})

test('bigints become JSON numbers when exact, strings otherwise', () => {
  assert.equal(toJson({ offset: 42n, huge: 2n ** 63n - 1n, nested: [1n] }), '{"offset":42,"huge":"9223372036854775807","nested":[1]}')
})

test('the sink waits for drain when the stream is full, and stops quietly once the reader is gone', async () => {
  const slow = new PassThrough({ highWaterMark: 4 })
  const sink = new OutputSink(slow)
  let written = false
  const pending = sink.write('more than four bytes').then(() => (written = true))
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(written, false, 'waits while the buffer is over its mark')
  slow.read()
  await pending
  assert.equal(written, true)

  const gone = new Writable({
    write(_chunk, _encoding, callback) {
      callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
    },
  })
  const closedSink = new OutputSink(gone)
  await closedSink.write('x')
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(closedSink.closed, true)
  assert.equal(closedSink.error, undefined, 'a reader going away is not an error')
  await closedSink.write('ignored after close')
})
