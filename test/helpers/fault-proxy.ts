// A TCP proxy between Kafka clients and a broker that loses answers on command: it forwards bytes
// both ways, reads the frames to know which response answers which request, and can drop the
// response to a Produce and cut that connection, so the client never learns whether its batch
// was stored and must retry it. Clients reach the broker only through the proxy when the broker
// advertises the proxy's address (`advertisedPort`).
import { createServer, connect, type Server, type Socket } from 'node:net'
import { FrameSplitter } from '../../src/protocol/framing.ts'

const PRODUCE = 0

export interface FaultProxyStats {
  connections: number
  produceRequests: number
  /** Produce responses dropped (each with its connection cut). */
  droppedProduceResponses: number
}

export class FaultProxy {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  #target: { host: string; port: number } | undefined
  /** Chance that a Produce response is dropped and its connection cut. */
  dropProduceResponseChance = 0
  readonly stats: FaultProxyStats = { connections: 0, produceRequests: 0, droppedProduceResponses: 0 }
  readonly #random: () => number

  private constructor(server: Server, seed: number) {
    this.#server = server
    let state = seed >>> 0 || 1
    // xorshift32: a seeded run can be repeated.
    this.#random = () => {
      state ^= state << 13
      state ^= state >>> 17
      state ^= state << 5
      return (state >>> 0) / 0x100000000
    }
  }

  /** Starts listening on a free loopback port; `target` may be set later (before clients connect). */
  static async start(seed = 1): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined
    const server = createServer((client) => proxy!.#accept(client))
    proxy = new FaultProxy(server, seed)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return proxy
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`
  }

  set target(target: { host: string; port: number }) {
    this.#target = target
  }

  #accept(client: Socket): void {
    if (!this.#target) {
      client.destroy()
      return
    }
    this.stats.connections++
    const upstream = connect(this.#target)
    this.#sockets.add(client).add(upstream)
    const cut = () => {
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      s.on('error', cut)
      s.on('close', () => {
        this.#sockets.delete(s)
        cut()
      })
    }
    const produceCorrelations = new Set<number>()
    const requests = new FrameSplitter(256 * 1024 * 1024)
    const responses = new FrameSplitter(256 * 1024 * 1024)
    client.on('data', (chunk: Buffer) => {
      for (const frame of requests.push(chunk)) {
        // Request header: api_key int16, api_version int16, correlation_id int32.
        if (frame.readInt16BE(0) === PRODUCE) {
          this.stats.produceRequests++
          produceCorrelations.add(frame.readInt32BE(4))
        }
        upstream.write(withLength(frame))
      }
    })
    upstream.on('data', (chunk: Buffer) => {
      for (const frame of responses.push(chunk)) {
        const correlationId = frame.readInt32BE(0)
        if (produceCorrelations.delete(correlationId) && this.#random() < this.dropProduceResponseChance) {
          this.stats.droppedProduceResponses++
          cut()
          return
        }
        client.write(withLength(frame))
      }
    })
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

function withLength(frame: Buffer): Buffer {
  const size = Buffer.alloc(4)
  size.writeInt32BE(frame.length)
  return Buffer.concat([size, frame])
}
