// `tideway produce <topic>`: each stdin line becomes one record, sent in batches (one Produce
// request carries up to BATCH_LIMITS of records, never one request per line). One batch is in
// flight while the next fills, and batches are sent in order, so records of a partition keep
// the order of the input. The first failed batch stops the command: nothing after it is sent,
// and the summary says how many records were acknowledged and how many were not.
//
// Partitions are chosen here, not by the client, so the summary can give each partition's
// first and last offset: `--partition N`, else a key's murmur2 hash (the Java client's default
// placement, so keyed records land where other Kafka clients would put them), else round robin.
import { compatibilityPartitioner, Producer, ProduceAcks, type MessageToProduce, type ProduceAckValue } from '@platformatic/kafka'
import { parseInteger, parsePairs } from './args.ts'
import { clientCall, defineCommand, type CommandIO } from './command.ts'
import { resolveConnection } from './connection.ts'
import { CommandError, UsageError } from './errors.ts'
import { readLines, splitKey } from './lines.ts'
import { formatTable, toJson } from './output.ts'
import { lookupTopic, requirePartition, type TopicLayout } from './topic-lookup.ts'

/** When a batch is handed to the producer: whichever limit is reached first. */
const BATCH_LIMITS = {
  records: 1000,
  /** Key and value bytes; stays well under the default max.message.bytes (1 MiB) per partition. */
  bytes: 512 * 1024,
  /** How long a partly filled batch waits for more input (an interactive or slow stdin). */
  lingerMs: 50,
} as const

const acksByName: Record<string, ProduceAckValue> = { all: ProduceAcks.ALL, '-1': ProduceAcks.ALL, '1': ProduceAcks.LEADER, '0': ProduceAcks.NO_RESPONSE }

export const produceCommand = defineCommand(
  {
    name: 'tideway produce',
    synopsis: '<topic> [options] < lines',
    summary: 'Send each line of stdin as one record. A summary goes to stderr.',
    positionals: ['topic'],
    options: {
      'key-separator': { type: 'string', placeholder: 'SEP', help: 'the text before the first SEP on a line is the record key' },
      partition: { type: 'string', placeholder: 'N', help: 'send every record to partition N (default: by key hash, else round robin)' },
      acks: { type: 'string', placeholder: 'all|1|0', help: 'all: wait until stored durably (default); 1: same on a single node; 0: no answer' },
      header: { type: 'string', multiple: true, placeholder: 'KEY=VALUE', help: 'add a header to every record (repeatable)' },
    },
    notes: 'With --json, one JSON object per batch is written to stdout: {batch, records, partitions: [{partition, records, firstOffset, lastOffset}]}.',
  },
  async (io, [topic], options) => {
    const connection = resolveConnection(options.bootstrap, io.env)
    const acks = acksByName[options.acks ?? 'all']
    if (acks === undefined) throw new UsageError(`--acks takes all, 1 or 0, got "${options.acks}"`)
    const fixedPartition = options.partition === undefined ? undefined : parseInteger('--partition', options.partition, 0, 2 ** 31 - 1)
    const separator = options['key-separator']
    if (separator === '') throw new UsageError('--key-separator must not be empty')
    const headers = new Map(parsePairs('--header', options.header).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]))

    const layout = await lookupTopic(connection, topic!)
    if (fixedPartition !== undefined) requirePartition(layout, fixedPartition)
    const producer = new Producer({ ...connection.clientOptions, acks })
    const sender = new BatchSender(io, producer, layout, acks, connection.bootstrap, options.json === true)
    const choose = partitionChooser(layout, fixedPartition)
    const keySeparator = separator === undefined ? undefined : Buffer.from(separator)
    const stopReading = () => io.stdin.destroy()
    io.stop.addEventListener('abort', stopReading, { once: true })
    try {
      try {
        for await (const line of readLines(io.stdin)) {
          const { key, value } = splitKey(line, keySeparator)
          const full = sender.add({ topic: layout.topic, key: key ?? undefined, value, headers, partition: choose(key) })
          if (full) await full
          if (sender.failed) break
        }
      } catch (err) {
        // Destroying stdin on SIGINT/SIGTERM ends the input early; what was read is still sent.
        if (!io.stop.aborted) throw err
      }
      await sender.finish()
    } finally {
      io.stop.removeEventListener('abort', stopReading)
      await producer.close().catch(() => {})
    }
    io.stderr.write(sender.summary())
    if (sender.failed) throw sender.failed
    return 0
  },
)

function partitionChooser(layout: TopicLayout, fixed: number | undefined): (key: Buffer | null) => number {
  const count = layout.leaders.length
  if (fixed !== undefined) return () => fixed
  let next = 0
  return (key) => {
    if (key === null) return next++ % count
    return compatibilityPartitioner({ topic: layout.topic }, key) % count
  }
}

interface PartitionTally {
  records: number
  firstOffset: bigint | undefined
  lastOffset: bigint | undefined
}

class BatchSender {
  readonly #io: CommandIO
  readonly #producer: Producer
  readonly #layout: TopicLayout
  readonly #acks: ProduceAckValue
  readonly #bootstrap: string
  readonly #json: boolean
  #pending: MessageToProduce[] = []
  #pendingBytes = 0
  #timer: NodeJS.Timeout | undefined
  /** The chain of batches handed over; never rejects (a failure is kept in #failure). */
  #inFlight: Promise<void> = Promise.resolve()
  #batches = 0
  #acknowledged = 0
  #unsent = 0
  #failure: CommandError | undefined
  readonly #tally = new Map<number, PartitionTally>()

