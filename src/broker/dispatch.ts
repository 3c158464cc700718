// Turns one request frame into one response frame: header rules, version checks, decode,
// handler, encode. Outcomes for bad input (documented in the README, "Bad input"):
// - a frame we cannot parse, an unknown API key, or an unsupported version of any API other
//   than ApiVersions: ProtocolViolation, and the connection is closed (Kafka does the same:
//   there is no response a client could decode);
// - ApiVersions at a version we lack: an answer in v0 format with UNSUPPORTED_VERSION and the
//   list of what we serve (KIP-511), so the client can retry with a version from it.

import { TidewayError } from '../errors.ts'
import { ApiVersions } from '../protocol/apis/api-versions.ts'
import { ErrorCode } from '../protocol/error-codes.ts'
import {
  API_VERSIONS_KEY,
  peekRequestHeader,
  readRequestHeader,
  responseHeaderIsFlexible,
  writeResponseHeader,
} from '../protocol/headers.ts'
import { Reader, Writer } from '../protocol/primitives.ts'
import type { Api } from '../protocol/schema.ts'
import { NO_RESPONSE, type HandlerEntry, type RequestContext } from './handler.ts'
import type { Logger } from '../logger.ts'
import type { BrokerMetrics } from './metrics/broker-metrics.ts'

/** Input the connection must not answer: it closes instead. */
export class ProtocolViolation extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ProtocolViolation'
  }
}

export interface DispatchContext {
  readonly handlers: ReadonlyMap<number, HandlerEntry>
  readonly logger: Logger
  readonly signal: AbortSignal
  /** See RequestContext.clientHost. */
  readonly clientHost?: string
  /** Request counts, latencies and error codes go here. */
  readonly metrics?: BrokerMetrics
  /** Called once per connection with what the client says about itself (ApiVersions v3). */
  onClientSoftware?(name: string, version: string): void
}

export interface Decoded {
  readonly entry: HandlerEntry
  readonly apiKey: number
  readonly apiVersion: number
  readonly correlationId: number
  readonly clientId: string | null
  readonly body: unknown
}

export type Parsed = Decoded | { readonly unsupportedApiVersions: number }

/** Parses a frame into a request, or says it is an ApiVersions at a version we lack. */
export function parseRequest(frame: Buffer, handlers: ReadonlyMap<number, HandlerEntry>): Parsed {
  let peeked
  try {
    peeked = peekRequestHeader(frame)
  } catch (cause) {
    throw new ProtocolViolation('request header truncated', { cause })
  }
  const { apiKey, apiVersion, correlationId } = peeked
  const entry = handlers.get(apiKey)
  if (!entry) throw new ProtocolViolation(`unknown API key ${apiKey}`)
  const api: Api = entry.api
  if (!api.isSupported(apiVersion)) {
    if (apiKey === API_VERSIONS_KEY) return { unsupportedApiVersions: correlationId }
    throw new ProtocolViolation(
      `${api.name} v${apiVersion} is not supported (served ${api.versions[0]}-${api.versions[1]})`,
    )
  }
  try {
    const reader = new Reader(frame)
    const header = readRequestHeader(reader, api.isFlexible(apiVersion))
    const body = api.decodeRequest(apiVersion, reader)
    return { entry, apiKey, apiVersion, correlationId, clientId: header.clientId, body }
  } catch (cause) {
    if (cause instanceof TidewayError) {
      throw new ProtocolViolation(`malformed ${api.name} v${apiVersion} request: ${cause.message}`, { cause })
    }
    throw cause
  }
}

/** Encodes a response as a list of buffers, size prefix first (written with one writev). */
export function encodeResponse(api: Api, apiVersion: number, correlationId: number, body: unknown): Buffer[] {
  const w = new Writer()
  w.int32(0) // size, patched below
  writeResponseHeader(w, correlationId, responseHeaderIsFlexible(api.key, api.isFlexible(apiVersion)))
  api.encodeResponse(apiVersion, w, body as never)
  const size = w.length - 4
  const chunks = w.chunks()
  chunks[0]!.writeInt32BE(size, 0)
  return chunks
}

export function apiVersionsList(handlers: ReadonlyMap<number, HandlerEntry>) {
  return [...handlers.values()]
    .map(({ api }) => ({ apiKey: api.key, minVersion: api.versions[0], maxVersion: api.versions[1] }))
    .sort((a, b) => a.apiKey - b.apiKey)
}

/** Handles one frame; resolves to the response frame, or null when none is due (acks=0). */
export async function dispatch(frame: Buffer, ctx: DispatchContext): Promise<Buffer[] | null> {
  const parsed = parseRequest(frame, ctx.handlers)
  if ('unsupportedApiVersions' in parsed) {
    return encodeResponse(ApiVersions as unknown as Api, 0, parsed.unsupportedApiVersions, {
      errorCode: ErrorCode.UNSUPPORTED_VERSION,
      apiKeys: apiVersionsList(ctx.handlers),
    })
  }
  const { entry, apiVersion, correlationId, clientId, body } = parsed
  const logger = ctx.logger
  logger.debug('request', { api: entry.api.name, version: apiVersion, correlationId, clientId })
  if (parsed.apiKey === API_VERSIONS_KEY && ctx.onClientSoftware) {
    const b = body as { clientSoftwareName: string; clientSoftwareVersion: string }
    if (b.clientSoftwareName) ctx.onClientSoftware(b.clientSoftwareName, b.clientSoftwareVersion)
  }
  const requestCtx: RequestContext = { apiVersion, clientId, clientHost: ctx.clientHost ?? '', logger, signal: ctx.signal }
  const started = performance.now()
  let response
  try {
    response = await entry.handle(body as never, requestCtx)
  } catch (err) {
    // A broker bug (the connection logs it and closes): counted, so an alert can find it.
    ctx.metrics?.handlerFailures.inc({ api: entry.api.name })
    throw err
  }
  if (ctx.metrics) {
    const api = entry.api.name
    ctx.metrics.requests.inc({ api })
    ctx.metrics.requestSeconds.observe((performance.now() - started) / 1000, { api })
    if (response !== NO_RESPONSE) ctx.metrics.countErrors(api, response)
  }
  if (response === NO_RESPONSE) return null
  return encodeResponse(entry.api, apiVersion, correlationId, response)
}
