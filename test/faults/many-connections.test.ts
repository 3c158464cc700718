// 10,000 idle connections against a broker in a child process with the default maxConnections
// (10,000): a healthy one plus 9,999 that connect and send nothing. Guards exercised:
// - maxConnections: every connection up to the limit is accepted and stays open (the default
//   idle timeout is 10 minutes), each costs the broker little memory (measured from its RSS),
//   and the healthy one is served throughout; one over the limit is closed at once, and the
//   refusals are logged, rate-limited;
// - when the idle connections close, the broker's open descriptors (so its connections) are
//   back to where they were, and new connections are accepted again. Its RSS does not fall back
//   (V8 and malloc keep freed pages, so RSS says little once memory is freed), so what is
//   checked is that nothing is kept per connection: the broker's live heap objects, counted in
//   a heap snapshot (--heapsnapshot-signal, which collects garbage first; written to a temporary
//   directory and deleted), are back near where they were once the connections close, and a
//   second round of 9,999 connections leaves no more behind than the first.
// The test process holds the 10,000 client sockets itself (the file-descriptor limit here is
// 20,000), opened in bounded batches and closed with RST so no TIME_WAIT is left behind.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { ApiVersions, Metadata } from '../../src/protocol/apis/index.ts'
import { ErrorCode } from '../../src/protocol/error-codes.ts'
import { BrokerProcess, tempDir } from '../helpers/broker-process.ts'
import { mib, openFds, rssBytes } from '../helpers/process-memory.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { waitFor } from '../helpers/wait.ts'

const LIMIT = 10_000 // the default maxConnections
const BATCH = 250
const REFUSED = 15

const dir = tempDir('tideway-many-conns-')
const snapshots = tempDir('tideway-many-conns-heap-')
const broker = new BrokerProcess(dir.path)
const sockets: Socket[] = []
let healthy: RawClient | undefined

before(async () => {
  const nodeOptions = process.env.NODE_OPTIONS
  process.env.NODE_OPTIONS = `${nodeOptions ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshots.path}`.trim()
  try {
    await broker.start()
  } finally {
    if (nodeOptions === undefined) delete process.env.NODE_OPTIONS
    else process.env.NODE_OPTIONS = nodeOptions
  }
})
after(async () => {
  for (const socket of sockets) socket.destroy()
  healthy?.close()
  await broker.kill9()
  dir.remove()
  snapshots.remove()
})

/** The broker's live heap objects: the node count of a heap snapshot, taken after a full GC. */
async function liveHeapObjects(pid: number): Promise<number> {
  process.kill(pid, 'SIGUSR2')
  const written = await waitFor(() => {
    const files = readdirSync(snapshots.path)
    return files.length > 0 && files
  }, { timeoutMs: 30_000, what: 'the heap snapshot' })
  // The broker answers only once the snapshot is written: its event loop is busy until then.
  await healthy!.request(ApiVersions, 3, { clientSoftwareName: 'gc', clientSoftwareVersion: '1' }, 30_000)
  const header = readFileSync(`${snapshots.path}/${written[0]}`).subarray(0, 64 * 1024).toString('latin1')
  for (const file of written) rmSync(`${snapshots.path}/${file}`)
  const count = /"node_count":(\d+)/.exec(header)
  assert.ok(count, 'the heap snapshot names its node count')
  return Number(count[1])
}

async function openIdle(count: number): Promise<void> {
  for (let opened = 0; opened < count; ) {
    const n = Math.min(BATCH, count - opened)
    sockets.push(...(await Promise.all(Array.from({ length: n }, () => open(broker.port)))))
    opened += n
  }
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket))
    socket.on('error', () => {})
    socket.once('error', reject)
  })
}

