// Everything that knows how a shared breaker is laid out in Redis: the two Lua scripts, what they
// answer, and how to read a stored breaker back (for `tideway breakers list`).
//
// One hash per breaker, key `<prefix><caller>-><callee>` (prefix `tideway:breaker:` by default),
// so each script touches one key (atomic, and fine on Redis Cluster). Fields:
//   state        closed | open | half-open
//   gen          generation: +1 on every transition (core.ts explains why permits carry it)
//   since        when the current state began (Redis server ms)
//   retryAt      open: when the first call may turn it half-open
//   probes, leaseUntil, probeOk   half-open: tokens out, when the latest lease ends, probe successes
//   reason, tc, tf                the last transition's reason and its calls and failures
//   cfg          the window's shape, `count:<size>` or `time:<bucketMs>:<buckets>`; an outcome
//                recorded with a different shape clears the window first
//   count window  wn, wf (calls and failures in it), seq (next slot), r<slot> ('0' ok, '1' failed)
//   time window   t<slot> (bucket number held), c<slot> calls, f<slot> failures
//
// Time is Redis's (`TIME` inside the script), never a client's clock, so instances whose clocks
// disagree still agree on when an open breaker may probe. Scripts with writes after TIME need
// effect replication, the only mode since Redis 7 (the default since 5). Every write refreshes
// the key's PEXPIRE, so a breaker nobody calls any more disappears on its own.
//
// Both scripts answer the same array, parsed by `parseReply`:
//   [verdict, state, gen, now, retryAt, probes, leaseUntil, reason, tc, tf, from, wn, wf]
// verdict: allowed | probe | rejected (admit), applied | stale (record); `from` is the state left
// by a transition this run made, '' if none; wn, wf are -1 when the run did not read the window.
import { BreakerState, INITIAL, TransitionReason, type StateView, type Transition, type Verdict } from './core.ts'
import type { BreakerPolicy } from './policy.ts'
import { bucketMsOf, failureRateOf, type WindowCounts, type WindowSpec } from './window.ts'

export const DEFAULT_PREFIX = 'tideway:breaker:'

/** `caller->callee`; a caller may not contain `->`, so the first one splits the key. */
export function breakerKey(caller: string, callee: string): string {
  if (caller === '' || callee === '') throw new RangeError('circuit breaker: caller and callee must not be empty')
  if (caller.includes('->')) throw new RangeError(`circuit breaker: a caller name may not contain "->", got "${caller}"`)
  return `${caller}->${callee}`
}

export function windowFingerprint(window: WindowSpec): string {
  return window.kind === 'count' ? `count:${window.size}` : `time:${bucketMsOf(window)}:${window.buckets}`
}

const COMMON = `
local key = KEYS[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(v)
  return tonumber(v) or 0
end
local function window_shape(cfg)
  if not cfg then return nil end
  local kind, a, b = string.match(cfg, '^(%a+):(%d+):?(%d*)$')
  return kind, tonumber(a), tonumber(b)
end
local function window_fields(cfg)
  local kind, a, b = window_shape(cfg)
  local fields = {}
  if kind == 'count' then
    fields = {'wn', 'wf', 'seq'}
    for i = 0, a - 1 do fields[#fields + 1] = 'r' .. i end
  elseif kind == 'time' then
    for i = 0, b - 1 do
      fields[#fields + 1] = 't' .. i
      fields[#fields + 1] = 'c' .. i
      fields[#fields + 1] = 'f' .. i
    end
  end
  return fields
end
local function clear_window(cfg)
  local fields = window_fields(cfg)
  -- In slices: unpack() of a very long list would overflow Lua's C stack.
  for i = 1, #fields, 500 do
    redis.call('HDEL', key, unpack(fields, i, math.min(i + 499, #fields)))
  end
end
local h = redis.call('HMGET', key, 'state', 'gen', 'retryAt', 'probes', 'leaseUntil', 'reason', 'tc', 'tf', 'probeOk', 'cfg')
local now = now_ms()
local state = h[1] or 'closed'
local gen, retry_at, probes, lease_until = int(h[2]), int(h[3]), int(h[4]), int(h[5])
local reason, tc, tf = h[6] or '${INITIAL}', int(h[7]), int(h[8])
local from = ''
local function reply(verdict, wn, wf)
  return {verdict, state, gen, now, retry_at, probes, lease_until, reason, tc, tf, from, wn, wf}
end
`

