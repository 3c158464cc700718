// Where a breaker's state lives. A backend answers two questions, "may I call now?" (admit) and
// "this is how the call went" (record); the breaker around it runs the call, classifies the
// outcome and emits events. Local state is the core (core.ts) in this process; shared state
// (redis-state.ts) is the same machine in Redis, with local state as its fallback.
import type { Clock } from '../../clock.ts'
import { BreakerCore, type Admission, type BreakerState, type Recorded, type StateView } from './core.ts'
import type { BreakerPolicy } from './policy.ts'

export type Backend = 'local' | 'shared'

/** A granted call; its outcome goes back to the state that granted it, with its generation. */
export interface Permit {
  readonly verdict: 'allowed' | 'probe'
  readonly generation: number
  readonly grantedBy: object
}

export interface StateAdmission extends Admission {
  readonly backend: Backend
  /** Present unless the verdict is `rejected`. */
  readonly permit?: Permit
}

export interface StateRecord extends Recorded {
  readonly backend: Backend
}

export interface BreakerStateStore {
  /** Where decisions are made now. */
  readonly backend: Backend
  admit(): Promise<StateAdmission>
  record(permit: Permit, failed: boolean): Promise<StateRecord>
}

/** The breaker changed where its state lives: to local when Redis stopped answering, back to shared when it answers. */
export interface BackendEvent {
  readonly key: string
  readonly backend: Backend
  readonly reason: 'redis-unavailable' | 'redis-answered'
  /** What Redis failed with (a timeout, a refused connection). */
  readonly error?: string
  /** The last shared state seen, which the local state started from; absent if none was ever seen. */
  readonly seededFrom?: BreakerState
  /** Wall-clock ms. */
  readonly at: number
}

export interface StateContext {
  /** `caller->callee`. */
  readonly key: string
  readonly policy: BreakerPolicy
  readonly clock: Clock
  readonly notify: (event: BackendEvent) => void
}

export type StateBackend = (context: StateContext) => BreakerStateStore

/** State in this process only: each instance of a service judges the callee on its own calls. */
export function localState(): StateBackend {
  return ({ policy, clock }) => new LocalStateStore(policy, clock)
}

export class LocalStateStore implements BreakerStateStore {
  readonly backend = 'local'
  readonly #core: BreakerCore
  readonly #clock: Clock

  constructor(policy: BreakerPolicy, clock: Clock) {
    this.#core = new BreakerCore(policy)
    this.#clock = clock
  }

  admitNow(): StateAdmission {
    const admission = this.#core.admit(this.#clock.monotonicMs())
    return {
      ...admission,
      backend: 'local',
      ...(admission.verdict === 'rejected' ? {} : { permit: { verdict: admission.verdict, generation: admission.view.generation, grantedBy: this } }),
    }
  }

  recordNow(permit: Permit, failed: boolean): StateRecord {
    // A permit of another store (shared state, before a fallback) counts here too: seeding copied
    // its generation, so it applies unless this state has moved on since.
    return { ...this.#core.record(this.#clock.monotonicMs(), permit.generation, failed), backend: 'local' }
  }

  async admit(): Promise<StateAdmission> {
    return this.admitNow()
  }

  async record(permit: Permit, failed: boolean): Promise<StateRecord> {
    return this.recordNow(permit, failed)
  }

  seed(seen: StateView): void {
    this.#core.seed(this.#clock.monotonicMs(), seen)
  }
}
