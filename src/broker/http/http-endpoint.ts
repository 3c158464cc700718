// The broker's HTTP side: /metrics (Prometheus text), /health (the process answers) and /ready
// (the logs are open and the Kafka listener accepts), then whatever routes are mounted after
// them (the web console). It runs in the broker's process so it sees live state without a
// client of its own, and on its own port so scraping never competes with the Kafka listener's
// connection limit.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from '../../logger.ts'
import { PROMETHEUS_CONTENT_TYPE, type MetricsRegistry } from '../metrics/registry.ts'
import { listenOn } from '../listen.ts'

/** Answers a request and returns true, or returns false to let the next route try. */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean

export interface HealthReport {
  readonly ready: boolean
  readonly [detail: string]: unknown
}

export interface HttpEndpointOptions {
  readonly metrics: MetricsRegistry
  readonly health: () => HealthReport
  readonly logger: Logger
  readonly routes?: readonly HttpRoute[]
}

/** "host:port" or "off" → where to listen, or null. IPv6 hosts go in brackets: "[::1]:8080". */
export function parseHttpAddress(text: string): { host: string; port: number } | null {
  if (text === 'off' || text === '') return null
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text)
  const port = m ? Number(m[3]) : NaN
  if (!m || !Number.isInteger(port) || port > 65535) throw new Error(`expected host:port or off, got "${text}"`)
  return { host: m[1] ?? m[2]!, port }
}

export class HttpEndpoint {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()

  constructor(options: HttpEndpointOptions) {
    const routes = options.routes ?? []
    this.#server = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        options.logger.error('http request failed', { err, url: req.url })
        if (!res.headersSent) sendText(res, 500, 'internal error\n')
        else res.destroy()
      })
    })
    // A scrape or a console page is small; a client that never finishes sending one is dropped.
    this.#server.requestTimeout = 30_000
    this.#server.headersTimeout = 10_000
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })

    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      if (url.pathname === '/metrics' && isRead(req)) return sendText(res, 200, options.metrics.render(), PROMETHEUS_CONTENT_TYPE)
      if (url.pathname === '/health' && isRead(req)) return sendJson(res, 200, { status: 'ok' })
      if (url.pathname === '/ready' && isRead(req)) {
        const report = options.health()
        return sendJson(res, report.ready ? 200 : 503, { status: report.ready ? 'ready' : 'not ready', ...report })
      }
      for (const route of routes) if (await route(req, res, url)) return
      sendText(res, 404, 'not found\n')
    }
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenOn(this.#server, host, port)
  }


  /** Stops at once: an open console tab or a scrape in flight must not hold a shutdown. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    for (const socket of this.#sockets) socket.destroy()
    return closed
  }
}

const isRead = (req: IncomingMessage) => req.method === 'GET' || req.method === 'HEAD'

export function sendText(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
  sendText(res, status, body, 'application/json; charset=utf-8')
}
