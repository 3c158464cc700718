// Trace context across messages, as W3C Trace Context defines it (the `traceparent` and
// `tracestate` headers; OpenTelemetry's propagators read and write the same headers):
//   traceparent = version "-" trace-id "-" parent-id "-" trace-flags
//                 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
// A producer sends the traceparent it is given; the consumer parses it and hands the handler a
// child context (same trace id, a new span id) to pass on to what it sends next, so a saga's
// messages form one trace. Each handling also runs inside the `tideway:consume` tracing channel
// (node:diagnostics_channel), which costs nothing unless something (an OpenTelemetry
// instrumentation, a test) subscribes.
import { randomBytes } from 'node:crypto'
import { tracingChannel } from 'node:diagnostics_channel'

export const TRACEPARENT_HEADER = 'traceparent'
export const TRACESTATE_HEADER = 'tracestate'

export interface TraceContext {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
  readonly tracestate: string | null
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/

/** The context in a traceparent header, or null when there is none or it is malformed (then ignored, as the spec says). */
export function parseTraceparent(traceparent: string | null | undefined, tracestate: string | null = null): TraceContext | null {
  if (!traceparent) return null
  const match = TRACEPARENT.exec(traceparent.trim().toLowerCase())
  if (!match) return null
  const [, version, traceId, spanId, flags, rest] = match
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return null
  return { traceId: traceId!, spanId: spanId!, sampled: (parseInt(flags!, 16) & 1) === 1, tracestate }
}

export function formatTraceparent(context: Pick<TraceContext, 'traceId' | 'spanId' | 'sampled'>): string {
  return `00-${context.traceId}-${context.spanId}-${context.sampled ? '01' : '00'}`
}

/** A new span in the parent's trace, or the first span of a new trace. */
export function childContext(parent: TraceContext | null): TraceContext {
  return {
    traceId: parent?.traceId ?? randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    sampled: parent?.sampled ?? true,
    tracestate: parent?.tracestate ?? null,
  }
}

/** Published around each handler run: start, end and error, with the message and its trace context. */
export const consumeChannel = tracingChannel<object, { message: unknown; trace: TraceContext }>('tideway:consume')
