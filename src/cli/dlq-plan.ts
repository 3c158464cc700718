// The pure parts of `tideway dlq`: reading a dead letter's provenance from its headers, the plan
// of a redrive (which record goes back where, and which is the last of its key), and the tables.
// The header names are the SDK's (src/sdk/copies.ts).
import { CopyHeader, copyHeaders } from '../sdk/copies.ts'
import { IDEMPOTENCY_KEY_HEADER } from '../sdk/delivery.ts'
import type { OutgoingMessage } from '../sdk/producer.ts'
import type { ConsumedRecord } from './consume-plan.ts'
import { formatTable } from './output.ts'

/** The SDK names a topic's dead-letter topic `<topic>.dlt`. */
export const DLT_SUFFIX = '.dlt'
/** The group whose committed offsets on a dead-letter topic say how far redrives got. */
export const REDRIVE_CURSOR_GROUP = 'tideway-dlq-redrive'

export interface DeadLetter {
  readonly dltTopic: string
  readonly dltPartition: number
  readonly dltOffset: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: ReadonlyMap<string, Buffer>
  /** Where the record failed; null when the headers do not say (not a Tideway dead letter). */
  readonly source: { readonly topic: string; readonly partition: number; readonly offset: bigint } | null
  readonly group: string | null
  readonly errorClass: string | null
  readonly error: string | null
  readonly attempts: number | null
  readonly lastFailure: string | null
}

export function deadLetterOf(record: ConsumedRecord): DeadLetter {
  const headers = new Map<string, Buffer>()
  for (const [name, value] of record.headers) if (name) headers.set(name.toString(), value ?? Buffer.alloc(0))
  const text = (name: string) => headers.get(name)?.toString() ?? null
  const topic = text(CopyHeader.dltSourceTopic)
  const partition = Number(text(CopyHeader.dltSourcePartition))
  const offset = text(CopyHeader.dltSourceOffset)
  const attempts = text(CopyHeader.dltAttempts)
  return {
    dltTopic: record.topic,
    dltPartition: record.partition,
    dltOffset: record.offset,
    key: record.key,
    value: record.value,
    headers,
    source: topic && Number.isInteger(partition) && offset && /^\d+$/.test(offset) ? { topic, partition, offset: BigInt(offset) } : null,
    group: text(CopyHeader.dltGroup),
    errorClass: text(CopyHeader.dltErrorClass),
    error: text(CopyHeader.dltError),
    attempts: attempts === null ? null : Number(attempts),
    lastFailure: text(CopyHeader.dltLastFailure),
  }
}

export interface RedriveStep {
  readonly from: DeadLetter
  readonly topic: string
  readonly message: OutgoingMessage & { readonly partition: number }
}

/**
 * Where each dead letter goes back to, in dead-letter order: its source topic and partition, with
 * its key, value and own headers, its original idempotency key, and the redrive's headers. Each
 * copy's idempotency key is its dead letter's position, so running the redrive again after a
 * crash stores it once on a Tideway topic with dedup. The last record of each (topic, partition,
 * key) is marked, so a consumer with the park-key policy unparks the key after it.
 */
export function planRedrive(letters: readonly DeadLetter[], redriveId: string): { steps: RedriveStep[]; skipped: DeadLetter[] } {
  const steps: RedriveStep[] = []
  const skipped: DeadLetter[] = []
  const lastOfKey = new Map<string, number>()
  for (const letter of letters) {
    if (!letter.source) {
      skipped.push(letter)
      continue
    }
    const original = letter.headers.get(CopyHeader.originalIdempotencyKey)?.toString() ?? null
    const headers = copyHeaders(letter.headers, IDEMPOTENCY_KEY_HEADER, original, {
      [CopyHeader.redriveId]: redriveId,
      [CopyHeader.redrivenFrom]: `${letter.dltTopic}:${letter.dltPartition}:${letter.dltOffset}`,
    })
    const step: RedriveStep = {
      from: letter,
      topic: letter.source.topic,
      message: {
        key: letter.key,
        value: letter.value,
        headers,
        partition: letter.source.partition,
        idempotencyKey: `redrive:${letter.dltTopic}:${letter.dltPartition}:${letter.dltOffset}`,
      },
    }
    if (letter.key) lastOfKey.set(`${letter.source.topic}\u0000${letter.source.partition}\u0000${letter.key.toString('hex')}`, steps.length)
    steps.push(step)
  }
  for (const index of lastOfKey.values()) {
    const step = steps[index]!
    steps[index] = { ...step, message: { ...step.message, headers: { ...step.message.headers, [CopyHeader.redriveLast]: 'true' } } }
  }
  return { steps, skipped }
}

const printable = (b: Buffer | null) => (b === null ? '-' : b.toString('utf8'))

/** Sends a plan's records, one request per run of records going to the same partition, in dead-letter order. */
export async function sendRedrive(
  producer: { sendBatch(topic: string, messages: OutgoingMessage[]): Promise<unknown> },
  steps: readonly RedriveStep[],
): Promise<void> {
  for (let at = 0; at < steps.length; ) {
    let end = at + 1
    while (end < steps.length && steps[end]!.topic === steps[at]!.topic && steps[end]!.message.partition === steps[at]!.message.partition) end++
    await producer.sendBatch(steps[at]!.topic, steps.slice(at, end).map((s) => s.message))
    at = end
  }
}

export function formatDeadLetters(letters: readonly DeadLetter[]): string {
  return formatTable(
    ['OFFSET', 'SOURCE', 'GROUP', 'CLASS', 'ATTEMPTS', 'LAST FAILURE', 'KEY', 'ERROR'],
    letters.map((l) => [
      `${l.dltPartition}:${l.dltOffset}`,
      l.source ? `${l.source.topic}-${l.source.partition}@${l.source.offset}` : '-',
      l.group ?? '-',
      l.errorClass ?? '-',
      l.attempts === null ? '-' : String(l.attempts),
      l.lastFailure ?? '-',
      printable(l.key),
      (l.error ?? '-').replace(/\s+/g, ' ').slice(0, 80),
    ]),
    [4],
  )
}

export function formatRedrivePlan(steps: readonly RedriveStep[]): string {
  const counts = new Map<string, number>()
  for (const step of steps) {
    const where = `${step.topic}-${step.message.partition}`
    counts.set(where, (counts.get(where) ?? 0) + 1)
  }
  return formatTable(['TO', 'RECORDS'], [...counts].map(([where, n]) => [where, String(n)]), [1])
}
