// How a saga is declared: a name, a version and named steps, each with `invoke`, an optional
// `compensate`, a timeout and a retry policy (research frameworks.md finding 12: steps are named
// and versioned explicitly, so a stored instance is resumed by the definition that started it,
// never by a reordered one). Pure data and validation; nothing here runs a step.
import { retryPolicy, type RetryPolicy } from '../../sdk/retry.ts'
import type { TraceContext } from '../../sdk/trace.ts'

/** What a step's result and a saga's input must be: they are stored as JSON. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json }

export interface StepContext<Input = Json> {
  readonly instanceId: string
  readonly saga: { readonly name: string; readonly version: number }
  readonly step: string
  /** 1 for the first attempt under the retry policy; a resume after a crash keeps the number. */
  readonly attempt: number
  /**
   * The same for every attempt and every resume of this step of this instance: what the service
   * dedups on (an inbox key, a unique column), so a repeated invocation applies nothing twice.
   */
  readonly idempotencyKey: string
  /** instance id + step (+ `compensate`): what a reply is matched by. */
  readonly correlationId: string
  readonly input: Input
  /** Results of the steps done so far, by step name. */
  readonly results: Readonly<Record<string, Json>>
  /** Aborts when the step's stored timeout fires or the orchestrator stops. */
  readonly signal: AbortSignal
  /** When this attempt's stored timeout fires (epoch ms): after it the orchestrator no longer waits for the outcome. */
  readonly deadlineMs: number
  /** A span of the instance's trace, to pass on with what the step sends. */
  readonly trace: TraceContext
  readonly traceparent: string
}

export interface CompensationContext<Input = Json> extends StepContext<Input> {
  /** The step's own result, or null when it did not finish (it timed out: its effect is unknown). */
  readonly result: Json
  /** Why the saga is compensating. */
  readonly failure: { readonly step: string; readonly error: string }
}

/** The parts of src/sdk/retry.ts's policy a step uses; the step's own timeoutMs bounds each attempt. */
export type StepRetry = Pick<RetryPolicy, 'attempts' | 'initialDelayMs' | 'maxDelayMs' | 'multiplier' | 'jitter'>

export interface StepDefinition<Input = Json> {
  /** Unique within the saga; part of the idempotency key, so never rename a step of a live version. */
  readonly name: string
  invoke(context: StepContext<Input>): Promise<Json>
  /** Undoes invoke's effect; must tolerate "nothing to undo" (invoke may have timed out before acting). */
  compensate?(context: CompensationContext<Input>): Promise<void>
  /** Each attempt's limit, kept as a stored timer. Default 30,000 ms. */
  readonly timeoutMs?: number
  /** Invoke's retries (default 3 attempts, 200 ms doubling to 10 s). */
  readonly retry?: Partial<StepRetry>
  /** Compensate's retries before the instance lands in failed-compensation (default 10 attempts, 200 ms to 30 s). */
  readonly compensationRetry?: Partial<StepRetry>
}

export interface SagaDefinition<Input = Json> {
  readonly name: string
  /** Bump it when steps change: instances keep the version they started with. */
  readonly version: number
  readonly steps: readonly StepDefinition<Input>[]
}

/** A checked definition with every default filled in. */
export interface Saga<Input = Json> {
  readonly name: string
  readonly version: number
  readonly steps: readonly ResolvedStep<Input>[]
}

export interface ResolvedStep<Input = Json> {
  readonly name: string
  readonly invoke: (context: StepContext<Input>) => Promise<Json>
  readonly compensate: ((context: CompensationContext<Input>) => Promise<void>) | null
  readonly timeoutMs: number
  readonly retry: RetryPolicy
  readonly compensationRetry: RetryPolicy
}

const DEFAULT_TIMEOUT_MS = 30_000
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/

export function defineSaga<Input = Json>(definition: SagaDefinition<Input>): Saga<Input> {
  const fail = (what: string): never => {
    throw new TypeError(`saga ${JSON.stringify(definition.name)}: ${what}`)
  }
  if (!NAME.test(definition.name)) fail('the name must be 1-100 letters, digits, _ . or -')
  if (!Number.isSafeInteger(definition.version) || definition.version < 1) fail(`version must be a whole number >= 1, got ${definition.version}`)
  if (definition.steps.length === 0) fail('a saga needs at least one step')
  const seen = new Set<string>()
  const steps = definition.steps.map((step): ResolvedStep<Input> => {
    if (!NAME.test(step.name)) fail(`step name ${JSON.stringify(step.name)} must be 1-100 letters, digits, _ . or -`)
    if (seen.has(step.name)) fail(`two steps are named ${JSON.stringify(step.name)}`)
    seen.add(step.name)
    const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) fail(`step ${step.name}: timeoutMs must be a positive whole number`)
    return {
      name: step.name,
      invoke: step.invoke,
      compensate: step.compensate ?? null,
      timeoutMs,
      // attemptTimeoutMs and deadlineMs stay off: the stored timeout timer does that job, across restarts.
      retry: retryPolicy({ attempts: 3, initialDelayMs: 200, maxDelayMs: 10_000, ...step.retry, attemptTimeoutMs: 0, deadlineMs: 0 }),
      compensationRetry: retryPolicy({ attempts: 10, initialDelayMs: 200, maxDelayMs: 30_000, ...step.compensationRetry, attemptTimeoutMs: 0, deadlineMs: 0 }),
    }
  })
  return { name: definition.name, version: definition.version, steps }
}

/** The key a service dedups a step on: fixed per instance and step, whatever the attempt. */
export function stepIdempotencyKey(instanceId: string, step: string, phase: StepPhase): string {
  return phase === 'invoke' ? `saga:${instanceId}:${step}` : `saga:${instanceId}:${step}:compensate`
}

export function stepCorrelationId(instanceId: string, step: string, phase: StepPhase): string {
  return phase === 'invoke' ? `${instanceId}:${step}` : `${instanceId}:${step}:compensate`
}

export type StepPhase = 'invoke' | 'compensate'
