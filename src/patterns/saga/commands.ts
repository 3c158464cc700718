// Steps that talk to services through commands and replies on topics.
//
// The orchestrator side, CommandChannel: `request(topic, body, ctx)` sends a command carrying the
// step's correlation id (instance id + step), the reply topic, the step's idempotency key (in the
// SDK's `idempotency-key` header) and the step's trace context, and resolves with the reply that
// carries the same correlation id. A reply that arrives before anyone waits for it (sent to a
// process that crashed) is kept, bounded, for the resumed step.
//
// The service side, serveCommands: an at-least-once consumer that applies each command through
// handleIdempotently (src/sdk/idempotent-request.ts), keyed by the step's idempotency key, and
// replies with the stored answer. A command sent again (the orchestrator resumed a step it had
// sent before crashing) applies nothing twice and is answered again with the same reply, which is
// why the service must answer repeats instead of skipping them, and why command topics must not
// have tideway.dedup.enable: the broker would drop the repeat the orchestrator needs answered.
//
// A command also carries its deadline (saga-deadline, epoch ms): a little before the attempt's
// stored timeout, when the orchestrator stops waiting for the reply. A service that gets it later
// (it was down, or far behind) applies nothing and does not answer: the orchestrator has already
// counted the attempt as failed, and may be compensating it. Without this, a backlog of old
// commands would apply effects the saga had given up on. A later attempt sends the command again,
// same idempotency key, new deadline, and is applied or answered from the store as usual.
//
// Replies are JSON: {ok: true, result} or {ok: false, kind, error}. A handler refuses a command
// by throwing ExpectedFailure or PermanentFailure, before writing anything (the refusal is stored
// as the key's answer, in the same transaction as whatever it wrote); a TransientFailure rolls the
// transaction back and the consumer retries it.
import { silentLogger, type Logger } from '../../logger.ts'
import { createConsumer, type IncomingMessage, type TidewayConsumer } from '../../sdk/consumer.ts'
import { classifyFailure, ExpectedFailure, FailureKind, messageOf, PermanentFailure, TransientFailure } from '../../sdk/failures.ts'
import { handleIdempotently } from '../../sdk/idempotent-request.ts'
import { createProducer, type TidewayProducer } from '../../sdk/producer.ts'
import type { RetryPolicy } from '../../sdk/retry.ts'
import type { Store, StoreTransaction } from '../../sdk/store.ts'
import type { TraceContext } from '../../sdk/trace.ts'
import type { Json, StepContext } from './definition.ts'
import { publishBoundary, untilAborted } from './orchestrator.ts'

/** Headers of saga commands, replies and choreography events. */
export const SagaHeader = {
  correlationId: 'saga-correlation-id',
  replyTo: 'saga-reply-to',
  saga: 'saga-name',
  deadline: 'saga-deadline',
} as const

/**
 * The deadline a command carries: the attempt's timeout less a margin for the reply's way back
 * (a fifth of the time left, at most 1 s), so an effect applied just before it is still heard of.
 */
export function commandDeadline(attemptDeadlineMs: number, nowMs: number): number {
  return attemptDeadlineMs - Math.min(1_000, Math.max(0, Math.floor((attemptDeadlineMs - nowMs) / 5)))
}

export type CommandReply = { readonly ok: true; readonly result: Json } | { readonly ok: false; readonly kind: FailureKind; readonly error: string }

export interface CommandChannelOptions {
  readonly bootstrap: string | readonly string[]
  /** Where services send replies; one per orchestrator. */
  readonly replyTopic: string
  /** The reply consumer's group. Default `<replyTopic>-orchestrator`. */
  readonly groupId?: string
  /**
   * Static membership (KIP-345) for the reply consumer: a restarted orchestrator with the same id
   * takes the reply partitions back at once instead of waiting out its dead predecessor's session.
   */
  readonly groupInstanceId?: string
  readonly sessionTimeoutMs?: number
  /** Replies kept for steps that are not waiting yet. Default 10,000. */
  readonly maxEarlyReplies?: number
  readonly clientId?: string
  readonly logger?: Logger
}

interface Waiter {
  resolve(reply: CommandReply): void
}

