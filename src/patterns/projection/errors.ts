// A projection's two failures, each with a stable code and a verdict, as TidewayError has.
import type { TidewayErrorCode } from '../../errors.ts'
import { TransientFailure } from '../../sdk/failures.ts'

/** The stored model was built by newer code: this (older) code must not write to it. */
export class ProjectionVersionError extends Error {
  readonly code: TidewayErrorCode = 'TIDEWAY_ERR_PROJECTION_VERSION'
  readonly retriable = false
  readonly projection: string
  readonly storedVersion: number
  readonly codeVersion: number

  constructor(projection: string, storedVersion: number, codeVersion: number) {
    super(
      `projection "${projection}" holds a model built by version ${storedVersion}, newer than this code's version ${codeVersion}: ` +
        'older code must not write to it (deploy the newer code, or rebuild with it)',
    )
    this.name = 'ProjectionVersionError'
    this.projection = projection
    this.storedVersion = storedVersion
    this.codeVersion = codeVersion
  }
}

/**
 * A write transaction found its generation frozen, swapped out or abandoned (lifecycle.ts
 * acceptsWrites). Transient, so the consumer rolls back and waits instead of dead-lettering,
 * while the projection moves its consumer to the generation that now accepts writes.
 */
export class GenerationClosed extends TransientFailure {
  readonly code: TidewayErrorCode = 'TIDEWAY_ERR_PROJECTION_GENERATION_CLOSED'
  readonly retriable = true
  readonly projection: string
  readonly generation: number

  constructor(projection: string, generation: number) {
    super(`projection "${projection}": generation ${generation} takes no more writes (a swap is under way or done)`)
    this.projection = projection
    this.generation = generation
  }
}
