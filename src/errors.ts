// Tideway's own error catalogue. Every failure we raise carries a stable code and a verdict
// (`retriable`): callers classify by code or class, never by message text. Codes are never
// reused; a retired code stays listed with `retired: true`. Kafka's wire error codes live in
// src/protocol/error-codes.ts; `kafkaErrorFor` in the broker maps ours onto theirs.

interface ErrorSpec {
  readonly message: string
  readonly retriable: boolean
}

export const TidewayErrorCodes = {
  TIDEWAY_ERR_DECODE: {
    message: 'malformed protocol data',
    retriable: false,
  },
  TIDEWAY_ERR_ENCODE: {
    message: 'value cannot be encoded in this protocol version',
    retriable: false,
  },
  TIDEWAY_ERR_FRAME_TOO_LARGE: {
    message: 'frame exceeds the configured maximum size',
    retriable: false,
  },
  TIDEWAY_ERR_CORRUPT_BATCH: {
    message: 'record batch failed validation (length, magic or CRC-32C)',
    retriable: false,
  },
  TIDEWAY_ERR_INVALID_RECORD: {
    message: 'a record inside the batch does not decode',
    retriable: false,
  },
  TIDEWAY_ERR_STORAGE_FENCED: {
    message: 'partition is fenced after a storage failure; restart the broker to recover',
    retriable: true,
  },
  TIDEWAY_ERR_STORAGE_IO: {
    message: 'storage I/O failed',
    retriable: true,
  },
  TIDEWAY_ERR_OFFSET_OUT_OF_RANGE: {
    message: 'offset is outside the log',
    retriable: false,
  },
  TIDEWAY_ERR_CONFIG: {
    message: 'invalid configuration',
    retriable: false,
  },
  TIDEWAY_ERR_CLOSED: {
    message: 'the component is closed',
    retriable: false,
  },
  TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE: {
    message: 'an idempotent producer\'s batch does not follow its previous one (a sequence gap)',
    retriable: false,
  },
  TIDEWAY_ERR_PRODUCER_FENCED: {
    message: 'an idempotent producer wrote with an epoch older than the current one',
    retriable: false,
  },
  // Raised as CircuitOpenError and CallTimeoutError (src/patterns/circuit-breaker/errors.ts),
  // which are TransientFailures so the SDK's consumers retry them.
  TIDEWAY_ERR_CIRCUIT_OPEN: {
    message: 'the circuit breaker is open: the call was not made',
    retriable: true,
  },
  TIDEWAY_ERR_CALL_TIMEOUT: {
    message: 'a call through a circuit breaker ran past its timeout',
    retriable: true,
  },
  // Raised as ProjectionVersionError and GenerationClosed (src/patterns/projection/errors.ts).
  TIDEWAY_ERR_PROJECTION_VERSION: {
    message: 'the stored read model was built by newer code than this',
    retriable: false,
  },
  TIDEWAY_ERR_PROJECTION_GENERATION_CLOSED: {
    message: "a projection's generation takes no more writes (a rebuild swapped it out)",
    retriable: true,
  },
} as const satisfies Record<string, ErrorSpec>

export type TidewayErrorCode = keyof typeof TidewayErrorCodes

export class TidewayError extends Error {
  readonly code: TidewayErrorCode
  readonly retriable: boolean
  readonly context: Readonly<Record<string, unknown>>

  constructor(
    code: TidewayErrorCode,
    detail?: string,
    options: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    const spec = TidewayErrorCodes[code]
    super(detail ? `${spec.message}: ${detail}` : spec.message, { cause: options.cause })
    this.name = 'TidewayError'
    this.code = code
    this.retriable = spec.retriable
    this.context = options.context ?? {}
  }
}

export function isTidewayError(err: unknown, code?: TidewayErrorCode): err is TidewayError {
  return err instanceof TidewayError && (code === undefined || err.code === code)
}
