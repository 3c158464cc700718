// W3C trace context (src/sdk/trace.ts): parsing what the spec allows and ignoring the rest, and
// child spans that keep the trace id.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { childContext, formatTraceparent, parseTraceparent } from '../../../src/sdk/trace.ts'

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

test('a valid traceparent parses; version 00 with extra fields, version ff, zero ids and junk are ignored', () => {
  assert.deepEqual(parseTraceparent(VALID, 'vendor=1'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true, tracestate: 'vendor=1' })
  assert.equal(parseTraceparent(VALID.replace(/-01$/, '-00'))!.sampled, false)
  assert.equal(parseTraceparent(VALID.toUpperCase())!.traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'hex case does not matter')
  assert.ok(parseTraceparent(`01${VALID.slice(2)}-future`), 'a later version may carry more fields')
  for (const bad of [null, '', 'garbage', `${VALID}-extra`, `ff${VALID.slice(2)}`, '00-00000000000000000000000000000000-00f067aa0ba902b7-01', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01']) {
    assert.equal(parseTraceparent(bad), null, String(bad))
  }
})

test('a child keeps the trace id and sampling and gets a new span id; without a parent a new trace starts', () => {
  const parent = parseTraceparent(VALID)!
  const child = childContext(parent)
  assert.equal(child.traceId, parent.traceId)
  assert.notEqual(child.spanId, parent.spanId)
  assert.match(formatTraceparent(child), /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/)
  const root = childContext(null)
  assert.match(formatTraceparent(root), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
  assert.deepEqual(parseTraceparent(formatTraceparent(root)), { ...root, tracestate: null })
})
