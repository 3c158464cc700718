// The pure parts of `tideway consume`: where to start reading (the `--from` grammar and how it
// meets a partition's offsets) and how a record is printed. No I/O here.
import { UsageError } from './errors.ts'
import { toJson } from './output.ts'

export type StartSpec =
  | { readonly kind: 'beginning' }
  | { readonly kind: 'end' }
  | { readonly kind: 'offset'; readonly offset: bigint }
  | { readonly kind: 'timestamp'; readonly timestampMs: bigint }

/** `beginning`, `end`, an offset (`42`), or `@` and a time: epoch milliseconds or an ISO 8601 date. */
export function parseStartSpec(text: string): StartSpec {
  if (text === 'beginning' || text === 'earliest') return { kind: 'beginning' }
  if (text === 'end' || text === 'latest') return { kind: 'end' }
  if (/^\d+$/.test(text)) return { kind: 'offset', offset: BigInt(text) }
  if (text.startsWith('@')) {
    const time = text.slice(1)
    if (/^\d+$/.test(time)) return { kind: 'timestamp', timestampMs: BigInt(time) }
    // Date.parse also accepts loose formats ("March 7"); insist on something ISO-shaped.
    const ms = /^\d{4}-\d{2}-\d{2}/.test(time) ? Date.parse(time) : Number.NaN
    if (!Number.isNaN(ms)) return { kind: 'timestamp', timestampMs: BigInt(ms) }
  }
  throw new UsageError(`--from takes beginning, end, an offset, or @<epoch ms | ISO date>; got "${text}"`)
}

export interface PartitionOffsets {
  /** Log start offset: the first record still stored. */
  readonly earliest: bigint
  /** High watermark (last stable offset under read_committed): the offset the next record gets. */
  readonly latest: bigint
  /**
   * For a timestamp start: the first offset whose timestamp is at or after it, or -1 when every
   * record is older (ListOffsets' answer), which means "start at the end".
   */
  readonly atTimestamp?: bigint
}

/**
 * The first offset to read. An explicit offset outside [earliest, latest] is clamped into it,
 * as Kafka consumers reset an out-of-range position: below the start means those records were
 * deleted by retention, past the end means nothing is there yet.
 */
export function startOffset(spec: StartSpec, offsets: PartitionOffsets): bigint {
  switch (spec.kind) {
    case 'beginning':
      return offsets.earliest
    case 'end':
      return offsets.latest
    case 'offset':
      return spec.offset < offsets.earliest ? offsets.earliest : spec.offset > offsets.latest ? offsets.latest : spec.offset
    case 'timestamp': {
      const found = offsets.atTimestamp ?? -1n
      return found < 0n ? offsets.latest : found < offsets.earliest ? offsets.earliest : found
    }
  }
}

export interface ConsumedRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly timestamp: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: readonly (readonly [Buffer | null, Buffer | null])[]
}

export type OutputFormat = 'text' | 'json'

const TAB = Buffer.from('\t')
const NEWLINE = Buffer.from('\n')
const NO_KEY = Buffer.from('-')
const EMPTY = Buffer.alloc(0)

/**
 * text: `partition:offset<TAB>key<TAB>value`, key `-` when null, the bytes as stored.
 * json: {topic, partition, offset, timestamp, key, value, headers} with keys, values and
 * headers decoded as UTF-8 (null stays null).
 */
export function formatRecord(record: ConsumedRecord, format: OutputFormat): Buffer {
  if (format === 'text') {
    return Buffer.concat([Buffer.from(`${record.partition}:${record.offset}`), TAB, record.key ?? NO_KEY, TAB, record.value ?? EMPTY, NEWLINE])
  }
  const headers: Record<string, string | null> = {}
  for (const [key, value] of record.headers) headers[key?.toString('utf8') ?? ''] = value?.toString('utf8') ?? null
  const json = toJson({
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key?.toString('utf8') ?? null,
    value: record.value?.toString('utf8') ?? null,
    headers,
  })
  return Buffer.from(json + '\n')
}

