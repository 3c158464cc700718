// The one thing the coordinator reads from the otherwise opaque member metadata: which topics a
// member of a "consumer" group subscribes to, so OffsetDelete can refuse those (KIP-496).
// ConsumerProtocolSubscription starts, in every version, with version (int16) and topics
// (int32 count, then int16-length strings); the fields after them are not needed here.
// Hostile input is ordinary input: every length is checked against the bytes left.

export function subscribedTopics(metadata: Uint8Array): string[] | undefined {
  const buf = Buffer.from(metadata.buffer, metadata.byteOffset, metadata.byteLength)
  let pos = 0
  if (buf.length < 6) return undefined
  const version = buf.readInt16BE(pos)
  pos += 2
  if (version < 0) return undefined
  const count = buf.readInt32BE(pos)
  pos += 4
  if (count < 0 || count * 2 > buf.length - pos) return undefined
  const topics: string[] = []
  for (let i = 0; i < count; i++) {
    if (pos + 2 > buf.length) return undefined
    const length = buf.readInt16BE(pos)
    pos += 2
    if (length < 0 || pos + length > buf.length) return undefined
    topics.push(buf.toString('utf8', pos, pos + length))
    pos += length
  }
  return topics
}
