// Failures of the client commands, and their one-line explanation. A command fails with a
// CommandError (exit 1) or a UsageError (exit 2); a failure of the Kafka client is translated
// here, by error class and Kafka error name (never by message text), into a sentence that names
// the topic or the broker. Anything else is our bug and keeps its stack trace.
import {
  GenericError,
  NetworkError,
  ProtocolError,
  TimeoutError,
  UnsupportedApiError,
  UserError,
} from '@platformatic/kafka'

export class CommandError extends Error {
  readonly exitCode: 1 | 2

  constructor(message: string, options: { cause?: unknown; exitCode?: 1 | 2 } = {}) {
    super(message, { cause: options.cause })
    this.name = 'CommandError'
    this.exitCode = options.exitCode ?? 1
  }
}

/** Bad flags or arguments: exit code 2, and a pointer to `--help`. */
export class UsageError extends CommandError {
  constructor(message: string) {
    super(message, { exitCode: 2 })
    this.name = 'UsageError'
  }
}

/** What the command was doing when the client failed, for the message. */
export interface FailureContext {
  /** e.g. `create topic "orders"`; the message reads `cannot create topic "orders": ...`. */
  readonly action: string
  readonly bootstrap: string
  readonly topic?: string
}

/** The client error as a CommandError, or undefined if it is not a Kafka client failure. */
export function explainClientError(err: unknown, context: FailureContext): CommandError | undefined {
  if (err instanceof CommandError) return err
  if (!(err instanceof Error) || !GenericError.isGenericError(err)) return undefined
  const leaves = leafErrors(err)
  const protocol = leaves.find((e): e is ProtocolError => e instanceof ProtocolError)
  if (protocol) return new CommandError(explainProtocolError(protocol, context), { cause: err })
  const timeout = leaves.find((e) => e instanceof TimeoutError)
  if (timeout) {
    return new CommandError(`cannot ${context.action}: no answer from the broker at ${context.bootstrap} in time`, { cause: err })
  }
  const network = leaves.find((e) => e instanceof NetworkError)
  if (network) {
    const reason = network.cause instanceof Error ? network.cause.message : network.message
    return new CommandError(`cannot reach a broker at ${context.bootstrap} (${reason})`, { cause: err })
  }
  const unsupported = leaves.find((e) => e instanceof UnsupportedApiError)
  if (unsupported) {
    return new CommandError(`cannot ${context.action}: the broker at ${context.bootstrap} does not support it (${unsupported.message})`, { cause: err })
  }
  const user = leaves.find((e) => e instanceof UserError) ?? leaves[0]
  return new CommandError(`cannot ${context.action}: ${user?.message ?? err.message}`, { cause: err })
}

function explainProtocolError(error: ProtocolError, context: FailureContext): string {
  const apiId = String(error['apiId'])
  const serverMessage = typeof error['serverErrorMessage'] === 'string' && error['serverErrorMessage'] !== '' ? error['serverErrorMessage'] : undefined
  const topic = context.topic === undefined ? 'topic' : `topic "${context.topic}"`
  switch (apiId) {
    case 'UNKNOWN_TOPIC_OR_PARTITION':
      return `${topic} does not exist`
    case 'TOPIC_ALREADY_EXISTS':
      return `${topic} already exists`
    case 'INVALID_CONFIG':
      return `cannot ${context.action}: invalid config${serverMessage ? ` (${serverMessage})` : ''}`
  }
  return `cannot ${context.action}: ${apiId} (${serverMessage ?? error.message})`
}

/** Whether the client failure carries this Kafka error (by its protocol name, e.g. OFFSET_OUT_OF_RANGE). */
export function hasKafkaError(err: unknown, apiId: string): boolean {
  if (!(err instanceof Error) || !GenericError.isGenericError(err)) return false
  return leafErrors(err).some((e) => e instanceof ProtocolError && e['apiId'] === apiId)
}

/** The innermost errors of the client's nested MultipleErrors and causes. */
function leafErrors(err: Error): Error[] {
  const out: Error[] = []
  const visit = (e: Error, depth: number) => {
    // The client nests a few levels (operation -> retries -> response -> partition); bound the
    // walk anyway, since a cycle of causes would otherwise never end.
    if (depth > 16) return
    if (e instanceof AggregateError) {
      for (const inner of e.errors) if (inner instanceof Error) visit(inner, depth + 1)
      if (e.errors.length > 0) return
    }
    if (e instanceof GenericError && !(e instanceof NetworkError) && e.cause instanceof Error && GenericError.isGenericError(e.cause)) {
      visit(e.cause, depth + 1)
      return
    }
    out.push(e)
  }
  visit(err, 0)
  return out
}
