// The TCP listener: accepts connections up to a limit (the ones over it are closed at once and
// logged, rate-limited) and, on close, stops accepting, lets every connection finish what it
// already received (bounded by a timeout), then returns.

import { createServer, type Server, type Socket } from 'node:net'
import type { Logger } from '../logger.ts'
import { Connection, type ConnectionLimits } from './connection.ts'
import type { HandlerEntry } from './handler.ts'
import { listenOn } from './listen.ts'

export interface ListenOptions {
  readonly host: string
  readonly port: number
  readonly maxConnections: number
  readonly limits: ConnectionLimits
}

export class BrokerServer {
  readonly #server: Server
  readonly #connections = new Set<Connection>()
  readonly #logger: Logger
  #nextId = 1

  constructor(handlers: ReadonlyMap<number, HandlerEntry>, options: ListenOptions, logger: Logger) {
    this.#logger = logger
    this.#server = createServer({ noDelay: true }, (socket: Socket) => {
      const connection = new Connection(this.#nextId++, socket, handlers, options.limits, logger)
      options.limits.metrics?.connectionsAccepted.inc()
      this.#connections.add(connection)
      socket.once('close', () => this.#connections.delete(connection))
    })
    this.#server.maxConnections = options.maxConnections
    // Node accepts and at once closes a connection over the limit; a flood of them shares the
    // bad-input warning limiter, so it cannot flood the log.
    this.#server.on('drop', (data) => {
      const admitted = options.limits.warnings.admit()
      if (!admitted) return
      this.#logger.warn('connection refused: maxConnections reached', {
        ...(admitted.suppressed > 0 ? { suppressedSinceLast: admitted.suppressed } : {}),
        peer: `${data?.remoteAddress}:${data?.remotePort}`,
        maxConnections: options.maxConnections,
      })
    })
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenOn(this.#server, host, port)
  }


  get connectionCount(): number {
    return this.#connections.size
  }

  async close(timeoutMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    await Promise.all([...this.#connections].map((c) => c.drain(timeoutMs)))
    await closed
  }
}
