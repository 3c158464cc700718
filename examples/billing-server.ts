// The seed's billing service: an HTTP endpoint that charges an account, safe to call again.
// The caller (the orders service) sends a `sequence_key` with every charge and the same key with
// `is_retry: true` when it did not get an answer. The key is stored with the response in the same
// database transaction as the new balance (handleIdempotently), so a retry gets the original
// response back and the balance changes once, whether the first answer was lost or never sent.
//
//   node examples/billing-server.ts [--port 8080] [--db billing.db]
//   curl -s localhost:8080/charge -d '{"account":"alice","amount":30,"sequence_key":"order-17"}'
//   curl -s localhost:8080/charge -d '{"account":"alice","amount":30,"sequence_key":"order-17","is_retry":true}'
//   curl -s localhost:8080/balance?account=alice
import { createServer, type IncomingMessage } from 'node:http'
import { parseArgs } from 'node:util'
import { handleIdempotently, sqliteStore } from '../src/index.ts'

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, db: { type: 'string', default: 'billing.db' } } })
const store = sqliteStore(values.db)
await store.migrate()
await store.transaction((tx) => tx.query('CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, cents INTEGER NOT NULL)'))

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
}

const server = createServer(async (req, res) => {
  const reply = (status: number, payload: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(payload))
  }
  try {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (req.method === 'GET' && url.pathname === '/balance') {
      const account = url.searchParams.get('account') ?? ''
      const [row] = await store.transaction((tx) => tx.query<{ cents: number }>('SELECT cents FROM balances WHERE account = ?', [account]))
      return reply(200, { account, cents: row?.cents ?? 0 })
    }
    if (req.method !== 'POST' || url.pathname !== '/charge') return reply(404, { error: 'not found' })
    const charge = (await body(req)) as { account?: string; amount?: number; sequence_key?: string; is_retry?: boolean }
    if (!charge.account || !Number.isInteger(charge.amount) || !charge.sequence_key) {
      return reply(400, { error: 'account, amount (whole cents) and sequence_key are required' })
    }
    const { response, replayed } = await handleIdempotently(store, { scope: 'charge', key: charge.sequence_key }, async (tx) => {
      await tx.query('INSERT INTO balances (account, cents) VALUES (?, 0) ON CONFLICT (account) DO NOTHING', [charge.account])
      await tx.query('UPDATE balances SET cents = cents - ? WHERE account = ?', [charge.amount, charge.account])
      const [row] = await tx.query<{ cents: number }>('SELECT cents FROM balances WHERE account = ?', [charge.account])
      return { status: 'charged', account: charge.account, amount: charge.amount, balance: row!.cents, sequence_key: charge.sequence_key }
    })
    res.setHeader('idempotent-replayed', String(replayed))
    reply(200, response)
  } catch (err) {
    reply(500, { error: err instanceof Error ? err.message : String(err) })
  }
})
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ event: 'listening', port: (server.address() as { port: number }).port }) + '\n')
})
const stop = () => server.close(() => void store.close().then(() => process.exit(0)))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