export class CommandChannel {
  readonly replyTopic: string
  readonly #options: CommandChannelOptions
  readonly #waiters = new Map<string, Waiter>()
  readonly #early = new Map<string, CommandReply>()
  readonly #logger: Logger
  #producer: TidewayProducer | null = null
  #consumer: TidewayConsumer | null = null

  constructor(options: CommandChannelOptions) {
    this.#options = options
    this.replyTopic = options.replyTopic
    this.#logger = options.logger ?? silentLogger
  }

  /** Joins the reply topic's group; resolves once it has its partitions. */
  async start(): Promise<void> {
    const clientId = this.#options.clientId ?? 'tideway-saga-commands'
    this.#producer = createProducer({ bootstrap: this.#options.bootstrap, delivery: 'at-least-once', clientId, logger: this.#logger })
    this.#consumer = createConsumer({
      bootstrap: this.#options.bootstrap,
      groupId: this.#options.groupId ?? `${this.replyTopic}-orchestrator`,
      topics: [this.replyTopic],
      delivery: 'at-least-once',
      from: 'earliest',
      clientId: `${clientId}-replies`,
      logger: this.#logger,
      deadLetter: false,
      ...(this.#options.groupInstanceId ? { groupInstanceId: this.#options.groupInstanceId } : {}),
      ...(this.#options.sessionTimeoutMs ? { sessionTimeoutMs: this.#options.sessionTimeoutMs } : {}),
      handler: (message) => this.#onReply(message),
    })
    await this.#consumer.start()
  }

  /**
   * Sends `body` to `topic` as the command of the step in `ctx`, and resolves with the reply's
   * result; a refusal rejects with ExpectedFailure or PermanentFailure, as the service threw it.
   * Rejects with the signal's reason when the step's timeout fires first.
   */
  async request(topic: string, body: Json, ctx: StepContext<unknown>, options: { key?: string } = {}): Promise<Json> {
    if (!this.#producer) throw new Error('the command channel is not started')
    const reply = new Promise<CommandReply>((resolve) => this.#waiters.set(ctx.correlationId, { resolve }))
    try {
      const early = this.#early.get(ctx.correlationId)
      if (early) {
        this.#early.delete(ctx.correlationId)
        return resultOf(early)
      }
      await this.#producer.send(topic, {
        key: options.key ?? ctx.instanceId,
        value: JSON.stringify(body),
        idempotencyKey: ctx.idempotencyKey,
        traceparent: ctx.traceparent,
        headers: {
          [SagaHeader.correlationId]: ctx.correlationId,
          [SagaHeader.replyTo]: this.replyTopic,
          [SagaHeader.saga]: ctx.saga.name,
          [SagaHeader.deadline]: String(commandDeadline(ctx.deadlineMs, Date.now())),
        },
      })
      publishBoundary({ boundary: 'command-sent', instanceId: ctx.instanceId, saga: ctx.saga.name, step: ctx.step, phase: ctx.correlationId.endsWith(':compensate') ? 'compensate' : 'invoke', attempt: ctx.attempt })
      return resultOf(await untilAborted(reply, ctx.signal))
    } finally {
      this.#waiters.delete(ctx.correlationId)
    }
  }

  async stop(): Promise<void> {
    await this.#consumer?.stop()
    await this.#producer?.close()
  }

  #onReply(message: IncomingMessage): void {
    const correlationId = message.headers.get(SagaHeader.correlationId)?.toString()
    if (!correlationId || !message.value) return
    let reply: CommandReply
    try {
      reply = JSON.parse(message.value.toString()) as CommandReply
    } catch {
      this.#logger.warn('a saga reply is not JSON; ignored', { topic: message.topic, partition: message.partition, offset: message.offset })
      return
    }
    const waiter = this.#waiters.get(correlationId)
    if (waiter) return waiter.resolve(reply)
    this.#early.delete(correlationId)
    this.#early.set(correlationId, reply)
    // Oldest first out: a reply nobody asked for in that long belongs to a finished step.
    if (this.#early.size > (this.#options.maxEarlyReplies ?? 10_000)) this.#early.delete(this.#early.keys().next().value!)
  }
}

function resultOf(reply: CommandReply): Json {
  if (reply.ok) return reply.result
  if (reply.kind === FailureKind.expected) throw new ExpectedFailure(reply.error)
  if (reply.kind === FailureKind.permanent) throw new PermanentFailure(reply.error)
  throw new TransientFailure(reply.error)
}

