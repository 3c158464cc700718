// The web console, mounted on the broker's HTTP endpoint: one page (page.ts: HTML, CSS and a
// plain ES module, no build step) over a JSON API under /api/ (api.ts, sources.ts). It reads the
// broker's state in-process; its one action, redriving dead letters, goes through a Kafka client
// (redrive.ts).
//
// Security model. Everything a record holds is the producer's, so the page builds its DOM with
// textContent only, under a Content-Security-Policy that allows no inline script. Reads are
// GETs. Actions exist only with consoleActions, are POSTs with a JSON body, and are refused
// (403) unless they come from the console's own page: the Origin must be the console's own, and
// the request must carry the per-process token the page was served with, in a custom header a
// cross-site form cannot set. On a loopback address the Host must be a loopback name, so a DNS
// rebinding page cannot read the console either.

import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { BrokerServices } from '../broker/handler.ts'
import { sendJson, sendText, type HttpRoute } from '../broker/http/http-endpoint.ts'
import type { Logger } from '../logger.ts'
import { browseDeadLetters, browseRecords, ConsoleError, describeGroup, describeTopic, Limits, listDeadLetterTopics, listGroups, listTopics, type PageQuery } from './api.ts'
import { consolePage, CONSOLE_CSS, CONSOLE_JS } from './page.ts'
import { redrive, type RedriveRequest } from './redrive.ts'
import { BreakerSource, SagaSource } from './sources.ts'
import { isView } from './values.ts'

export const TOKEN_HEADER = 'x-tideway-console-token'
const MAX_BODY_BYTES = 16 * 1024

export interface ConsoleOptions {
  readonly services: BrokerServices
  readonly logger: Logger
  /** Where the HTTP endpoint listens (the bound address, port included). */
  readonly listening: { readonly host: string; readonly port: number }
}

export interface RunningConsole {
  readonly route: HttpRoute
  /** Closes the saga database and Redis connections the console opened. */
  close(): Promise<void>
}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
}

export function startConsole({ services, logger, listening }: ConsoleOptions): RunningConsole {
  const { config } = services
  const token = randomBytes(24).toString('base64url')
  const sagas = new SagaSource(config.consoleSagaDb, config.consoleSagaSchema)
  const breakers = new BreakerSource(config.consoleRedis, config.consoleBreakerPrefix)
  const page = consolePage({ actions: config.consoleActions, token: config.consoleActions ? token : null })
  const hosts = allowedHosts(listening)
  const redrives = new Set<Promise<unknown>>()

  const assets = new Map([
    ['/', { body: page, type: 'text/html; charset=utf-8' }],
    ['/console.js', { body: CONSOLE_JS, type: 'text/javascript; charset=utf-8' }],
    ['/console.css', { body: CONSOLE_CSS, type: 'text/css; charset=utf-8' }],
  ])

  const route: HttpRoute = async (req, res, url) => {
    const path = url.pathname
    const asset = assets.get(path)
    if (!asset && !path.startsWith('/api/')) return false
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value)
    try {
      if (hosts && !hosts.has(req.headers.host ?? '')) {
        throw new ConsoleError(403, `this console answers to ${[...hosts].join(' or ')} only (a guard against DNS rebinding)`)
      }
      if (req.method === 'POST') sendJson(res, 200, await act(req, path))
      else if (req.method !== 'GET' && req.method !== 'HEAD') throw new ConsoleError(400, `${req.method} is not served here`)
      else if (asset) sendText(res, 200, asset.body, asset.type)
      else sendJson(res, 200, await answer(path.split('/').slice(2).map(decodePart), url.searchParams))
    } catch (err) {
      if (!(err instanceof ConsoleError)) throw err
      sendJson(res, err.status, { error: err.message })
    }
    return true
  }

  const act = async (req: IncomingMessage, path: string) => {
    const request = redriveRequestOf(path, await postBody(req, config.consoleActions, token))
    const work = redrive(services, request.topic, request.what)
    redrives.add(work)
    try {
      const result = await work
      logger.info('console redrive', { topic: request.topic, sent: result.sent, redriveId: result.redriveId })
      return result
    } finally {
      redrives.delete(work)
    }
  }

  const answer = async (parts: string[], query: URLSearchParams): Promise<unknown> => {
    const [section, name, sub, partition, leaf] = parts
    const { topics, groups } = services
    switch (section) {
      case 'overview':
        return {
          clusterId: services.clusterId,
          nodeId: config.nodeId,
          bootstrap: `${services.advertised.host}:${services.advertised.port}`,
          actions: config.consoleActions,
          limits: Limits,
        }
      case 'topics':
        if (name === undefined) return listTopics(topics)
        if (sub === undefined) return describeTopic(topics, name)
        if (sub === 'partitions' && partition !== undefined && leaf === 'records' && parts.length === 5) {
          return browseRecords(topics, name, partitionOf(partition), pageQueryOf(query))
        }
        break
      case 'groups':
        if (name === undefined) return listGroups(groups, topics)
        if (sub === undefined) return describeGroup(groups, topics, name)
        break
      case 'dead-letters':
        if (name === undefined) return listDeadLetterTopics(topics, groups)
        if (sub === undefined) return browseDeadLetters(topics, groups, name, partitionOf(query.get('partition') ?? '0'), pageQueryOf(query))
        break
      case 'sagas':
        if (name === undefined) return sagas.list(query.get('status') || null)
        if (sub === undefined) return sagas.show(name)
        break
      case 'breakers':
        if (name === undefined) return breakers.list()
        break
    }
    throw new ConsoleError(404, `no such API: /api/${parts.join('/')}`)
  }

  return {
    route,
    async close() {
      await Promise.allSettled([...redrives])
      await Promise.all([sagas.close(), breakers.close()])
    },
  }
}

