// CRC-32C (Castagnoli), the checksum of RecordBatch v2. Node's zlib.crc32 is the IEEE
// polynomial, so we use a maintained native implementation.
import { crc32c as native } from '@node-rs/crc32'

export function crc32c(data: Uint8Array): number {
  return native(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)) >>> 0
}
