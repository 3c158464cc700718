// What the dispatcher records for every request: its count and latency by API, every non-zero
// error code in the answer by Kafka name, and a handler that throws (a broker bug, which no real
// request triggers on purpose: here a handler that throws stands in for one).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { dispatch } from '../../../src/broker/dispatch.ts'
import { defineHandler, type HandlerEntry } from '../../../src/broker/handler.ts'
import { BrokerMetrics } from '../../../src/broker/metrics/broker-metrics.ts'
import { silentLogger } from '../../../src/logger.ts'
import { ListGroups } from '../../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../../src/protocol/error-codes.ts'
import { writeRequestHeader } from '../../../src/protocol/headers.ts'
import { Writer } from '../../../src/protocol/primitives.ts'

function listGroupsFrame(): Buffer {
  const w = new Writer()
  writeRequestHeader(w, { apiKey: ListGroups.key, apiVersion: 4, correlationId: 7, clientId: 'test' }, true)
  ListGroups.encodeRequest(4, w, { statesFilter: [] })
  return w.toBuffer()
}

const run = (handler: HandlerEntry, metrics: BrokerMetrics) =>
  dispatch(listGroupsFrame(), {
    handlers: new Map([[ListGroups.key, handler]]),
    logger: silentLogger,
    signal: new AbortController().signal,
    metrics,
  })

test('requests, their latency and the error codes they answered are counted by API', async () => {
  const metrics = new BrokerMetrics()
  const answering = defineHandler(ListGroups, () => ({ throttleTimeMs: 0, errorCode: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, groups: [] }))
  await run(answering as unknown as HandlerEntry, metrics)
  await run(answering as unknown as HandlerEntry, metrics)
  assert.equal(metrics.requests.value({ api: 'ListGroups' }), 2)
  assert.equal(metrics.requestSeconds.count({ api: 'ListGroups' }), 2)
  assert.equal(metrics.errors.value({ api: 'ListGroups', error: 'COORDINATOR_LOAD_IN_PROGRESS' }), 2)
})

test('a handler that throws is counted as a handler failure, and the error still reaches the connection', async () => {
  const metrics = new BrokerMetrics()
  const broken = defineHandler(ListGroups, () => {
    throw new TypeError('a bug')
  })
  await assert.rejects(run(broken as unknown as HandlerEntry, metrics), /a bug/)
  assert.equal(metrics.handlerFailures.value({ api: 'ListGroups' }), 1)
  assert.match(metrics.registry.render(), /^tideway_handler_failures_total\{api="ListGroups"\} 1$/m)
})