function closedWithin(socket: Socket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true)
    const timer = setTimeout(() => resolve(false), timeoutMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

test('guard maxConnections: 10,000 connections are held cheaply, the next is refused, and all is given back when they close', { timeout: 120_000 }, async () => {
  const pid = broker.pid!
  healthy = await RawClient.connect(broker.bootstrap)
  await healthy.request(Metadata, 8, { topics: [], allowAutoTopicCreation: false })
  const fdsBefore = openFds(pid)
  const objectsBefore = await liveHeapObjects(pid)
  const rssBefore = rssBytes(pid)
  const started = Date.now()
  await openIdle(LIMIT - 1)
  await waitFor(() => openFds(pid) - fdsBefore >= LIMIT - 1, { timeoutMs: 30_000, what: 'the broker to accept every connection' })
  const openMs = Date.now() - started
  const metadata = await healthy.request(Metadata, 8, { topics: [], allowAutoTopicCreation: false })
  assert.equal(metadata.brokers.length, 1, 'the healthy connection is served with 10,000 open')

  // Over the limit: closed at once, logged at most 10 times a second with a count of the rest.
  const excess = await Promise.all(Array.from({ length: REFUSED }, () => open(broker.port).catch(() => undefined)))
  for (const socket of excess) if (socket) assert.ok(await closedWithin(socket, 5_000), 'a connection over the limit is closed')
  await delay(1100)
  const last = await open(broker.port).catch(() => undefined)
  if (last) assert.ok(await closedWithin(last, 5_000), 'a connection over the limit is closed')
  const refusals = await waitFor(() => {
    const lines = broker.log.split('\n').filter((line) => line.includes('connection refused: maxConnections reached'))
    return lines.some((line) => line.includes('suppressedSinceLast')) && lines
  }, { timeoutMs: 5_000, what: 'a refusal logged with the count of suppressed ones' })
  assert.ok(refusals.length <= 10 + 1, `${refusals.length} refusal lines for ${REFUSED + 1} refusals`)

  // A while later the idle ones are all still there, and a sample of them is answered.
  await delay(2000)
  const rssHeld = rssBytes(pid)
  const objectsHeld = await liveHeapObjects(pid)
  assert.equal(sockets.filter((s) => s.destroyed).length, 0, 'no idle connection was closed')
  assert.ok(openFds(pid) - fdsBefore >= LIMIT - 1, 'the broker still holds every connection')
  for (const [i, socket] of sockets.filter((_, i) => i % 1000 === 0).entries()) {
    const answer = await askApiVersions(socket, 9000 + i)
    assert.equal(answer, 9000 + i)
  }

  const closeAll = async () => {
    for (const socket of sockets.splice(0)) socket.resetAndDestroy()
    await waitFor(() => openFds(pid) <= fdsBefore, { timeoutMs: 30_000, what: 'the broker to close its side of every connection' })
  }
  await closeAll()
  const objectsAfterOnce = await liveHeapObjects(pid)
  await openIdle(LIMIT - 1)
  await waitFor(() => openFds(pid) - fdsBefore >= LIMIT - 1, { timeoutMs: 30_000, what: 'the broker to accept every connection again' })
  await closeAll()
  const objectsAfterTwice = await liveHeapObjects(pid)
  const perConnectionObjects = (objectsHeld - objectsBefore) / (LIMIT - 1)
  const perConnection = (rssHeld - rssBefore) / (LIMIT - 1)
  process.stdout.write(
    `# many-connections: ${LIMIT} connections open in ${openMs} ms; broker RSS ${mib(rssBefore)} before, ${mib(rssHeld)} with them ` +
      `(${(perConnection / 1024).toFixed(1)} KiB per idle connection); live heap objects ${objectsBefore} before, ${objectsHeld} with them ` +
      `(${perConnectionObjects.toFixed(0)} per connection), ${objectsAfterOnce} once they closed, ${objectsAfterTwice} after a second round; ` +
      `${refusals.length} refusal lines for ${REFUSED + 1} refused\n`,
  )
  assert.ok(perConnection < 100 * 1024, `${(perConnection / 1024).toFixed(1)} KiB per idle connection`)
  const held = objectsHeld - objectsBefore
  assert.ok(objectsAfterOnce - objectsBefore < held / 20, `${objectsAfterOnce - objectsBefore} heap objects left behind by ${LIMIT - 1} closed connections`)
  assert.ok(objectsAfterTwice - objectsAfterOnce < held / 20, `a second round left ${objectsAfterTwice - objectsAfterOnce} more heap objects behind`)

  // Room again: new connections are accepted and served.
  const again = await RawClient.connect(broker.bootstrap)
  try {
    const answer = await again.request(ApiVersions, 3, { clientSoftwareName: 'again', clientSoftwareVersion: '1' })
    assert.equal(answer.errorCode, ErrorCode.NONE)
  } finally {
    again.close()
  }
})

/** Sends ApiVersions v0 on a plain socket and resolves with the answer's correlation id. */
function askApiVersions(socket: Socket, correlationId: number): Promise<number> {
  const frame = Buffer.alloc(14)
  frame.writeInt32BE(10, 0)
  frame.writeInt16BE(ApiVersions.key, 4)
  frame.writeInt16BE(0, 6)
  frame.writeInt32BE(correlationId, 8)
  frame.writeInt16BE(-1, 12)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer on an idle connection')), 10_000)
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer)
      resolve(chunk.readInt32BE(4))
    })
    socket.write(frame)
  })
}
