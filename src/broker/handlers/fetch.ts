// Fetch (key 1), versions 4-12. Reads whole batches starting at the batch that contains the
// fetch offset (clients skip the records before it), never past the high watermark, so a
// consumer never sees data a crash could take back. Size limits follow KIP-74: partitions are
// filled in request order within max_bytes, capped by the broker's fetchMaxBytes (Kafka's
// fetch.max.bytes) whatever the client asks, and the first non-empty partition returns at least
// one whole batch even if it is larger. Only what the answer holds is read into memory. Long poll: with fewer than min_bytes available the
// answer waits up to max_wait_ms (capped by maxFetchWaitMs) for new data, and always answers
// when the wait ends, even with nothing. No fetch sessions (session id 0: "full fetch" every
// time, which all clients accept) and no transactions (last stable offset = high watermark).
import { Fetch } from '../../protocol/apis/fetch.ts'
import { ErrorCode } from '../../protocol/error-codes.ts'
import type { RequestOf } from '../../protocol/schema.ts'
import type { PartitionLog } from '../../storage/partition-log.ts'
import { kafkaErrorFor } from '../error-mapping.ts'
import { defineHandler, type BrokerServices, type RequestContext } from '../handler.ts'

type FetchRequest = RequestOf<typeof Fetch>
const EMPTY = Buffer.alloc(0)

export function fetchHandler(broker: BrokerServices) {
  return defineHandler(Fetch, async (req, ctx) => {
    const clock = broker.clock
    const deadline = clock.monotonicMs() + Math.min(Math.max(req.maxWaitMs, 0), broker.config.maxFetchWaitMs)
    for (;;) {
      const result = await readAll(broker, req, ctx)
      const remaining = deadline - clock.monotonicMs()
      if (result.bytes >= req.minBytes || result.failed || remaining <= 0 || ctx.signal.aborted) {
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses: result.responses }
      }
      await waitForNewData(result.logs, remaining, ctx.signal)
    }
  })
}

async function readAll(broker: BrokerServices, req: FetchRequest, ctx: RequestContext) {
  let budget = Math.min(req.maxBytes, broker.config.fetchMaxBytes)
  let bytes = 0
  let failed = false
  const logs: PartitionLog[] = []
  const abortedTransactions = req.isolationLevel === 1 ? [] : null
  const responses = []
  for (const topic of req.topics) {
    const partitions = []
    for (const p of topic.partitions) {
      const log = broker.topics.partition(topic.topic, p.partition)
      const base = {
        partitionIndex: p.partition,
        abortedTransactions,
        preferredReadReplica: -1,
      }
      if (!log) {
        failed = true
        partitions.push({ ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, highWatermark: -1n, records: EMPTY })
        continue
      }
      logs.push(log)
      const offsets = () => ({
        highWatermark: log.highWatermark,
        lastStableOffset: log.highWatermark,
        logStartOffset: log.logStartOffset,
      })
      // Once the budget is spent, later partitions report their offsets but no data (KIP-74).
      if (budget <= 0 || p.fetchOffset === log.highWatermark) {
        partitions.push({ ...base, errorCode: ErrorCode.NONE, ...offsets(), records: EMPTY })
        continue
      }
      try {
        const read = await log.read(p.fetchOffset, Math.min(p.partitionMaxBytes, budget))
        let records = read.records
        if (bytes > 0 && records.length > budget) records = EMPTY // only the first non-empty may overshoot
        bytes += records.length
        budget -= records.length
        if (records.length > 0) broker.metrics.fetchedBytes.inc({ topic: topic.topic }, records.length)
        partitions.push({
          ...base,
          errorCode: ErrorCode.NONE,
          highWatermark: read.highWatermark,
          lastStableOffset: read.highWatermark,
          logStartOffset: read.logStartOffset,
          records,
        })
      } catch (err) {
        failed = true
        const errorCode = kafkaErrorFor(err, ctx.logger, { topic: topic.topic, partition: p.partition })
        partitions.push({ ...base, errorCode, ...offsets(), records: EMPTY })
      }
    }
    responses.push({ topic: topic.topic, partitions })
  }
  return { responses, bytes, failed, logs }
}

/** Resolves when any of the logs' high watermark advances, the time is up, or the signal fires. */
function waitForNewData(logs: readonly PartitionLog[], timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const unsubscribes: (() => void)[] = []
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      for (const unsubscribe of unsubscribes) unsubscribe()
      resolve()
    }
    const timer = setTimeout(done, timeoutMs)
    signal.addEventListener('abort', done, { once: true })
    for (const log of logs) unsubscribes.push(log.onHighWatermark(done))
  })
}
