// Maps Tideway's own errors to the most specific Kafka error code. Retriable conditions map to
// retriable codes (a fenced partition is KAFKA_STORAGE_ERROR, as Kafka does for an offline log
// dir); UNKNOWN_SERVER_ERROR is reserved for exceptions we did not anticipate, which are bugs
// and are logged at error level with their context.

import { isTidewayError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { ErrorCode } from '../protocol/error-codes.ts'

export function kafkaErrorFor(err: unknown, logger: Logger, context: Record<string, unknown>): number {
  if (isTidewayError(err)) {
    switch (err.code) {
      case 'TIDEWAY_ERR_STORAGE_FENCED':
      case 'TIDEWAY_ERR_STORAGE_IO':
        return ErrorCode.KAFKA_STORAGE_ERROR
      case 'TIDEWAY_ERR_CORRUPT_BATCH':
        return ErrorCode.CORRUPT_MESSAGE
      case 'TIDEWAY_ERR_INVALID_RECORD':
        return ErrorCode.INVALID_RECORD
      case 'TIDEWAY_ERR_OFFSET_OUT_OF_RANGE':
        return ErrorCode.OFFSET_OUT_OF_RANGE
      case 'TIDEWAY_ERR_CONFIG':
        return ErrorCode.INVALID_CONFIG
      case 'TIDEWAY_ERR_CLOSED':
        // The broker is shutting down: the client refreshes metadata and retries elsewhere/later.
        return ErrorCode.NOT_LEADER_OR_FOLLOWER
      case 'TIDEWAY_ERR_DECODE':
        return ErrorCode.INVALID_REQUEST
      case 'TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE':
        return ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
      case 'TIDEWAY_ERR_PRODUCER_FENCED':
        return ErrorCode.INVALID_PRODUCER_EPOCH
      default:
        break
    }
  }
  logger.error('unexpected error in request handler', { err, stack: (err as Error)?.stack, ...context })
  return ErrorCode.UNKNOWN_SERVER_ERROR
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
