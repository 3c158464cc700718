// Breaker state shared by every instance of a caller, through Redis: one window, one state and
// one half-open probe budget per caller->callee pair, changed only by the Lua scripts of
// redis-layout.ts (EVALSHA, falling back to EVAL when Redis does not have the script yet).
//
// When Redis does not answer, calls must not wait for it. Every Redis operation has a short limit
// (timeoutMs, default 200 ms). The first one that fails or runs past it switches the breaker to
// local state: a LocalStateStore seeded from the last shared state this instance saw (its state,
// generation and time left open; a closed window's counts), and a `backend` event says so. From
// then on calls decide locally at once, and at most every retryMs a call also sends Redis a
// read-only question in the background; the first answer switches back to the shared state,
// which is authoritative again (outcomes seen locally meanwhile are not merged into it), with
// another `backend` event. So one call per outage pays at most timeoutMs, and none waits longer.
//
// What is lost while on local state: the instances judge the callee each on their own calls, and
// a half-open breaker lets through one probe budget per instance, not one in all. A reply that
// arrives after its time limit is dropped; if it had granted a probe token, the token's lease
// (probeLeaseMs) frees it. Give the client no offline queue: with ioredis,
// `enableOfflineQueue: false` makes commands fail at once while it is disconnected (so the
// fallback costs no time at all), instead of waiting to be sent, late, after it reconnects.
import { createHash } from 'node:crypto'
import type { StateView } from './core.ts'
import type { BreakerPolicy } from './policy.ts'
import { admitArgs, DEFAULT_PREFIX, parseReply, recordArgs, ADMIT_SCRIPT, RECORD_SCRIPT, type ScriptReply } from './redis-layout.ts'
import { LocalStateStore, type Backend, type BreakerStateStore, type Permit, type StateAdmission, type StateBackend, type StateContext, type StateRecord } from './state.ts'

/** The two commands shared state needs; an ioredis `Redis` instance is one. */
export interface BreakerRedis {
  eval(script: string, numkeys: number, ...args: (string | number)[]): Promise<unknown>
  evalsha(sha1: string, numkeys: number, ...args: (string | number)[]): Promise<unknown>
}

export interface SharedStateOptions {
  readonly redis: BreakerRedis
  /** Prepended to `caller->callee` to make the key. Default `tideway:breaker:`. */
  readonly prefix?: string
  /** Each Redis operation's limit; past it (or on any error) the breaker runs on local state. Default 200 ms. */
  readonly timeoutMs?: number
  /** While on local state, how often a call may ask Redis again. Default 1 s. */
  readonly retryMs?: number
  /**
   * A key nobody has written for this long expires. Default: 15 min, and at least twice the
   * open duration plus probe lease, and twice a time window. Shorter than the open duration,
   * an open breaker nobody writes may expire, and so close, before its time.
   */
  readonly keyTtlMs?: number
}

export function sharedState(options: SharedStateOptions): StateBackend {
  const timeoutMs = options.timeoutMs ?? 200
  const retryMs = options.retryMs ?? 1_000
  for (const [name, value] of [['timeoutMs', timeoutMs], ['retryMs', retryMs]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`shared breaker state: ${name} must be a whole number >= 1, got ${value}`)
  }
  return (context) => new SharedStateStore(context, { ...options, timeoutMs, retryMs })
}

export function defaultKeyTtlMs(policy: BreakerPolicy): number {
  const windowMs = policy.window.kind === 'time' ? policy.window.durationMs : 0
  return Math.max(15 * 60_000, 2 * (policy.openDurationMs + policy.probeLeaseMs), 2 * windowMs)
}

class Script {
  readonly text: string
  readonly sha1: string
  constructor(text: string) {
    this.text = text
    this.sha1 = createHash('sha1').update(text).digest('hex')
  }
}

const ADMIT = new Script(ADMIT_SCRIPT)
const RECORD = new Script(RECORD_SCRIPT)

