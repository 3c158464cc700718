// A TCP proxy between Kafka clients and a broker that injects network faults on command
// (research reliability.md §3): it forwards bytes both ways and reads the frames, so it knows
// which response answers which request. Faults, each with its own knob:
//   - dropProduceResponseChance: a Produce response is dropped and its connection cut, so the
//     client cannot know whether its batch was stored and must retry it;
//   - dropResponseChance: the same for a response to any request;
//   - cutRequestChance / cutResponseChance: a request (or a response) is forwarded only in
//     part, then the connection is cut, so the receiver holds half a frame;
//   - delayMs / jitterMs: every chunk waits this long (order kept), like a slow or congested link;
//   - freezeConnections(n): n of the current connections (or all) go silent both ways and stay
//     open, with no FIN or RST: a half-open connection the client must detect by its timeouts.
// Clients reach the broker only through the proxy when the broker advertises the proxy's
// address (`advertisedPort`). A seeded generator makes a run repeatable.
import { createServer, connect, type Server, type Socket } from 'node:net'
import { FrameSplitter } from '../../src/protocol/framing.ts'

const PRODUCE = 0

export interface FaultProxyStats {
  connections: number
  requests: number
  produceRequests: number
  /** Produce responses dropped by dropProduceResponseChance (each with its connection cut). */
  droppedProduceResponses: number
  /** Responses dropped by dropResponseChance (each with its connection cut). */
  droppedResponses: number
  /** Frames forwarded only in part before the connection was cut. */
  cutMidFrame: number
  /** Connections left half-open by freezeConnections(). */
  frozen: number
}

interface Link {
  readonly client: Socket
  readonly upstream: Socket
  frozen: boolean
}

export class FaultProxy {
  readonly #server: Server
  readonly #links = new Set<Link>()
  #target: { host: string; port: number } | undefined
  dropProduceResponseChance = 0
  dropResponseChance = 0
  cutRequestChance = 0
  cutResponseChance = 0
  delayMs = 0
  jitterMs = 0
  readonly stats: FaultProxyStats = { connections: 0, requests: 0, produceRequests: 0, droppedProduceResponses: 0, droppedResponses: 0, cutMidFrame: 0, frozen: 0 }
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

  /** Turns every fault off (connections already frozen stay frozen). */
  calm(): void {
    this.dropProduceResponseChance = this.dropResponseChance = this.cutRequestChance = this.cutResponseChance = this.delayMs = this.jitterMs = 0
  }

  /**
   * Makes open connections half-open: nothing more is forwarded either way, nothing is closed.
   * `count` picks that many of the live ones at random (default: all of them).
   */
  freezeConnections(count = Number.POSITIVE_INFINITY): number {
    const live = [...this.#links].filter((link) => !link.frozen)
    let frozen = 0
    while (live.length > 0 && frozen < count) {
      const [link] = live.splice(Math.floor(this.#random() * live.length), 1)
      link!.frozen = true
      link!.client.pause()
      link!.upstream.pause()
      frozen++
    }
    this.stats.frozen += frozen
    return frozen
  }

  #accept(client: Socket): void {
    if (!this.#target) {
      client.destroy()
      return
    }
    this.stats.connections++
    const upstream = connect(this.#target)
    const link: Link = { client, upstream, frozen: false }
    this.#links.add(link)
    const cut = () => {
      this.#links.delete(link)
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      s.on('error', cut)
      s.on('close', cut)
    }
    const toUpstream = this.#sender(link, upstream, () => this.cutRequestChance)
    const toClient = this.#sender(link, client, () => this.cutResponseChance)
    const produceCorrelations = new Set<number>()
    const requests = new FrameSplitter(256 * 1024 * 1024)
    const responses = new FrameSplitter(256 * 1024 * 1024)
    client.on('data', (chunk: Buffer) => {
      if (link.frozen) return
      for (const frame of requests.push(chunk)) {
        this.stats.requests++
        // Request header: api_key int16, api_version int16, correlation_id int32.
        if (frame.readInt16BE(0) === PRODUCE) {
          this.stats.produceRequests++
          produceCorrelations.add(frame.readInt32BE(4))
        }
        if (!toUpstream(withLength(frame), cut)) return
      }
    })
    upstream.on('data', (chunk: Buffer) => {
      if (link.frozen) return
      for (const frame of responses.push(chunk)) {
        const correlationId = frame.readInt32BE(0)
        const isProduce = produceCorrelations.delete(correlationId)
        if (isProduce && this.#random() < this.dropProduceResponseChance) {
          this.stats.droppedProduceResponses++
          return cut()
        }
        if (this.#random() < this.dropResponseChance) {
          this.stats.droppedResponses++
          return cut()
        }
        if (!toClient(withLength(frame), cut)) return
      }
    })
  }

  /**
   * Forwards whole frames to `to`, delayed (in order) and sometimes cut partway. Returns false
   * once the connection has been cut.
   */
  #sender(link: Link, to: Socket, cutChance: () => number): (bytes: Buffer, cut: () => void) => boolean {
    let lastDue = 0
    let broken = false
    return (bytes, cut) => {
      if (broken) return false
      let payload = bytes
      let cutAfter = false
      if (this.#random() < cutChance()) {
        payload = bytes.subarray(0, 1 + Math.floor(this.#random() * (bytes.length - 1)))
        cutAfter = true
        broken = true
        this.stats.cutMidFrame++
      }
      const deliver = () => {
        if (link.frozen || to.destroyed) return
        if (cutAfter) to.write(payload, () => cut())
        else to.write(payload)
      }
      const wait = this.delayMs + this.#random() * this.jitterMs
      if (wait <= 0 && lastDue <= Date.now()) deliver()
      else {
        lastDue = Math.max(Date.now() + wait, lastDue)
        setTimeout(deliver, lastDue - Date.now())
      }
      return !broken
    }
  }

  async close(): Promise<void> {
    for (const link of this.#links) {
      link.client.destroy()
      link.upstream.destroy()
    }
    this.#links.clear()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

function withLength(frame: Buffer): Buffer {
  const size = Buffer.alloc(4)
  size.writeInt32BE(frame.length)
  return Buffer.concat([size, frame])
}
