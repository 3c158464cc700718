// The Prometheus text format as the registry writes it: HELP and TYPE once per family, label
// values escaped, histogram buckets cumulative with +Inf equal to the count, gauges set by a
// collector at render time and forgotten when their subject disappears.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MetricsRegistry } from '../../../src/broker/metrics/registry.ts'

test('counters and gauges render one sample per label set, with escaped label values', () => {
  const registry = new MetricsRegistry()
  const requests = registry.counter('t_requests_total', 'Requests.', ['api'])
  const open = registry.gauge('t_open', 'Open things.')
  requests.inc({ api: 'Produce' })
  requests.inc({ api: 'Produce' }, 2)
  requests.inc({ api: 'a "quoted"\\name\nnext' })
  open.set(7)
  assert.equal(
    registry.render(),
    [
      '# HELP t_requests_total Requests.',
      '# TYPE t_requests_total counter',
      't_requests_total{api="Produce"} 3',
      't_requests_total{api="a \\"quoted\\"\\\\name\\nnext"} 1',
      '# HELP t_open Open things.',
      '# TYPE t_open gauge',
      't_open 7',
      '',
    ].join('\n'),
  )
  assert.throws(() => requests.inc({ api: 'x' }, -1), /only goes up/)
  assert.throws(() => requests.inc({}), /label api missing/)
  assert.throws(() => registry.counter('t_open', 'again'), /registered twice/)
  assert.throws(() => registry.counter('bad-name', 'x'), /bad metric name/)
})

test('a histogram has cumulative buckets, +Inf equal to its count, and a sum', () => {
  const registry = new MetricsRegistry()
  const latency = registry.histogram('t_seconds', 'Latency.', ['api'], [0.01, 0.1, 1])
  for (const v of [0.005, 0.01, 0.05, 0.5, 3]) latency.observe(v, { api: 'Fetch' })
  const lines = registry.render().split('\n')
  assert.deepEqual(lines.filter((l) => l.startsWith('t_seconds')), [
    't_seconds_bucket{api="Fetch",le="0.01"} 2',
    't_seconds_bucket{api="Fetch",le="0.1"} 3',
    't_seconds_bucket{api="Fetch",le="1"} 4',
    't_seconds_bucket{api="Fetch",le="+Inf"} 5',
    't_seconds_sum{api="Fetch"} 3.565',
    't_seconds_count{api="Fetch"} 5',
  ])
  assert.throws(() => registry.histogram('t_le', 'x', ['le']), /reserved/)
})

test('a collector sets gauges at render time; clear() drops series that no longer exist', () => {
  const registry = new MetricsRegistry()
  const bytes = registry.gauge('t_bytes', 'Bytes.', ['topic'])
  let topics = new Map([['a', 10], ['b', 20]])
  registry.collect(() => {
    bytes.clear()
    for (const [topic, size] of topics) bytes.set(size, { topic })
  })
  assert.match(registry.render(), /t_bytes\{topic="a"\} 10\nt_bytes\{topic="b"\} 20\n/)
  topics = new Map([['b', 25]])
  const after = registry.render()
  assert.doesNotMatch(after, /topic="a"/)
  assert.match(after, /t_bytes\{topic="b"\} 25\n/)
})
