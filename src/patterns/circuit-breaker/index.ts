// The circuit breaker: a pure state machine (core.ts) behind a small policy, run on local state
// or on state shared by every instance through Redis (redis-state.ts).
export { CircuitBreaker, createCircuitBreaker, type BreakerCounters, type BreakerSnapshot, type CallOutcome, type CircuitBreakerEvents, type CircuitBreakerOptions, type TransitionEvent } from './breaker.ts'
export { BreakerState, TransitionReason } from './core.ts'
export { CallTimeoutError, CircuitOpenError } from './errors.ts'
export { breakerPolicy, type BreakerPolicy, type BreakerPolicyOptions, type WindowOptions } from './policy.ts'
export {
  breakerKey,
  DEFAULT_PREFIX as DEFAULT_BREAKER_PREFIX,
  readStoredBreaker,
  scanStoredBreakers,
  type BreakerScanRedis,
  type StoredBreaker,
} from './redis-layout.ts'
export { RedisTimeoutError, sharedState, type BreakerRedis, type SharedStateOptions } from './redis-state.ts'
export { localState, type Backend, type BackendEvent, type StateBackend } from './state.ts'