export class RedisTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms`)
    this.name = 'RedisTimeoutError'
  }
}

class SharedStateStore implements BreakerStateStore {
  readonly #context: StateContext
  readonly #redis: BreakerRedis
  readonly #redisKey: string
  readonly #timeoutMs: number
  readonly #retryMs: number
  readonly #ttlMs: number
  readonly #local: LocalStateStore
  #onLocal = false
  #lastSeen: { view: StateView; atMs: number } | undefined
  #nextAskAt = 0
  #asking = false

  constructor(context: StateContext, options: SharedStateOptions & { timeoutMs: number; retryMs: number }) {
    this.#context = context
    this.#redis = options.redis
    this.#redisKey = (options.prefix ?? DEFAULT_PREFIX) + context.key
    this.#timeoutMs = options.timeoutMs
    this.#retryMs = options.retryMs
    this.#ttlMs = options.keyTtlMs ?? defaultKeyTtlMs(context.policy)
    this.#local = new LocalStateStore(context.policy, context.clock)
  }

  get backend(): Backend {
    return this.#onLocal ? 'local' : 'shared'
  }

  async admit(): Promise<StateAdmission> {
    if (this.#onLocal) {
      this.#askRedisAgain()
      return this.#local.admitNow()
    }
    let reply: ScriptReply
    try {
      reply = await this.#run(ADMIT, admitArgs(this.#context.policy, this.#ttlMs, true))
    } catch (err) {
      this.#fallBack(err)
      return this.#local.admitNow()
    }
    this.#saw(reply.view)
    const verdict = reply.verdict === 'probe' || reply.verdict === 'allowed' ? reply.verdict : 'rejected'
    return {
      verdict,
      view: reply.view,
      backend: 'shared',
      ...(reply.transition ? { transition: reply.transition } : {}),
      ...(verdict === 'rejected' ? {} : { permit: { verdict, generation: reply.view.generation, grantedBy: this } }),
    }
  }

  async record(permit: Permit, failed: boolean): Promise<StateRecord> {
    // A local permit's outcome stays local, and so does a shared one's once Redis has gone.
    if (permit.grantedBy !== this || this.#onLocal) return this.#local.recordNow(permit, failed)
    let reply: ScriptReply
    try {
      reply = await this.#run(RECORD, recordArgs(this.#context.policy, this.#ttlMs, permit.generation, failed))
    } catch (err) {
      this.#fallBack(err)
      return this.#local.recordNow(permit, failed)
    }
    this.#saw(reply.view)
    return { applied: reply.verdict === 'applied', view: reply.view, backend: 'shared', ...(reply.transition ? { transition: reply.transition } : {}) }
  }

  #saw(view: StateView): void {
    this.#lastSeen = { view, atMs: this.#context.clock.monotonicMs() }
  }

  #fallBack(err: unknown): void {
    // Concurrent calls that fail together switch once, with one event.
    if (this.#onLocal) return
    const now = this.#context.clock.monotonicMs()
    this.#onLocal = true
    this.#nextAskAt = now + this.#retryMs
    const seen = this.#lastSeen
    if (seen) this.#local.seed({ ...seen.view, retryInMs: Math.max(0, seen.view.retryInMs - (now - seen.atMs)) })
    this.#context.notify({
      key: this.#context.key,
      backend: 'local',
      reason: 'redis-unavailable',
      error: err instanceof Error ? err.message : String(err),
      ...(seen ? { seededFrom: seen.view.state } : {}),
      at: this.#context.clock.wallMs(),
    })
  }

  /** At most one read-only question in flight, at most every retryMs; never awaited by a call. */
  #askRedisAgain(): void {
    const now = this.#context.clock.monotonicMs()
    if (this.#asking || now < this.#nextAskAt) return
    this.#asking = true
    this.#run(ADMIT, admitArgs(this.#context.policy, this.#ttlMs, false)).then(
      (reply) => {
        this.#asking = false
        if (!this.#onLocal) return
        this.#saw(reply.view)
        this.#onLocal = false
        this.#context.notify({ key: this.#context.key, backend: 'shared', reason: 'redis-answered', at: this.#context.clock.wallMs() })
      },
      () => {
        this.#asking = false
        this.#nextAskAt = this.#context.clock.monotonicMs() + this.#retryMs
      },
    )
  }

  /** One script run within the time limit; a late answer is dropped. */
  #run(script: Script, args: string[]): Promise<ScriptReply> {
    const keys = [this.#redisKey]
    const call = Promise.resolve()
      .then(() => this.#redis.evalsha(script.sha1, 1, ...keys, ...args))
      .catch((err: unknown) => {
        // Redis error replies start with their kind (RESP: "-NOSCRIPT No matching script").
        if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return this.#redis.eval(script.text, 1, ...keys, ...args)
        throw err
      })
      .then((reply) => parseReply(reply, this.#context.policy))
    let timer: NodeJS.Timeout | undefined
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisTimeoutError(this.#timeoutMs)), this.#timeoutMs)
    })
    return Promise.race([call, limit]).finally(() => {
      clearTimeout(timer)
      call.catch(() => {}) // the late failure of a call we stopped waiting for
    })
  }
}
