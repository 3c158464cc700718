// Produce (key 0). Advertised 0-8; served 3-8 (v0-2 are answered UNSUPPORTED_VERSION per
// partition, see protocol/apis/produce.ts for why they are advertised at all).
//
// Per partition: every batch is validated (length, magic 2, CRC-32C, record count, no control
// batches from clients, max.message.bytes) before any is appended, so a request is applied to a
// partition whole or not at all. With acks=1 or -1 the answer waits until the batches are durable
// under the broker's flush policy (fsync by default); acks=0 gets no answer at all.
// Batches from idempotent producers are checked against the partition's producer state as they
// are appended (storage/producer-state.ts): a retry is answered with the original offsets.
// On topics with idempotency-key dedup (tideway.dedup.enable), records whose key the partition
// already stored are dropped (storage/dedup-window.ts): the answer's base offset is the stored
// batch's, or, when every record was a duplicate, the first one's original; the error message
// (v8+, with error code NONE, which clients ignore) lists the originals of the dropped records.
// A batch whose records do not decode is refused there with INVALID_RECORD.
// On compacted topics (cleanup.policy compact) every batch is opened, and one holding a record
// without a key is refused with INVALID_RECORD, as Kafka does.
// Differences from Kafka: the produce timeout is not applied (we answer when the data is durable
// rather than guess); a request with several batches for one partition from an idempotent
// producer is checked batch by batch, so a sequence error in a later batch leaves the earlier
// ones stored (clients send one batch per partition); transactions are refused. A partition
// fenced because the disk was full reopens on a later produce once there is space again.
import { Produce } from '../../protocol/apis/produce.ts'
import { ErrorCode, errorName } from '../../protocol/error-codes.ts'
import { isControlBatch, splitBatches, validateBatch, type BatchHeader } from '../../protocol/record-batch.ts'
import { kafkaErrorFor, messageOf } from '../error-mapping.ts'
import { hasRecordWithoutKey } from '../../storage/cleaner.ts'
import type { AppendResult } from '../../storage/partition-log.ts'
import { cleanupPolicies } from '../../storage/topic-config.ts'
import { defineHandler, NO_RESPONSE, type BrokerServices, type RequestContext } from '../handler.ts'

interface PartitionResult {
  index: number
  errorCode: number
  baseOffset: bigint
  logAppendTimeMs: bigint
  logStartOffset: bigint
  errorMessage: string | null
}

export function produceHandler(broker: BrokerServices) {
  return defineHandler(Produce, async (req, ctx) => {
    const refuse = (errorCode: number, errorMessage: string) => (index: number) => failed(index, errorCode, errorMessage)
    let refusal: ((index: number) => PartitionResult) | undefined
    if (ctx.apiVersion < 3) {
      refusal = refuse(ErrorCode.UNSUPPORTED_VERSION, 'Produce v0-2 (message format v0/v1) is not supported; use v3+')
    } else if (req.acks !== 0 && req.acks !== 1 && req.acks !== -1) {
      refusal = refuse(ErrorCode.INVALID_REQUIRED_ACKS, `acks must be 0, 1 or -1, got ${req.acks}`)
    } else if (req.transactionalId !== null) {
      refusal = refuse(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 'transactions are not supported yet')
    }

    const responses = await Promise.all(
      req.topicData.map(async (topic) => ({
        name: topic.name,
        partitionResponses: await Promise.all(
          topic.partitionData.map((p) =>
            refusal ? refusal(p.index) : producePartition(broker, topic.name, p.index, p.records, ctx),
          ),
        ),
      })),
    )
    if (req.acks === 0) return NO_RESPONSE
    return { responses, throttleTimeMs: 0 }
  })
}

function failed(index: number, errorCode: number, errorMessage: string): PartitionResult {
  return { index, errorCode, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n, errorMessage }
}

