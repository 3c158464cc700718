// Idempotent producers across broker crashes: python confluent-kafka (enable.idempotence) and
// KafkaJS (idempotent: true) each write 20,000 records while the broker process is kill -9ed and
// restarted twice on the same data. The clients resend what they had in flight; the restarted
// broker, which rebuilt each producer's last batches from its snapshot and the log, must
// recognise what it already stored. Every record ends up stored exactly once, in order.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { spawn } from 'node:child_process'
import { createTopic } from '../helpers/admin.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { uniqueName } from '../helpers/embedded.ts'
import { partitionValues, RawClient } from '../helpers/raw-client.ts'
import { assertExactlyOnceInOrder, writeWithKafkaJSIdempotent } from '../helpers/sequenced-records.ts'
import { PYTHON, requirePythonKafka } from '../helpers/tools.ts'
import { totalsLine } from '../helpers/history.ts'
import { waitFor } from '../helpers/wait.ts'

const PARTITIONS = 3
const RECORDS = 20_000
const PRODUCER_SCRIPT = fileURLToPath(new URL('../integration/clients/confluent_idempotent_producer.py', import.meta.url))

const dir = tempDir()
const broker = new BrokerProcess(dir.path)
before(() => broker.start())
after(async () => {
  await broker.kill9()
  dir.remove()
})

async function storedValues(topic: string, partition: number): Promise<string[]> {
  const raw = await RawClient.connect(broker.bootstrap)
  try {
    return await partitionValues(raw, topic, partition)
  } finally {
    raw.socket.destroy()
  }
}

test('python idempotent producer across two broker kill -9s: each record stored once, in order', { timeout: 240_000 }, async (t) => {
  requirePythonKafka()
  const topic = uniqueName('idem-kill')
  await createTopic(broker.bootstrap, topic, PARTITIONS)

  const child = spawn(PYTHON, [PRODUCER_SCRIPT, broker.bootstrap, topic, 'k', String(RECORDS), String(PARTITIONS), '--slow'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const killer = setTimeout(() => child.kill('SIGKILL'), 200_000)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))

  await crashTwiceWhileWriting(topic, t.diagnostic.bind(t))
  const code = await exited
  clearTimeout(killer)
  assert.equal(code, 0, stderr)
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { delivered: number; errors: string[] }
  assert.deepEqual(report, { delivered: RECORDS, errors: [] })
  await assertStoredOnceInOrder(topic, 'k')
  t.diagnostic(totalsLine({ cycles: 2, recordsChecked: RECORDS, lost: 0, duplicates: 0, reorders: 0 }))
})

test('KafkaJS idempotent producer across two broker kill -9s: each record stored once, in order', { timeout: 240_000 }, async (t) => {
  const topic = uniqueName('idem-kill-js')
  await createTopic(broker.bootstrap, topic, PARTITIONS)
  const writing = writeWithKafkaJSIdempotent(broker.bootstrap, topic, { prefix: 'j', count: RECORDS, partitions: PARTITIONS, perSend: 50 })
  writing.catch(() => {}) // awaited below; a failure must not surface as an unhandled rejection meanwhile
  await crashTwiceWhileWriting(topic, t.diagnostic.bind(t))
  await writing
  await assertStoredOnceInOrder(topic, 'j')
  t.diagnostic(totalsLine({ cycles: 2, recordsChecked: RECORDS, lost: 0, duplicates: 0, reorders: 0 }))
})

/** kill -9 and restart the broker when about 4,000 and 10,000 records are stored. */
async function crashTwiceWhileWriting(topic: string, diagnostic: (message: string) => void): Promise<void> {
  for (const threshold of [4_000, 10_000]) {
    await waitFor(async () => (await storedValues(topic, 0)).length * PARTITIONS >= threshold, { timeoutMs: 60_000, intervalMs: 100, what: `${threshold} records stored` })
    await broker.kill9()
    diagnostic(`broker killed with about ${threshold} records stored`)
    await broker.start()
  }
}

function assertStoredOnceInOrder(topic: string, prefix: string): Promise<void> {
  return assertExactlyOnceInOrder((p) => storedValues(topic, p), prefix, RECORDS, PARTITIONS)
}
