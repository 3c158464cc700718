// One client connection. Requests may be pipelined: each frame is dispatched as soon as it is
// whole (except that a fetch waits for the previous fetch's answer to be written, see
// #startReady), and responses are written strictly in request order (protocol guide, "Network"),
// so a long-poll fetch is never overtaken by a later request's answer. Limits: the frame size
// (checked before buffering), the number of outstanding requests (past it we stop reading, which
// pushes back on the client through TCP), the bytes waiting to be written (past them we stop
// reading and start no fetch), and the time a frame may take to arrive once it has begun
// (requestReadTimeoutMs: a slow-loris client trickling a frame is never idle, so the idle
// timeout alone would keep it for ever). That clock stops while we ourselves have stopped
// reading, so back-pressure never closes a connection.
//
// A frame we cannot parse closes this connection only; it is logged once with a bounded hex
// prefix, and no other connection notices.

import type { Socket } from 'node:net'
import type { Logger } from '../logger.ts'
import { FrameSplitter } from '../protocol/framing.ts'
import { dispatch, ProtocolViolation } from './dispatch.ts'
import type { HandlerEntry } from './handler.ts'
import type { RequestBytesBudget, WarningLimiter } from './limits.ts'
import type { BrokerMetrics } from './metrics/broker-metrics.ts'

export interface ConnectionLimits {
  readonly maxFrameBytes: number
  readonly maxInFlight: number
  readonly idleTimeoutMs: number
  /** A frame begun but not complete this long after closes the connection; 0: no limit. */
  readonly requestReadTimeoutMs: number
  /** Shared by all connections: bytes of requests received and not yet answered. */
  readonly requestBytes: RequestBytesBudget
  /** Shared by all connections: keeps bad-input warnings from flooding the log. */
  readonly warnings: WarningLimiter
  /** Shared by all connections: request and protocol-violation counts. */
  readonly metrics?: BrokerMetrics
}

interface Slot {
  done: boolean
  response: Buffer[] | null
  /** The request, until it is dispatched. */
  frame: Buffer | null
  fetch: boolean
}

/** Stop reading, and start no fetch, while this many response bytes wait for the socket. */
const WRITE_BACKLOG_LIMIT = 32 * 1024 * 1024
const FETCH_KEY = 1
const HEX_PREFIX_BYTES = 32

export class Connection {
  readonly id: number
  readonly #socket: Socket
  readonly #splitter: FrameSplitter
  readonly #handlers: ReadonlyMap<number, HandlerEntry>
  readonly #limits: ConnectionLimits
  readonly #abort = new AbortController()
  readonly #queue: Slot[] = []
  readonly #idle: Set<() => void> = new Set()
  readonly #clientHost: string
  #logger: Logger
  #closed = false
  #draining = false
  /** Request bytes this connection holds against the shared budget. */
  #heldBytes = 0
  #cancelBudgetWait: (() => void) | undefined
  /** Fetches dispatched whose answers are not yet handed to the socket (at most one). */
  #fetching = 0
  /** When the frame now being assembled began to arrive (performance.now()), while we read. */
  #partialSince: number | undefined
  #readTimer: NodeJS.Timeout | undefined