/**
 * May I call now? ARGV: take ('1', or '0' to only look), probe budget, probe lease ms, key ttl ms.
 * Turns an open breaker whose time is up half-open, and hands out probe tokens up to the budget:
 * Redis runs one script at a time, so across all instances at most `budget` calls hold one.
 */
export const ADMIT_SCRIPT = `${COMMON}
if ARGV[1] ~= '1' then
  if state == 'closed' then return reply('allowed', -1, -1) end
  return reply('rejected', -1, -1)
end
local budget, lease_ms, ttl_ms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local changed = false
if state == 'open' and now >= retry_at then
  from, state, gen, reason, probes, retry_at = 'open', 'half-open', gen + 1, '${TransitionReason.openElapsed}', 0, 0
  redis.call('HSET', key, 'state', state, 'gen', gen, 'since', now, 'reason', reason, 'probes', 0, 'probeOk', 0, 'retryAt', 0)
  changed = true
end
local verdict = 'rejected'
if state == 'closed' then
  verdict = 'allowed'
elseif state == 'half-open' then
  -- A lease that ran out frees its token: its prober died or hangs.
  if probes > 0 and now >= lease_until then probes = 0 end
  if probes < budget then
    probes, lease_until, verdict = probes + 1, now + lease_ms, 'probe'
    redis.call('HSET', key, 'probes', probes, 'leaseUntil', lease_until)
    changed = true
  end
end
if changed then redis.call('PEXPIRE', key, ttl_ms) end
return reply(verdict, -1, -1)
`

/**
 * This is how the call went. ARGV: permit generation, failed ('1' or '0'), window shape
 * (windowFingerprint), minimum calls, failure-rate threshold, open ms, successes to close, key
 * ttl ms. An outcome of another generation, or one arriving while open, changes nothing.
 */
export const RECORD_SCRIPT = `${COMMON}
local failed = ARGV[2] == '1'
local cfg = ARGV[3]
local min_calls, threshold, open_ms, to_close, ttl_ms = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if tonumber(ARGV[1]) ~= gen or state == 'open' then return reply('stale', -1, -1) end
if not h[1] then
  redis.call('HSET', key, 'state', 'closed', 'gen', 0, 'since', now, 'reason', reason)
end
if h[10] ~= cfg then
  clear_window(h[10])
  redis.call('HSET', key, 'cfg', cfg)
end
local kind, a, b = window_shape(cfg)

local function move_to(to, why, calls, failures)
  clear_window(cfg)
  from, state, gen, reason, tc, tf, probes = state, to, gen + 1, why, calls, failures, 0
  retry_at = 0
  if to == 'open' then retry_at = now + open_ms end
  redis.call('HSET', key, 'state', state, 'gen', gen, 'since', now, 'reason', reason, 'tc', tc, 'tf', tf, 'probes', 0, 'probeOk', 0, 'retryAt', retry_at)
end

local function count_add()
  local w = redis.call('HMGET', key, 'wn', 'wf', 'seq')
  local wn, wf, seq = int(w[1]), int(w[2]), int(w[3])
  local slot = 'r' .. seq
  local evicted = redis.call('HGET', key, slot)
  if evicted then
    wn = wn - 1
    if evicted == '1' then wf = wf - 1 end
  end
  local mark = '0'
  if failed then mark, wf = '1', wf + 1 end
  wn = wn + 1
  redis.call('HSET', key, slot, mark, 'wn', wn, 'wf', wf, 'seq', (seq + 1) % a)
  return wn, wf
end

-- The same buckets as window.ts: bucket floor(now / bucketMs) in slot bucket % buckets.
local function time_add()
  local bucket_ms, buckets = a, b
  local epoch = math.floor(now / bucket_ms)
  local slot = epoch % buckets
  if tonumber(redis.call('HGET', key, 't' .. slot)) ~= epoch then
    redis.call('HSET', key, 't' .. slot, epoch, 'c' .. slot, 0, 'f' .. slot, 0)
  end
  redis.call('HINCRBY', key, 'c' .. slot, 1)
  if failed then redis.call('HINCRBY', key, 'f' .. slot, 1) end
  local names = {}
  for i = 0, buckets - 1 do
    names[#names + 1] = 't' .. i
    names[#names + 1] = 'c' .. i
    names[#names + 1] = 'f' .. i
  end
  local v = redis.call('HMGET', key, unpack(names))
  local calls, failures = 0, 0
  for i = 0, buckets - 1 do
    local t = tonumber(v[3 * i + 1])
    if t and t > epoch - buckets then
      calls, failures = calls + int(v[3 * i + 2]), failures + int(v[3 * i + 3])
    end
  end
  return calls, failures
end

local wn, wf = 0, 0
if state == 'closed' then
  if kind == 'count' then wn, wf = count_add() else wn, wf = time_add() end
  -- The same comparison as exceedsThreshold in window.ts, so both agree on the boundary.
  if wn >= min_calls and wf >= threshold * wn then
    move_to('open', '${TransitionReason.failureRate}', wn, wf)
    wn, wf = 0, 0
  end
else
  local ok = int(h[9])
  if failed then
    move_to('open', '${TransitionReason.probeFailed}', ok + 1, 1)
  elseif ok + 1 >= to_close then
    move_to('closed', '${TransitionReason.probeSucceeded}', ok + 1, 0)
  else
    probes = math.max(0, probes - 1)
    redis.call('HSET', key, 'probes', probes, 'probeOk', ok + 1)
  end
end
redis.call('PEXPIRE', key, ttl_ms)
return reply('applied', wn, wf)
`

