// How the console shows bytes (src/console/values.ts) and reads a member's assignment: pure.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assignedPartitions } from '../../src/console/api.ts'
import { prettyJson, showBytes } from '../../src/console/values.ts'

test('auto shows JSON pretty, UTF-8 text as text, anything else as hex; null is null', () => {
  assert.deepEqual(showBytes(Buffer.from('{"a":[1,2]}'), 'auto', 100), { as: 'json', data: '{\n  "a": [\n    1,\n    2\n  ]\n}', size: 11, truncated: false })
  assert.deepEqual(showBytes(Buffer.from('héllo'), 'auto', 100), { as: 'text', data: 'héllo', size: 6, truncated: false })
  assert.deepEqual(showBytes(Buffer.from([0xc3, 0x28]), 'auto', 100), { as: 'hex', data: 'c328', size: 2, truncated: false }, 'not UTF-8')
  assert.equal(showBytes(Buffer.from([0x08, 0x01]), 'auto', 100).as, 'hex', 'UTF-8 with control characters reads as binary')
  assert.equal(showBytes(Buffer.from('42'), 'auto', 100).as, 'text', 'a bare JSON number is shown as text')
  assert.deepEqual(showBytes(null, 'auto', 100), { as: 'null', data: '', size: 0, truncated: false })
})

test('a view asked for is used where the bytes allow it', () => {
  const json = Buffer.from('{"a":1}')
  assert.deepEqual(showBytes(json, 'text', 100), { as: 'text', data: '{"a":1}', size: 7, truncated: false })
  assert.deepEqual(showBytes(json, 'hex', 100), { as: 'hex', data: json.toString('hex'), size: 7, truncated: false })
  assert.equal(showBytes(Buffer.from('not json'), 'json', 100).as, 'text')
  assert.equal(showBytes(Buffer.from([0xff]), 'text', 100).as, 'hex')
  assert.equal(showBytes(Buffer.from('a\u0001b'), 'text', 100).as, 'text', 'text when asked, control characters and all')
})

test('every rendering is cut to the budget, text before a character it would split', () => {
  assert.deepEqual(showBytes(Buffer.from('aé'), 'text', 2), { as: 'text', data: 'a', size: 3, truncated: true })
  assert.deepEqual(showBytes(Buffer.alloc(10, 0xff), 'auto', 4), { as: 'hex', data: 'ffffffff', size: 10, truncated: true })
  const shown = showBytes(Buffer.from(JSON.stringify({ list: Array.from({ length: 100 }, (_, i) => i) })), 'auto', 50)
  assert.deepEqual([shown.as, shown.data.length, shown.truncated], ['json', 50, true])
})

test('pretty JSON keeps numbers exactly as written', () => {
  assert.equal(prettyJson('{"id":12345678901234567890,"x":1.50}'), '{\n  "id": 12345678901234567890,\n  "x": 1.50\n}')
  assert.equal(prettyJson('{"id":'), null)
})

test('a ConsumerProtocolAssignment gives its topics and partitions; garbage gives undefined', () => {
  const topic = Buffer.from('orders')
  const assignment = Buffer.concat([
    Buffer.from([0, 1, 0, 0, 0, 1, 0, topic.length]),
    topic,
    Buffer.from([0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]),
  ])
  assert.deepEqual(assignedPartitions(assignment), [{ topic: 'orders', partitions: [0, 3] }])
  assert.deepEqual(assignedPartitions(Buffer.alloc(0)), [])
  assert.equal(assignedPartitions(Buffer.from([0, 1, 0x7f, 0xff, 0xff, 0xff])), undefined)
})