  constructor(io: CommandIO, producer: Producer, layout: TopicLayout, acks: ProduceAckValue, bootstrap: string, json: boolean) {
    this.#io = io
    this.#producer = producer
    this.#layout = layout
    this.#acks = acks
    this.#bootstrap = bootstrap
    this.#json = json
  }

  get failed(): CommandError | undefined {
    return this.#failure
  }

  /** Queues a record; when the batch is full, returns a promise to await before adding more. */
  add(record: MessageToProduce): Promise<void> | undefined {
    this.#pending.push(record)
    this.#pendingBytes += (record.key?.length ?? 0) + (record.value?.length ?? 0)
    if (this.#pending.length >= BATCH_LIMITS.records || this.#pendingBytes >= BATCH_LIMITS.bytes) return this.#flush()
    this.#timer ??= setTimeout(() => void this.#flush(), BATCH_LIMITS.lingerMs)
    return undefined
  }

  /** Sends what is pending and waits for every batch. */
  async finish(): Promise<void> {
    await this.#flush()
    await this.#inFlight
  }

  /**
   * Hands the pending records over as one batch, sent after the batches before it. Resolves
   * when the previous batch is done, so at most one batch waits while another is in flight.
   */
  #flush(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#pending.length === 0) return this.#inFlight
    const batch = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    const previous = this.#inFlight
    this.#inFlight = previous.then(() => (this.#failure ? void (this.#unsent += batch.length) : this.#send(batch)))
    return previous
  }

  async #send(batch: MessageToProduce[]): Promise<void> {
    const number = ++this.#batches
    const counts = new Map<number, number>()
    for (const record of batch) counts.set(record.partition!, (counts.get(record.partition!) ?? 0) + 1)
    let baseOffsets: Map<number, bigint>
    try {
      const result = await clientCall({ action: `produce to topic "${this.#layout.topic}"`, bootstrap: this.#bootstrap, topic: this.#layout.topic }, () =>
        this.#producer.send({ messages: batch, acks: this.#acks }),
      )
      baseOffsets = new Map((result.offsets ?? []).map((o) => [o.partition, o.offset]))
    } catch (err) {
      this.#failure = err instanceof CommandError ? err : new CommandError(`cannot produce to topic "${this.#layout.topic}": ${String(err)}`, { cause: err })
      // Partitions the broker acknowledged before the failure are counted as sent.
      const produced = (err as { cause?: { produced?: { offsets?: { partition: number; offset: bigint }[] } } }).cause?.produced
      baseOffsets = new Map((produced?.offsets ?? []).map((o) => [o.partition, o.offset]))
      const acknowledged = [...counts].filter(([p]) => baseOffsets.has(p)).reduce((sum, [, n]) => sum + n, 0)
      this.#unsent += batch.length - acknowledged
      if (acknowledged === 0) {
        if (this.#json) await this.#io.stdout.write(toJson({ batch: number, records: batch.length, error: this.#failure.message }) + '\n')
        return
      }
    }
    const partitions = [...counts].sort(([a], [b]) => a - b).flatMap(([partition, records]) => {
      const base = baseOffsets.get(partition)
      if (base === undefined && this.#acks !== ProduceAcks.NO_RESPONSE) return []
      // acks=0 has no answer, hence no offsets; a base of -1 means the same.
      const known = base !== undefined && base >= 0n
      const entry = { partition, records, firstOffset: known ? base : null, lastOffset: known ? base + BigInt(records - 1) : null }
      this.#record(entry)
      return [entry]
    })
    const acknowledged = partitions.reduce((sum, p) => sum + p.records, 0)
    this.#acknowledged += acknowledged
    if (this.#json) {
      const failure = this.#failure ? { error: this.#failure.message } : {}
      await this.#io.stdout.write(toJson({ batch: number, records: batch.length, partitions, ...failure }) + '\n')
    }
  }

  #record(entry: { partition: number; records: number; firstOffset: bigint | null; lastOffset: bigint | null }): void {
    const tally = this.#tally.get(entry.partition) ?? { records: 0, firstOffset: undefined, lastOffset: undefined }
    tally.records += entry.records
    if (entry.firstOffset !== null && (tally.firstOffset === undefined || entry.firstOffset < tally.firstOffset)) tally.firstOffset = entry.firstOffset
    if (entry.lastOffset !== null && (tally.lastOffset === undefined || entry.lastOffset > tally.lastOffset)) tally.lastOffset = entry.lastOffset
    this.#tally.set(entry.partition, tally)
  }

  /** The human summary for stderr. */
  summary(): string {
    const topic = this.#layout.topic
    const verb = this.#acks === ProduceAcks.NO_RESPONSE ? 'sent' : 'produced'
    const batches = `${this.#batches} batch${this.#batches === 1 ? '' : 'es'}`
    const lines = [`${verb} ${this.#acknowledged} record${this.#acknowledged === 1 ? '' : 's'} to "${topic}" in ${batches}`]
    if (this.#acks === ProduceAcks.NO_RESPONSE) lines[0] += ' (acks=0: the broker does not answer, so offsets are unknown)'
    if (this.#unsent > 0) lines.push(`${this.#unsent} record${this.#unsent === 1 ? ' was' : 's were'} not acknowledged`)
    let text = lines.join('\n') + '\n'
    if (this.#tally.size > 0) {
      const rows = [...this.#tally]
        .sort(([a], [b]) => a - b)
        .map(([partition, t]) => [String(partition), String(t.records), String(t.firstOffset ?? '-'), String(t.lastOffset ?? '-')])
      text += formatTable(['PARTITION', 'RECORDS', 'FIRST OFFSET', 'LAST OFFSET'], rows, [0, 1, 2, 3])
    }
    return text
  }
}
