// CRC-32C (Castagnoli), the checksum of RecordBatch v2. Node's zlib.crc32 is the IEEE
// polynomial, so we use a maintained native implementation. Always returns an unsigned value,
// comparable with Buffer.readUInt32BE.
import { crc32c as native } from '@node-rs/crc32'

export function crc32c(data: Uint8Array): number {
  return native(data) >>> 0
}