export interface IncomingCommand {
  readonly body: Json
  readonly correlationId: string
  /** The step's idempotency key: the same for every repeat of this command. */
  readonly idempotencyKey: string
  readonly saga: string | null
  /** This handling's span, in the saga's trace. */
  readonly trace: TraceContext
  readonly traceparent: string
  readonly message: IncomingMessage
}

export interface CommandServiceOptions {
  readonly bootstrap: string | readonly string[]
  readonly topic: string
  readonly groupId: string
  /** The service's database: the command's effect and its stored reply commit together. */
  readonly store: Store
  /** The idempotency scope of this service's commands. Default: the topic. */
  readonly scope?: string
  /** Applies the command inside the transaction and returns the result to reply with. */
  readonly handle: (command: IncomingCommand, tx: StoreTransaction) => Promise<Json>
  readonly retry?: Partial<RetryPolicy>
  readonly groupInstanceId?: string
  readonly sessionTimeoutMs?: number
  readonly clientId?: string
  readonly logger?: Logger
}

export interface CommandService {
  /** expired: commands that arrived after their deadline, so were neither applied nor answered. */
  readonly stats: { applied: number; replayed: number; expired: number }
  stop(): Promise<void>
}

/** Starts a service's command consumer; resolves once it has its partitions. */
export async function serveCommands(options: CommandServiceOptions): Promise<CommandService> {
  const logger = options.logger ?? silentLogger
  const clientId = options.clientId ?? `tideway-${options.groupId}`
  const producer = createProducer({ bootstrap: options.bootstrap, delivery: 'at-least-once', clientId: `${clientId}-replies`, logger })
  const stats = { applied: 0, replayed: 0, expired: 0 }
  const scope = options.scope ?? options.topic
  const consumer = createConsumer({
    bootstrap: options.bootstrap,
    groupId: options.groupId,
    topics: [options.topic],
    delivery: 'at-least-once',
    clientId,
    logger,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.groupInstanceId ? { groupInstanceId: options.groupInstanceId } : {}),
    ...(options.sessionTimeoutMs ? { sessionTimeoutMs: options.sessionTimeoutMs } : {}),
    handler: async (message, ctx) => {
      const correlationId = message.headers.get(SagaHeader.correlationId)?.toString()
      const replyTo = message.headers.get(SagaHeader.replyTo)?.toString()
      const key = message.idempotencyKey
      if (!correlationId || !replyTo || !key) throw new PermanentFailure('a saga command needs saga-correlation-id, saga-reply-to and idempotency-key headers')
      const deadline = Number(message.headers.get(SagaHeader.deadline)?.toString() ?? Number.NaN)
      if (Number.isFinite(deadline) && Date.now() > deadline) {
        stats.expired++
        logger.info('saga command arrived after its deadline; not applied', { topic: message.topic, partition: message.partition, offset: message.offset, correlationId, lateMs: Date.now() - deadline })
        return
      }
      let body: Json
      try {
        body = JSON.parse(message.value?.toString() ?? 'null') as Json
      } catch (err) {
        throw new PermanentFailure(`the command's value is not JSON: ${messageOf(err)}`)
      }
      const command: IncomingCommand = { body, correlationId, idempotencyKey: key, saga: message.headers.get(SagaHeader.saga)?.toString() ?? null, trace: ctx.trace, traceparent: ctx.traceparent, message }
      const { response, replayed } = await handleIdempotently<CommandReply>(options.store, { scope, key }, async (tx) => {
        try {
          return { ok: true, result: await options.handle(command, tx) }
        } catch (err) {
          const kind = classifyFailure(err)
          if (kind === FailureKind.transient) throw err
          return { ok: false, kind, error: messageOf(err) }
        }
      })
      if (replayed) stats.replayed++
      else stats.applied++
      await producer.send(replyTo, { key: correlationId, value: JSON.stringify(response), traceparent: ctx.traceparent, headers: { [SagaHeader.correlationId]: correlationId } })
    },
  })
  await consumer.start()
  return {
    stats,
    async stop() {
      await consumer.stop()
      await producer.close()
    },
  }
}