export function admitArgs(policy: BreakerPolicy, ttlMs: number, take: boolean): string[] {
  return take ? ['1', String(policy.halfOpenProbes), String(policy.probeLeaseMs), String(ttlMs)] : ['0']
}

export function recordArgs(policy: BreakerPolicy, ttlMs: number, generation: number, failed: boolean): string[] {
  return [
    String(generation),
    failed ? '1' : '0',
    windowFingerprint(policy.window),
    String(policy.minimumCalls),
    // JavaScript's shortest round-trip form; Lua's tonumber reads back the same double.
    String(policy.failureRateThreshold),
    String(policy.openDurationMs),
    String(policy.successesToClose),
    String(ttlMs),
  ]
}

export interface ScriptReply {
  readonly verdict: Verdict | 'applied' | 'stale'
  readonly view: StateView
  readonly transition?: Transition
  /** Redis server time of the run, ms. */
  readonly redisNowMs: number
}

const STATES: ReadonlySet<string> = new Set(Object.values(BreakerState))
const REASONS: ReadonlySet<string> = new Set([...Object.values(TransitionReason), INITIAL])
const VERDICTS: ReadonlySet<string> = new Set(['allowed', 'probe', 'rejected', 'applied', 'stale'])

/** A script's answer, checked: a reply of any other shape is a bug (a script or a proxy), thrown as one. */
export function parseReply(reply: unknown, policy: BreakerPolicy): ScriptReply {
  if (!Array.isArray(reply) || reply.length !== 13) throw new TypeError(`circuit breaker: unexpected script reply ${JSON.stringify(reply)}`)
  const [verdict, state, gen, now, retryAt, probes, leaseUntil, reason, tc, tf, from, wn, wf] = reply as unknown[]
  const text = (v: unknown, allowed: ReadonlySet<string>, what: string): string => {
    const s = String(v)
    if (!allowed.has(s)) throw new TypeError(`circuit breaker: unexpected ${what} "${s}" in a script reply`)
    return s
  }
  const num = (v: unknown): number => {
    const n = Number(v)
    if (!Number.isFinite(n)) throw new TypeError(`circuit breaker: unexpected number "${String(v)}" in a script reply`)
    return n
  }
  const current = text(state, STATES, 'state') as BreakerState
  const nowMs = num(now)
  let retryInMs = 0
  if (current === BreakerState.open) retryInMs = Math.max(0, num(retryAt) - nowMs)
  else if (current === BreakerState.halfOpen && num(probes) >= policy.halfOpenProbes) retryInMs = Math.max(0, num(leaseUntil) - nowMs)
  const why = text(reason, REASONS, 'reason') as StateView['reason']
  const reasonCounts = { calls: num(tc), failures: num(tf) }
  const view: StateView = {
    state: current,
    generation: num(gen),
    retryInMs,
    reason: why,
    reasonCounts,
    ...(num(wn) >= 0 ? { window: { calls: num(wn), failures: num(wf) } } : {}),
  }
  const left = String(from)
  const transition: Transition | undefined =
    left === '' ? undefined : { from: text(left, STATES, 'state') as BreakerState, to: current, reason: why as TransitionReason, counts: reasonCounts }
  return { verdict: text(verdict, VERDICTS, 'verdict') as ScriptReply['verdict'], view, redisNowMs: nowMs, ...(transition ? { transition } : {}) }
}