async function producePartition(
  broker: BrokerServices,
  topic: string,
  index: number,
  records: Buffer | null,
  ctx: RequestContext,
): Promise<PartitionResult> {
  const fail = (errorCode: number, errorMessage: string) => failed(index, errorCode, errorMessage)
  const info = broker.topics.getTopic(topic)
  const log = broker.topics.partition(topic, index)
  if (!info || !log) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic-partition ${topic}-${index}`)
  if (!records || records.length === 0) return fail(ErrorCode.INVALID_RECORD, 'no record batch in the request')

  const maxMessageBytes = info.configs['max.message.bytes']
  const batches: { batch: Buffer; header: BatchHeader }[] = []
  try {
    for (const batch of splitBatches(records)) {
      const header = validateBatch(batch)
      if (batch.length > maxMessageBytes) {
        return fail(ErrorCode.MESSAGE_TOO_LARGE, `batch of ${batch.length} bytes exceeds max.message.bytes ${maxMessageBytes}`)
      }
      if (isControlBatch(header.attributes)) return fail(ErrorCode.INVALID_RECORD, 'clients may not write control batches')
      if (header.producerId >= 0n && header.baseSequence < 0) {
        return fail(ErrorCode.INVALID_RECORD, 'a batch with a producer id needs a base sequence')
      }
      batches.push({ batch, header })
    }
  } catch (err) {
    return fail(ErrorCode.CORRUPT_MESSAGE, messageOf(err))
  }

  if (cleanupPolicies(info.configs).compact) {
    try {
      for (const { batch, header } of batches) {
        if (await hasRecordWithoutKey(batch, header)) return fail(ErrorCode.INVALID_RECORD, 'Compacted topic cannot accept message without key')
      }
    } catch (err) {
      return fail(ErrorCode.INVALID_RECORD, messageOf(err))
    }
  }

  // Offsets are assigned in call order, so issuing every append before awaiting keeps the
  // batches of one request contiguous.
  const appends = batches.map(({ batch, header }) => log.append(batch, header))
  try {
    const results = await Promise.all(appends)
    const first = results[0]!
    const duplicates = results.flatMap((r) => r.duplicateOffsets ?? [])
    countAppended(broker, topic, batches, results, duplicates.length)
    return {
      index,
      errorCode: ErrorCode.NONE,
      baseOffset: first.baseOffset,
      logAppendTimeMs: first.logAppendTimeMs,
      logStartOffset: results[results.length - 1]!.logStartOffset,
      errorMessage: duplicates.length > 0 ? duplicatesMessage(duplicates) : null,
    }
  } catch (err) {
    const errorCode = kafkaErrorFor(err, ctx.logger, { topic, partition: index })
    // A partition fenced by a full disk reopens once there is space; the client's retry finds it.
    if (errorCode === ErrorCode.KAFKA_STORAGE_ERROR) void broker.topics.reopenIfSpace(topic, index)
    return fail(errorCode, `${errorName(errorCode)}: ${messageOf(err)}`)
  }
}

function countAppended(
  broker: BrokerServices,
  topic: string,
  batches: readonly { batch: Buffer; header: BatchHeader }[],
  results: readonly AppendResult[],
  keyDuplicates: number,
): void {
  const { metrics } = broker
  let records = 0
  let bytes = 0
  let repeated = 0
  batches.forEach(({ batch, header }, i) => {
    if (results[i]!.repeated) repeated += header.recordCount
    else {
      records += header.recordCount
      bytes += batch.length
    }
  })
  records -= keyDuplicates
  if (records > 0) metrics.producedRecords.inc({ topic }, records)
  if (bytes > 0) metrics.producedBytes.inc({ topic }, bytes)
  if (repeated > 0) metrics.dedupHits.inc({ topic, kind: 'producer-sequence' }, repeated)
  if (keyDuplicates > 0) metrics.dedupHits.inc({ topic, kind: 'idempotency-key' }, keyDuplicates)
}

const LISTED_DUPLICATES = 10

function duplicatesMessage(originals: readonly bigint[]): string {
  const listed = originals.slice(0, LISTED_DUPLICATES).join(', ')
  const more = originals.length > LISTED_DUPLICATES ? `, and ${originals.length - LISTED_DUPLICATES} more` : ''
  return `${originals.length} record(s) not stored again: their idempotency keys are stored at offsets ${listed}${more}`
}
