// The console's one action: send dead letters back to where they failed, as `tideway dlq
// redrive --execute` does (the same plan, cli/dlq-plan.ts: the record's key, value and own
// headers, its original idempotency key, the redrive headers, one idempotency key per dead
// letter). The copies go through an SDK producer connected to the broker's advertised address,
// so they are produced like any client's records: validated, deduplicated, counted.
//
// "all" sends what lies past the redrive cursor (the committed offsets of tideway-dlq-redrive,
// shared with the CLI) and moves the cursor past what it read, so neither sends a record back
// twice; one click reads at most MAX_REDRIVE letters and says how many are left. One record sent
// back by hand leaves the cursor where it is.

import { randomUUID } from 'node:crypto'
import { deadLetterOf, DLT_SUFFIX, planRedrive, REDRIVE_CURSOR_GROUP, sendRedrive, type DeadLetter, type RedriveStep } from '../cli/dlq-plan.ts'
import type { BrokerServices } from '../broker/handler.ts'
import { createProducer } from '../sdk/producer.ts'
import { ConsoleError, Limits, redriveCursor } from './api.ts'
import { readRecordPage } from './records.ts'

export const MAX_REDRIVE = 10_000

export type RedriveRequest = { readonly all: true } | { readonly partition: number; readonly offset: bigint }

export interface RedriveResult {
  readonly redriveId: string
  readonly sent: number
  /** Records without dead-letter provenance headers: left where they are. */
  readonly skipped: number
  /** Letters past the cursor that this click did not read ("all" only). */
  readonly remaining: bigint
  readonly to: readonly { readonly topic: string; readonly partition: number; readonly records: number }[]
}

export async function redrive(services: BrokerServices, topic: string, request: RedriveRequest): Promise<RedriveResult> {
  const info = services.topics.getTopic(topic)
  if (!topic.endsWith(DLT_SUFFIX) || !info) throw new ConsoleError(404, `no dead-letter topic "${topic}"`)
  const letters: DeadLetter[] = []
  const moved = new Map<number, bigint>()
  let remaining = 0n
  if ('all' in request) {
    const cursor = redriveCursor(services.groups, topic, info.partitions)
    for (let partition = 0; partition < info.partitions; partition++) {
      const log = services.topics.partition(topic, partition)!
      let offset = cursor[partition]!
      while (offset < log.highWatermark && letters.length < MAX_REDRIVE) {
        const page = await readRecordPage(log, offset, Math.min(Limits.maxRecords, MAX_REDRIVE - letters.length), Limits.pageBytes)
        for (const r of page.records) if (!('error' in r)) letters.push(deadLetterOf(r))
        if (page.next === offset) break
        offset = page.next
      }
      moved.set(partition, offset)
      remaining += log.highWatermark - offset
    }
  } else {
    const log = services.topics.partition(topic, request.partition)
    const [record] = log ? (await readRecordPage(log, request.offset, 1, Limits.pageBytes)).records : []
    if (!record || 'error' in record || record.offset !== request.offset) {
      throw new ConsoleError(404, `no readable record at ${topic}-${request.partition}@${request.offset}`)
    }
    letters.push(deadLetterOf(record))
  }

  const redriveId = randomUUID()
  const { steps, skipped } = planRedrive(letters, redriveId)
  if (!('all' in request) && skipped.length > 0) throw new ConsoleError(400, 'this record has no dead-letter provenance headers: there is nowhere to send it back to')
  await send(services, steps)
  if (moved.size > 0) await moveCursor(services, topic, moved)
  return { redriveId, sent: steps.length, skipped: skipped.length, remaining, to: destinations(steps) }
}

async function send(services: BrokerServices, steps: readonly RedriveStep[]): Promise<void> {
  if (steps.length === 0) return
  const { host, port } = services.advertised
  const producer = createProducer({
    bootstrap: `${host}:${port}`,
    delivery: 'at-least-once',
    clientId: 'tideway-console-redrive',
    // The operator is waiting on the page: fail within seconds rather than retry for minutes.
    retry: { attempts: 3, deadlineMs: 15_000 },
    logger: services.logger.child({ component: 'console-redrive' }),
  })
  try {
    await sendRedrive(producer, steps)
  } catch (err) {
    throw new ConsoleError(502, `sending the dead letters back failed: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    await producer.close().catch(() => {})
  }
}

/** Commits the cursor in-process, as an admin client's OffsetCommit outside group management would. */
async function moveCursor(services: BrokerServices, topic: string, offsets: ReadonlyMap<number, bigint>): Promise<void> {
  const [result] = await services.groups.commitOffsets({
    groupId: REDRIVE_CURSOR_GROUP,
    generationId: -1,
    memberId: '',
    groupInstanceId: null,
    topics: [{ name: topic, partitions: [...offsets].map(([partitionIndex, committedOffset]) => ({ partitionIndex, committedOffset, committedLeaderEpoch: -1, committedMetadata: null })) }],
  })
  const failed = result?.partitions.find((p) => p.errorCode !== 0)
  if (failed) throw new ConsoleError(503, `the records were sent back, but moving the redrive cursor failed (Kafka error ${failed.errorCode}); a later redrive would send them again`)
}

function destinations(steps: readonly RedriveStep[]) {
  const counts = new Map<string, { topic: string; partition: number; records: number }>()
  for (const s of steps) {
    const key = `${s.topic}\u0000${s.message.partition}`
    const entry = counts.get(key) ?? { topic: s.topic, partition: s.message.partition, records: 0 }
    counts.set(key, { ...entry, records: entry.records + 1 })
  }
  return [...counts.values()]
}