  constructor(id: number, socket: Socket, handlers: ReadonlyMap<number, HandlerEntry>, limits: ConnectionLimits, logger: Logger) {
    this.id = id
    this.#socket = socket
    this.#handlers = handlers
    this.#limits = limits
    this.#splitter = new FrameSplitter(limits.maxFrameBytes)
    // Kafka prints hosts as InetAddress.toString() does: "/" then the address.
    this.#clientHost = `/${socket.remoteAddress ?? ''}`
    this.#logger = logger.child({ conn: id, peer: `${socket.remoteAddress}:${socket.remotePort}` })

    socket.setNoDelay(true)
    if (limits.idleTimeoutMs > 0) {
      socket.setTimeout(limits.idleTimeoutMs, () => {
        this.#logger.info('closing idle connection', { idleTimeoutMs: limits.idleTimeoutMs })
        this.destroy()
      })
    }
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('drain', () => {
      this.#startReady()
      this.#maybeResume()
    })
    socket.on('error', (err) => this.#logger.debug('socket error', { err }))
    socket.on('close', () => this.#onClose())
  }

  /** Stops reading (back-pressure); the time a partial frame waits meanwhile is not held against it. */
  #pause(): void {
    this.#socket.pause()
    this.#partialSince = undefined
  }

  #resume(): void {
    if (!this.#socket.isPaused()) return
    this.#socket.resume()
    this.#notePartialFrame(false)
  }

  /**
   * Starts the read clock when a frame is left incomplete, and restarts it when frames were just
   * completed (the limit is per frame, not per connection).
   */
  #notePartialFrame(completedFrames: boolean): void {
    const limit = this.#limits.requestReadTimeoutMs
    if (limit <= 0 || this.#closed) return
    if (!this.#splitter.midFrame || this.#socket.isPaused()) {
      this.#partialSince = undefined
      return
    }
    if (this.#partialSince === undefined || completedFrames) this.#partialSince = performance.now()
    this.#readTimer ??= setTimeout(() => this.#checkReadTimeout(), limit)
  }

  #checkReadTimeout(): void {
    this.#readTimer = undefined
    if (this.#closed || this.#partialSince === undefined) return
    const limit = this.#limits.requestReadTimeoutMs
    const waited = performance.now() - this.#partialSince
    if (waited < limit) {
      this.#readTimer = setTimeout(() => this.#checkReadTimeout(), Math.ceil(limit - waited))
      return
    }
    const admitted = this.#limits.warnings.admit()
    if (admitted) this.#logger.warn('closing connection: request frame not received in time', {
      ...(admitted.suppressed > 0 ? { suppressedSinceLast: admitted.suppressed } : {}),
      requestReadTimeoutMs: limit,
      receivedBytes: this.#splitter.buffered,
      declaredBytes: this.#splitter.pendingFrameSize,
    })
    this.destroy()
  }

  get closed(): boolean {
    return this.#closed
  }

  #onData(chunk: Buffer): void {
    if (this.#draining) return
    let frames: Buffer[]
    try {
      frames = this.#splitter.push(chunk)
    } catch (err) {
      this.#violation(err, chunk.subarray(0, HEX_PREFIX_BYTES))
      return
    }
    for (const frame of frames) {
      this.#queue.push({ done: false, response: null, frame, fetch: frame.length >= 2 && frame.readInt16BE(0) === FETCH_KEY })
      this.#limits.requestBytes.take(frame.length)
      this.#heldBytes += frame.length
    }
    this.#startReady()
    if (this.#closed) return
    if (this.#queue.length >= this.#limits.maxInFlight) this.#pause()
    this.#waitForBudgetIfExhausted()
    this.#notePartialFrame(frames.length > 0)
  }

  #waitForBudgetIfExhausted(): void {
    const budget = this.#limits.requestBytes
    if (!budget.exhausted || this.#cancelBudgetWait || this.#closed) return
    this.#pause()
    this.#cancelBudgetWait = budget.whenAvailable(() => {
      this.#cancelBudgetWait = undefined
      this.#maybeResume()
    })
  }

