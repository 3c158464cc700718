// Request/response idempotency (seed 0's billing service): the caller sends a `sequence_key` with
// every request and the same key again when it retries (`is_retry`); the service stores the key
// with its answer in the same database transaction as the effect (the new balance). A retry
// finds the key and gets the stored answer back without the effect happening again, whether the
// first attempt's answer was lost on the way or never sent.
//
//   const { response, replayed } = await handleIdempotently(store, { scope: 'charge', key }, async (tx) => {
//     await tx.query('UPDATE balances SET cents = cents - $1 WHERE account = $2', [amount, account])
//     return { status: 'charged', balance: ... }
//   })
//
// A request that fails (the effect throws) stores nothing: the transaction rolls back, so its
// retry runs the effect again. `is_retry` needs no special handling: a first attempt whose key is
// already stored is answered like a retry, which is what the caller needs either way. Two
// concurrent requests with one key are serialised by the key's row: the second waits for the first
// transaction and then replays its answer.

import type { Store, StoreTransaction } from './store.ts'

export interface RequestIdentity {
  /** The operation the key belongs to (keys of different operations never collide). */
  readonly scope: string
  /** The caller's idempotency key (the seed's sequence_key). */
  readonly key: string
}

export interface IdempotentOutcome<R> {
  readonly response: R
  /** True when the response is the stored one of an earlier request with this key. */
  readonly replayed: boolean
}

export interface ResponseCodec<R> {
  encode(response: R): Buffer
  decode(bytes: Buffer): R
}

const jsonCodec: ResponseCodec<unknown> = {
  encode: (response) => Buffer.from(JSON.stringify(response)),
  decode: (bytes) => JSON.parse(bytes.toString('utf8')),
}

export async function handleIdempotently<R>(
  store: Store,
  request: RequestIdentity,
  effect: (tx: StoreTransaction) => Promise<R>,
  codec: ResponseCodec<R> = jsonCodec as ResponseCodec<R>,
): Promise<IdempotentOutcome<R>> {
  if (!request.key) throw new TypeError('an idempotent request needs a non-empty key')
  return store.transaction(async (tx) => {
    const claim = await tx.claimRequest(request.scope, request.key, Date.now())
    if (claim.state === 'done') return { response: codec.decode(claim.response), replayed: true }
    const response = await effect(tx)
    await tx.completeRequest(request.scope, request.key, codec.encode(response))
    return { response, replayed: false }
  })
}
