// The seed's billing example (examples/billing-server.ts, a plain node:http server over
// handleIdempotently and a real SQLite file): the same charge sent three times, the first one's
// response lost on the way, changes the balance once, and both answers the caller does get are
// the same response.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/broker-process.ts'
import { waitFor } from '../helpers/wait.ts'

const SERVER = fileURLToPath(new URL('../../examples/billing-server.ts', import.meta.url))
const dir = tempDir()
let base = ''
const server = spawn(process.execPath, [SERVER, '--port', '0', '--db', join(dir.path, 'billing.db')], { stdio: ['ignore', 'pipe', 'inherit'] })
const killer = setTimeout(() => server.kill('SIGKILL'), 120_000)

before(async () => {
  base = await new Promise<string>((resolve, reject) => {
    let out = ''
    server.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      const match = /"port":(\d+)/.exec(out)
      if (match) resolve(`http://127.0.0.1:${match[1]}`)
    })
    server.once('exit', (code) => reject(new Error(`billing server exited (${code})`)))
  })
})
after(async () => {
  clearTimeout(killer)
  server.kill('SIGTERM')
  await new Promise((resolve) => server.once('exit', resolve))
  dir.remove()
})

const charge = (body: object) => fetch(`${base}/charge`, { method: 'POST', body: JSON.stringify(body) })
const balance = async (account: string) => ((await (await fetch(`${base}/balance?account=${account}`)).json()) as { cents: number }).cents

/** Sends a charge and closes the connection without reading the answer: the response is lost. */
function chargeAndHangUp(body: object): Promise<void> {
  const { port } = new URL(base)
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.end(`POST /charge HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`)
      socket.destroy()
      resolve()
    })
    socket.on('error', reject)
  })
}

test('a charge sent 3 times, the first answer lost, moves the balance once and answers the same each time', { timeout: 60_000 }, async () => {
  const request = { account: 'alice', amount: 30, sequence_key: 'order-17' }
  await chargeAndHangUp(request)
  await waitFor(async () => (await balance('alice')) === -30, { what: 'the first attempt to be applied although its answer was lost' })

  const second = await charge({ ...request, is_retry: true })
  const third = await charge({ ...request, is_retry: true })
  assert.equal(second.status, 200)
  assert.equal(second.headers.get('idempotent-replayed'), 'true')
  const answers = [await second.json(), await third.json()]
  assert.deepEqual(answers[0], { status: 'charged', account: 'alice', amount: 30, balance: -30, sequence_key: 'order-17' })
  assert.deepEqual(answers[1], answers[0], 'the same response every time')
  assert.equal(await balance('alice'), -30, 'charged once')

  const other = await charge({ account: 'alice', amount: 5, sequence_key: 'order-18' })
  assert.equal(other.headers.get('idempotent-replayed'), 'false')
  assert.equal(((await other.json()) as { balance: number }).balance, -35, 'a new key is a new charge')
})

test('concurrent copies of one charge are applied once', { timeout: 60_000 }, async () => {
  const request = { account: 'bob', amount: 7, sequence_key: 'order-99' }
  const answers = await Promise.all(Array.from({ length: 5 }, () => charge(request).then((r) => r.json())))
  for (const answer of answers) assert.deepEqual(answer, answers[0])
  assert.equal(await balance('bob'), -7)
})
