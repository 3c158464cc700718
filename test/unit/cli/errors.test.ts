// Client failures become one sentence, chosen by error class and Kafka error name. The errors
// are built with @platformatic/kafka's own classes, nested the way its clients nest them.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MultipleErrors, NetworkError, ProtocolError, TimeoutError } from '@platformatic/kafka'
import { CommandError, explainClientError, hasKafkaError } from '../../../src/cli/errors.ts'

const context = { action: 'create topic "orders"', bootstrap: '127.0.0.1:9092', topic: 'orders' }

/** What a client operation rejects with: operation -> retries -> response -> partition error. */
function nested(leaf: Error): Error {
  const response = new MultipleErrors('Received response with error', [leaf])
  return new MultipleErrors('Creating topics failed.', [new MultipleErrors('createTopics failed 2 times.', [response, response])])
}

test('Kafka errors about the topic read as sentences about the topic', () => {
  assert.equal(explainClientError(nested(new ProtocolError('UNKNOWN_TOPIC_OR_PARTITION')), context)?.message, 'topic "orders" does not exist')
  assert.equal(explainClientError(nested(new ProtocolError('TOPIC_ALREADY_EXISTS')), context)?.message, 'topic "orders" already exists')
  assert.equal(
    explainClientError(nested(new ProtocolError('INVALID_CONFIG', 'retention.ms must be an integer')), context)?.message,
    'cannot create topic "orders": invalid config (retention.ms must be an integer)',
  )
})

test('any other Kafka error is named, with the broker\'s message when it sent one', () => {
  assert.equal(
    explainClientError(nested(new ProtocolError('INVALID_PARTITIONS', 'partitions must be at least 1')), context)?.message,
    'cannot create topic "orders": INVALID_PARTITIONS (partitions must be at least 1)',
  )
  assert.match(explainClientError(nested(new ProtocolError('POLICY_VIOLATION')), context)!.message, /^cannot create topic "orders": POLICY_VIOLATION \(.+\)$/)
})

test('a refused connection names the bootstrap and the system error', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), { code: 'ECONNREFUSED' })
  const error = nested(new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to 127.0.0.1:9092 failed.', { cause: refused })]))
  assert.equal(explainClientError(error, context)?.message, 'cannot reach a broker at 127.0.0.1:9092 (connect ECONNREFUSED 127.0.0.1:9092)')
})

test('a timeout says which broker did not answer', () => {
  assert.equal(
    explainClientError(nested(new TimeoutError('Request timed out')), context)?.message,
    'cannot create topic "orders": no answer from the broker at 127.0.0.1:9092 in time',
  )
})

test('errors that are not the client\'s are left alone, to surface as bugs', () => {
  assert.equal(explainClientError(new TypeError('x is undefined'), context), undefined)
  const ours = new CommandError('already explained')
  assert.equal(explainClientError(ours, context), ours)
})

test('a Kafka error is found by name however deep the client nested it', () => {
  const error = nested(new ProtocolError('OFFSET_OUT_OF_RANGE'))
  assert.equal(hasKafkaError(error, 'OFFSET_OUT_OF_RANGE'), true)
  assert.equal(hasKafkaError(error, 'UNKNOWN_TOPIC_OR_PARTITION'), false)
  assert.equal(hasKafkaError(new Error('OFFSET_OUT_OF_RANGE'), 'OFFSET_OUT_OF_RANGE'), false, 'never by message text')
})