/** On a loopback address, the Host names the console may be reached by; elsewhere, null (any). */
function allowedHosts({ host, port }: { host: string; port: number }): Set<string> | null {
  const loopback = host === '::1' || host.startsWith('127.')
  return loopback ? new Set([`${host.includes(':') ? `[${host}]` : host}:${port}`, `localhost:${port}`]) : null
}

/** The body of an action, once the request has shown it comes from the console's own page. */
async function postBody(req: IncomingMessage, actions: boolean, token: string): Promise<unknown> {
  if (!actions) throw new ConsoleError(403, 'console actions are off: start the broker with --console-actions to redrive dead letters from the console')
  const origin = req.headers.origin
  if (origin === undefined || origin !== `http://${req.headers.host}`) throw new ConsoleError(403, 'cross-site request refused: an action must come from the console\'s own page')
  const given = Buffer.from(String(req.headers[TOKEN_HEADER] ?? ''))
  const expected = Buffer.from(token)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new ConsoleError(403, 'missing or wrong console token: reload the console page')
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) throw new ConsoleError(400, 'send the action as application/json')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw new ConsoleError(400, `the request body is over ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new ConsoleError(400, 'the request body is not JSON')
  }
}

/** POST /api/dead-letters/TOPIC/redrive with {"all": true} or {"partition": P, "offset": "N"}. */
function redriveRequestOf(path: string, body: unknown): { topic: string; what: RedriveRequest } {
  const m = /^\/api\/dead-letters\/([^/]+)\/redrive$/.exec(path)
  if (!m) throw new ConsoleError(404, `no action at ${path}`)
  const topic = decodePart(m[1]!)
  const b = (typeof body === 'object' && body !== null ? body : {}) as { all?: unknown; partition?: unknown; offset?: unknown }
  if (b.all === true) return { topic, what: { all: true } }
  if (typeof b.partition === 'number' && Number.isInteger(b.partition) && (typeof b.offset === 'string' || typeof b.offset === 'number') && /^\d+$/.test(String(b.offset))) {
    return { topic, what: { partition: b.partition, offset: BigInt(b.offset) } }
  }
  throw new ConsoleError(400, 'say what to redrive: {"all": true} or {"partition": 0, "offset": "12"}')
}

function decodePart(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    throw new ConsoleError(400, `bad %-escape in "${text}"`)
  }
}

function partitionOf(text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new ConsoleError(400, `partition must be a whole number, got "${text}"`)
  return Number(text)
}

function pageQueryOf(query: URLSearchParams): PageQuery {
  const offset = query.get('offset')
  const limit = query.get('limit')
  const view = query.get('view') ?? 'auto'
  if (offset !== null && offset !== '' && !/^\d{1,19}$/.test(offset)) throw new ConsoleError(400, `offset must be a whole number, got "${offset}"`)
  const count = limit === null || limit === '' ? Limits.defaultRecords : Number(limit)
  if (!Number.isInteger(count) || count < 1 || count > Limits.maxRecords) throw new ConsoleError(400, `limit must be 1 to ${Limits.maxRecords}, got "${limit}"`)
  if (!isView(view)) throw new ConsoleError(400, `view must be auto, json, text or hex, got "${view}"`)
  return { offset: offset ? BigInt(offset) : null, limit: count, view }
}
