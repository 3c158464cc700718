// A flaky external card processor, the callee of the orders service's circuit breaker. It is not
// part of the shop (it speaks plain HTTP, not Tideway): POST /authorize answers 200, or 503 for a
// share of calls, or never answers for another share (a hang the caller must time out), and it has
// a 4 s outage every 15 s of wall-clock time, so the breaker has something to open on.
import { createServer } from 'node:http'
import { emit, onShutdown, shopConfig } from '../common.ts'

const config = shopConfig()
const OUTAGE_EVERY_MS = 15_000
const OUTAGE_MS = 4_000

const server = createServer((req, res) => {
  req.resume()
  if (req.method !== 'POST' || req.url !== '/authorize') {
    res.writeHead(404).end()
    return
  }
  const inOutage = Date.now() % OUTAGE_EVERY_MS < OUTAGE_MS
  const roll = Math.random()
  if (!inOutage && roll < config.providerHangRate) return // the caller's timeout ends it
  if (inOutage || roll < config.providerHangRate + config.providerFailRate) {
    res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"try later"}')
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"authorized":true}')
})
server.listen(config.ports.provider, '127.0.0.1', () => emit({ event: 'ready', port: config.ports.provider }))
onShutdown(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})