  /**
   * Dispatches received requests in order. A fetch waits until the previous fetch's answer has
   * been handed to the socket and the write backlog is below its limit: a fetch answer can be
   * fetchMaxBytes, and a client that pipelines fetches without reading the answers would
   * otherwise have all of them built at once. Requests behind a waiting fetch wait too, so they
   * are still started in the order they came. Clients keep one fetch in flight per connection, so
   * this costs them nothing.
   */
  #startReady(): void {
    for (const slot of this.#queue) {
      if (this.#closed) return
      if (!slot.frame) continue
      if (slot.fetch && (this.#fetching > 0 || this.#socket.writableLength >= WRITE_BACKLOG_LIMIT)) return
      const frame = slot.frame
      slot.frame = null
      if (slot.fetch) this.#fetching++
      this.#dispatch(slot, frame)
    }
  }

  #dispatch(slot: Slot, frame: Buffer): void {
    const release = () => {
      if (this.#closed) return // #onClose released everything this connection held
      this.#heldBytes -= frame.length
      this.#limits.requestBytes.release(frame.length)
    }
    dispatch(frame, {
      handlers: this.#handlers,
      logger: this.#logger,
      signal: this.#abort.signal,
      clientHost: this.#clientHost,
      metrics: this.#limits.metrics,
      onClientSoftware: (name, version) => {
        this.#logger = this.#logger.child({ clientSoftware: `${name}/${version}` })
      },
    }).then(
      (response) => {
        release()
        slot.done = true
        slot.response = response
        this.#pump()
      },
      (err: unknown) => {
        release()
        if (err instanceof ProtocolViolation) this.#violation(err, frame.subarray(0, HEX_PREFIX_BYTES))
        else {
          // A handler threw: that is a bug in the broker, not the client's fault.
          this.#logger.error('request handler failed; closing connection', { err, stack: (err as Error)?.stack })
          this.destroy()
        }
      },
    )
  }

  /** Writes every finished response at the head of the queue, in order. */
  #pump(): void {
    if (this.#closed) return
    let wrote = false
    while (this.#queue.length > 0 && this.#queue[0]!.done) {
      const slot = this.#queue.shift()!
      if (slot.fetch) this.#fetching--
      if (!slot.response) continue
      if (!wrote) this.#socket.cork()
      wrote = true
      for (const chunk of slot.response) this.#socket.write(chunk)
    }
    if (wrote) this.#socket.uncork()
    this.#startReady()
    this.#maybeResume()
    if (this.#queue.length === 0) for (const notify of this.#idle) notify()
  }

  #maybeResume(): void {
    if (this.#closed || this.#draining) return
    if (this.#limits.requestBytes.exhausted) return this.#waitForBudgetIfExhausted()
    if (this.#queue.length < this.#limits.maxInFlight && this.#socket.writableLength < WRITE_BACKLOG_LIMIT) {
      this.#resume()
    } else if (this.#socket.writableLength >= WRITE_BACKLOG_LIMIT) {
      this.#pause()
    }
  }

  #violation(err: unknown, prefix: Buffer): void {
    if (this.#closed) return
    this.#limits.metrics?.protocolViolations.inc()
    const admitted = this.#limits.warnings.admit()
    if (admitted) this.#logger.warn('closing connection after bad input', {
      ...(admitted.suppressed > 0 ? { suppressedSinceLast: admitted.suppressed } : {}),
      reason: err instanceof Error ? err.message : String(err),
      code: (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code,
      hexPrefix: prefix.toString('hex'),
    })
    this.destroy()
  }

  /** Stops reading, lets outstanding requests finish (long polls end early), then closes. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.#closed) return
    this.#draining = true
    this.#pause()
    this.#abort.abort()
    if (this.#queue.length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs)
        const idle = this.#idle
        function done() {
          clearTimeout(timer)
          idle.delete(done)
          resolve()
        }
        idle.add(done)
      })
    }
    await new Promise<void>((resolve) => {
      if (this.#closed) return resolve()
      this.#socket.once('close', () => resolve())
      this.#socket.end()
      setTimeout(() => this.destroy(), Math.max(100, timeoutMs)).unref()
    })
  }

  destroy(): void {
    if (this.#closed) return
    this.#socket.destroy()
    this.#onClose()
  }

  #onClose(): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#readTimer)
    this.#abort.abort()
    this.#cancelBudgetWait?.()
    this.#limits.requestBytes.release(this.#heldBytes)
    this.#heldBytes = 0
    this.#queue.length = 0
    for (const notify of this.#idle) notify()
  }
}
