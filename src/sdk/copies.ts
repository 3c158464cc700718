// The copies the SDK publishes of a record it could not handle where it found it: a dead letter,
// a delayed retry (the second retry tier) and a redriven record (`tideway dlq redrive`). Each is
// the record's key, value and headers, plus headers saying where it came from, and each carries
// its own idempotency key, so publishing it again after a crash stores it once on a Tideway topic
// with dedup. The record's own idempotency key travels in `tideway-original-idempotency-key`: the
// consumer's inbox uses that one, so the effect of a record and of its copies is applied once.

export const CopyHeader = {
  originalIdempotencyKey: 'tideway-original-idempotency-key',
  // dead letters (dead-letter.ts)
  dltSourceTopic: 'tideway-dlt-source-topic',
  dltSourcePartition: 'tideway-dlt-source-partition',
  dltSourceOffset: 'tideway-dlt-source-offset',
  dltGroup: 'tideway-dlt-group',
  /** transient | permanent | parked (not attempted: its key was parked behind an earlier dead letter) */
  dltErrorClass: 'tideway-dlt-error-class',
  dltError: 'tideway-dlt-error',
  dltAttempts: 'tideway-dlt-attempts',
  dltFirstFailure: 'tideway-dlt-first-failure',
  dltLastFailure: 'tideway-dlt-last-failure',
  // delayed retries
  retrySourceTopic: 'tideway-retry-source-topic',
  retrySourcePartition: 'tideway-retry-source-partition',
  retrySourceOffset: 'tideway-retry-source-offset',
  /** How many times the record went through the retry topic, this copy included. */
  retryCount: 'tideway-retry-count',
  /** Epoch ms before which the copy is not handled. */
  retryNotBefore: 'tideway-retry-not-before',
  // redrives (cli/dlq-command.ts)
  redriveId: 'tideway-redrive-id',
  redrivenFrom: 'tideway-redriven-from',
  /** On the last record of a key in one redrive: the consumer may unpark the key after it. */
  redriveLast: 'tideway-redrive-last',
} as const

/** Every header the SDK adds to a copy (so a copy of a copy starts clean). */
const OWN_PREFIXES = ['tideway-dlt-', 'tideway-retry-', 'tideway-redrive', 'tideway-original-idempotency-key']

/**
 * The headers of a copy: the record's own (without the SDK's copy headers and without its
 * idempotency key, which is kept as the original), then `added`.
 */
export function copyHeaders(
  headers: ReadonlyMap<string, Buffer>,
  idempotencyHeader: string,
  originalKey: string | null,
  added: Readonly<Record<string, string>>,
): Record<string, string | Buffer> {
  const out: Record<string, string | Buffer> = {}
  for (const [name, value] of headers) {
    if (name === idempotencyHeader || OWN_PREFIXES.some((prefix) => name.startsWith(prefix))) continue
    out[name] = value
  }
  if (originalKey !== null) out[CopyHeader.originalIdempotencyKey] = originalKey
  return Object.assign(out, added)
}
