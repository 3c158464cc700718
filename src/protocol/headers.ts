// Request and response headers (RequestHeader.json, ResponseHeader.json, KIP-482).
//
// - Request header v1: api_key int16, api_version int16, correlation_id int32, client_id
//   nullable string. v2 (used with flexible API versions) adds a tagged-field buffer, but
//   client_id keeps its old INT16 length prefix even there, a trap written down here once.
// - Response header v0: correlation_id. v1 (flexible API versions) adds a tagged-field buffer,
//   EXCEPT for ApiVersions, whose response header is always v0.

import { Reader, Writer, decodeError } from './primitives.ts'

export const API_VERSIONS_KEY = 18

export interface RequestHeader {
  apiKey: number
  apiVersion: number
  correlationId: number
  clientId: string | null
}

/** The first 8 bytes are the same in every header version, so they can be read before we know it. */
export function peekRequestHeader(frame: Buffer): { apiKey: number; apiVersion: number; correlationId: number } {
  if (frame.length < 8) throw decodeError(`request header needs 8 bytes, frame has ${frame.length}`)
  return { apiKey: frame.readInt16BE(0), apiVersion: frame.readInt16BE(2), correlationId: frame.readInt32BE(4) }
}

/** Reads a v1 or v2 request header; the reader is left at the start of the body. */
export function readRequestHeader(r: Reader, flexible: boolean): RequestHeader {
  const apiKey = r.int16()
  const apiVersion = r.int16()
  const correlationId = r.int32()
  const length = r.int16()
  let clientId: string | null = null
  if (length >= 0) clientId = r.utf8(length)
  else if (length !== -1) throw decodeError(`client_id: invalid length ${length}`)
  if (flexible) skipTaggedFields(r)
  return { apiKey, apiVersion, correlationId, clientId }
}

export function writeRequestHeader(w: Writer, header: RequestHeader, flexible: boolean): void {
  w.int16(header.apiKey).int16(header.apiVersion).int32(header.correlationId)
  if (header.clientId === null) w.int16(-1)
  else {
    const id = Buffer.from(header.clientId, 'utf8')
    w.int16(id.length).raw(id)
  }
  if (flexible) w.uvarint(0)
}

export function responseHeaderIsFlexible(apiKey: number, bodyFlexible: boolean): boolean {
  return bodyFlexible && apiKey !== API_VERSIONS_KEY
}

export function writeResponseHeader(w: Writer, correlationId: number, flexible: boolean): void {
  w.int32(correlationId)
  if (flexible) w.uvarint(0) // no header tags
}

export function readResponseHeader(r: Reader, flexible: boolean): number {
  const correlationId = r.int32()
  if (flexible) skipTaggedFields(r)
  return correlationId
}

function skipTaggedFields(r: Reader): void {
  const count = r.uvarint()
  for (let i = 0; i < count; i++) {
    r.uvarint() // tag
    r.skip(r.uvarint(), 'header tagged field')
  }
}