/** A breaker as stored, read back for operators. */
export interface StoredBreaker {
  /** The Redis key. */
  readonly key: string
  /** `caller->callee`. */
  readonly breaker: string
  readonly caller: string
  readonly callee: string
  readonly state: BreakerState
  readonly generation: number
  /** Closed: the window now. Otherwise the counts at the transition that left it (see `reason`). */
  readonly window: WindowCounts & { readonly failureRate: number }
  readonly windowShape: string
  readonly reason: string
  readonly since: Date | undefined
  /** Open: when the next call turns it half-open. */
  readonly halfOpenAt: Date | undefined
  readonly probesInFlight: number
}

/**
 * Reads a stored breaker from its hash fields (HGETALL) at Redis time `nowMs`; undefined for a
 * key that is not a breaker. The time window is summed as the record script sums it.
 */
export function readStoredBreaker(key: string, prefix: string, fields: Readonly<Record<string, string>>, nowMs: number): StoredBreaker | undefined {
  const state = fields['state']
  if (state === undefined || !STATES.has(state) || !key.startsWith(prefix)) return undefined
  const name = key.slice(prefix.length)
  const split = name.indexOf('->')
  const int = (field: string) => Number(fields[field] ?? 0) || 0
  const shape = fields['cfg'] ?? ''
  let counts: WindowCounts = { calls: int('tc'), failures: int('tf') }
  if (state === BreakerState.closed) {
    counts = { calls: 0, failures: 0 }
    const time = /^time:(\d+):(\d+)$/.exec(shape)
    if (shape.startsWith('count:')) counts = { calls: int('wn'), failures: int('wf') }
    else if (time) {
      const [bucketMs, buckets] = [Number(time[1]), Number(time[2])]
      const epoch = Math.floor(nowMs / bucketMs)
      let calls = 0
      let failures = 0
      for (let slot = 0; slot < buckets; slot++) {
        if (fields[`t${slot}`] !== undefined && int(`t${slot}`) > epoch - buckets) {
          calls += int(`c${slot}`)
          failures += int(`f${slot}`)
        }
      }
      counts = { calls, failures }
    }
  }
  const since = fields['since'] === undefined ? undefined : new Date(int('since'))
  return {
    key,
    breaker: name,
    caller: split < 0 ? name : name.slice(0, split),
    callee: split < 0 ? '' : name.slice(split + 2),
    state: state as BreakerState,
    generation: int('gen'),
    window: { ...counts, failureRate: failureRateOf(counts) },
    windowShape: shape,
    reason: fields['reason'] ?? INITIAL,
    since,
    halfOpenAt: state === BreakerState.open ? new Date(int('retryAt')) : undefined,
    probesInFlight: state === BreakerState.halfOpen && int('leaseUntil') > nowMs ? int('probes') : 0,
  }
}

/** The Redis commands listing breakers needs (ioredis has them). */
export interface BreakerScanRedis {
  scan(cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', n: number): Promise<[string, string[]]>
  hgetall(key: string): Promise<Record<string, string>>
  time(): Promise<[string, string] | (string | number)[]>
}

/**
 * Every breaker stored under `prefix`, read with SCAN (at most `max` keys: `truncated` says when
 * more exist) and HGETALL, at Redis's own time: the clock the breakers' scripts use.
 */
export async function scanStoredBreakers(
  redis: BreakerScanRedis,
  prefix: string,
  max: number,
): Promise<{ nowMs: number; breakers: StoredBreaker[]; truncated: boolean }> {
  const keys = new Set<string>() // SCAN may return a key more than once
  let truncated = false
  let cursor = '0'
  do {
    // MATCH is a glob: the prefix's own glob characters must match literally.
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`, 'COUNT', 200)
    for (const key of batch) if (keys.size < max) keys.add(key)
    else truncated = true
    cursor = next
  } while (cursor !== '0' && !truncated)
  const [seconds, micros] = await redis.time()
  const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  const breakers: StoredBreaker[] = []
  for (const key of [...keys].sort()) {
    // A key under the prefix that is not a hash (WRONGTYPE) is not one of ours.
    const fields = await redis.hgetall(key).catch(() => undefined)
    const stored = fields && readStoredBreaker(key, prefix, fields, nowMs)
    if (stored) breakers.push(stored)
  }
  return { nowMs, breakers, truncated }
}
