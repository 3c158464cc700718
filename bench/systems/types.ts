// What every system under test (Tideway, NATS JetStream, Redis Streams) offers the bench, so each
// scenario drives them all the same way: one Node client per system, same record sizes, same
// concurrency, every produce durable as that system's settings define it, and the figures
// measured by the same code (bench/measure.ts).

/** Latencies in milliseconds, one per acknowledged record or request, in the order measured. */
export interface Measured {
  /** Records acknowledged (produce) or received (consume) within the measured window. */
  readonly records: number
  /** Payload bytes of those records. */
  readonly bytes: number
  /** Wall time of the measured window. */
  readonly elapsedMs: number
  /** Per-request (produce) or per-record (end to end) latencies; empty where not measured. */
  readonly latenciesMs: readonly number[]
}

export interface ProduceOptions {
  readonly recordBytes: number
  /** How long to keep producing. */
  readonly seconds: number
}

export interface PipelinedOptions extends ProduceOptions {
  /** Records sent but not yet acknowledged, at most. */
  readonly inFlight: number
}

export interface EndToEndOptions {
  readonly recordBytes: number
  /** Records per second the producer sends at, spread evenly (an open-loop schedule). */
  readonly ratePerSec: number
  readonly seconds: number
}

export interface ConsumeOptions {
  readonly recordBytes: number
  /** Records written first (not measured), then read back from the beginning (measured). */
  readonly records: number
}

export interface GroupOptions extends ConsumeOptions {
  /** Consumers sharing the work, each with its own connection. */
  readonly members: number
}

/** A database the exactly-once consumer writes its effect and its dedup row to, in one transaction. */
export type EffectStore = 'sqlite' | 'postgres'

export interface ExactlyOnceOptions extends ConsumeOptions {
  readonly store: EffectStore
}

export interface SystemUnderTest {
  /** Short label for tables, e.g. `jetstream sync=always`. */
  readonly name: string
  /** What exactly ran: binary and version, port, private or shared instance, durability settings. */
  readonly describe: () => string
  start(): Promise<void>
  /** Stops the system and removes what it stored. */
  stop(): Promise<void>
  /** Scenario 1: one producer, one record per request, waiting for each acknowledgement. */
  produceOneAtATime(options: ProduceOptions): Promise<Measured>
  /** Scenario 2: one producer keeping up to `inFlight` records unacknowledged (batching where the client can). */
  producePipelined(options: PipelinedOptions): Promise<Measured>
  /** Scenario 3: latency from send to receipt by a consumer, at a fixed rate; one latency per record. */
  endToEnd(options: EndToEndOptions): Promise<Measured>
  /** Scenario 4: replay of `records` records from the first. */
  replay(options: ConsumeOptions): Promise<Measured>
  /** Scenario 5: a consumer group of `members` reading `records` records (each read once, acknowledged). */
  groupConsume(options: GroupOptions): Promise<Measured>
  /** Scenario 6: an exactly-once consumer: per record, effect + dedup row in one transaction, then acknowledge. */
  exactlyOnceConsume(options: ExactlyOnceOptions): Promise<Measured>
}
