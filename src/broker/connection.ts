// One client connection. Requests may be pipelined: each frame is dispatched as soon as it is
// whole, and responses are written strictly in request order (protocol guide, "Network"), so a
// long-poll fetch is never overtaken by a later request's answer. Limits: the frame size (checked
// before buffering), the number of outstanding requests (past it we stop reading, which pushes
// back on the client through TCP), and the bytes waiting to be written.
//
// A frame we cannot parse closes this connection only; it is logged once with a bounded hex
// prefix, and no other connection notices.

import type { Socket } from 'node:net'
import type { Logger } from '../logger.ts'
import { FrameSplitter } from '../protocol/framing.ts'
import { dispatch, ProtocolViolation } from './dispatch.ts'
import type { HandlerEntry } from './handler.ts'
import type { RequestBytesBudget, WarningLimiter } from './limits.ts'

export interface ConnectionLimits {
  readonly maxFrameBytes: number
  readonly maxInFlight: number
  readonly idleTimeoutMs: number
  /** Shared by all connections: bytes of requests received and not yet answered. */
  readonly requestBytes: RequestBytesBudget
  /** Shared by all connections: keeps bad-input warnings from flooding the log. */
  readonly warnings: WarningLimiter
}

interface Slot {
  done: boolean
  response: Buffer[] | null
}

/** Stop reading while this many response bytes wait for the socket. */
const WRITE_BACKLOG_LIMIT = 32 * 1024 * 1024
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
    socket.on('drain', () => this.#maybeResume())
    socket.on('error', (err) => this.#logger.debug('socket error', { err }))
    socket.on('close', () => this.#onClose())
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
      if (this.#closed) return
      this.#dispatch(frame)
    }
    if (this.#queue.length >= this.#limits.maxInFlight) this.#socket.pause()
    this.#waitForBudgetIfExhausted()
  }

  #waitForBudgetIfExhausted(): void {
    const budget = this.#limits.requestBytes
    if (!budget.exhausted || this.#cancelBudgetWait || this.#closed) return
    this.#socket.pause()
    this.#cancelBudgetWait = budget.whenAvailable(() => {
      this.#cancelBudgetWait = undefined
      this.#maybeResume()
    })
  }

  #dispatch(frame: Buffer): void {
    const slot: Slot = { done: false, response: null }
    this.#queue.push(slot)
    this.#limits.requestBytes.take(frame.length)
    this.#heldBytes += frame.length
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
      if (!slot.response) continue
      if (!wrote) this.#socket.cork()
      wrote = true
      for (const chunk of slot.response) this.#socket.write(chunk)
    }
    if (wrote) this.#socket.uncork()
    this.#maybeResume()
    if (this.#queue.length === 0) for (const notify of this.#idle) notify()
  }

  #maybeResume(): void {
    if (this.#closed || this.#draining) return
    if (this.#limits.requestBytes.exhausted) return this.#waitForBudgetIfExhausted()
    if (this.#queue.length < this.#limits.maxInFlight && this.#socket.writableLength < WRITE_BACKLOG_LIMIT) {
      if (this.#socket.isPaused()) this.#socket.resume()
    } else if (this.#socket.writableLength >= WRITE_BACKLOG_LIMIT) {
      this.#socket.pause()
    }
  }

  #violation(err: unknown, prefix: Buffer): void {
    if (this.#closed) return
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
    this.#socket.pause()
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
    this.#abort.abort()
    this.#cancelBudgetWait?.()
    this.#limits.requestBytes.release(this.#heldBytes)
    this.#heldBytes = 0
    this.#queue.length = 0
    for (const notify of this.#idle) notify()
  }
}
