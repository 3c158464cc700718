// Time is an input. Code that needs "now" takes a Clock, so tests move time instead of sleeping.
// `wallMs` is for timestamps that go on the wire or into the log; `monotonicMs` is for timeouts,
// which must not jump when the wall clock is stepped.

export interface Clock {
  wallMs(): number
  monotonicMs(): number
}

export const systemClock: Clock = {
  wallMs: () => Date.now(),
  monotonicMs: () => performance.now(),
}

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  #wall: number
  #mono = 0
  constructor(startWallMs = 1_700_000_000_000) {
    this.#wall = startWallMs
  }
  wallMs(): number {
    return this.#wall
  }
  monotonicMs(): number {
    return this.#mono
  }
  advance(ms: number): void {
    this.#wall += ms
    this.#mono += ms
  }
}
