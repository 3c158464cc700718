// How a handler's failure is treated (research frameworks.md finding 8: every mature framework
// separates "do not retry" from "retry"; breakers add a third class, failures that are a business
// outcome). A handler picks the class by throwing one of these; anything else is classified by
// the consumer's `classify` option, transient by default.
//
//   expected   a business outcome (an unknown account, a declined card): not retried, not
//              dead-lettered; the message counts as handled and its offset is committed.
//   transient  might succeed later (a timeout, a lock, a service down): retried with backoff,
//              then released to the retry topic or dead-lettered when attempts run out.
//   permanent  will never succeed (a malformed payload, a bug): dead-lettered at once.

export const FailureKind = { expected: 'expected', transient: 'transient', permanent: 'permanent' } as const
export type FailureKind = (typeof FailureKind)[keyof typeof FailureKind]

/** A failure that says how it is to be treated; the three classes below are the ones to throw. */
export abstract class ClassifiedFailure extends Error {
  abstract readonly kind: FailureKind
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

export class ExpectedFailure extends ClassifiedFailure {
  readonly kind = FailureKind.expected
}

export class TransientFailure extends ClassifiedFailure {
  readonly kind = FailureKind.transient
}

export class PermanentFailure extends ClassifiedFailure {
  readonly kind = FailureKind.permanent
}

/** An attempt that ran past its time limit: transient. */
export class AttemptTimeout extends TransientFailure {
  constructor(timeoutMs: number) {
    super(`the attempt did not finish within ${timeoutMs} ms`)
  }
}

export type Classifier = (err: unknown) => FailureKind

/** The class a thrown value asks for; `fallback` decides for anything that is not ours. */
export function classifyFailure(err: unknown, fallback: Classifier = () => FailureKind.transient): FailureKind {
  if (err instanceof ClassifiedFailure) return err.kind
  return fallback(err)
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
