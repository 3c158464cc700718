// Inflating (and, where records were removed, deflating again) a batch's record section, for the
// few places the broker opens batches (ListOffsets by time, idempotency-key dedup). Codecs as
// Kafka defines them for
// RecordBatch v2 (protocol guide, "Record Batch"; research kafka-protocol.md §2.2):
//   gzip   RFC 1952 (node:zlib)
//   snappy either raw snappy (librdkafka) or the xerial framing Java clients write: an 8-byte
//          magic "\x82SNAPPY\0", two int32 versions, then blocks of int32 length + raw snappy
//   lz4    the LZ4 frame format
//   zstd   a zstd frame (node:zlib)
// snappy and lz4 come from maintained native packages (napi-rs builds); gzip and zstd from Node.
// Deflating writes raw snappy (what librdkafka writes; Java's reader and every other client read
// it too) and an LZ4 frame.

import { promisify } from 'node:util'
import { gunzip, gzip, zstdCompress, zstdDecompress } from 'node:zlib'
import { compressFrame, decompressFrame } from 'lz4-napi'
import { compress as snappyCompress, uncompress as snappyUncompress } from 'snappy'
import { decodeError } from './primitives.ts'
import { CompressionCodec } from './record-batch.ts'

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])
const XERIAL_HEADER_BYTES = 16

const gunzipAsync = promisify(gunzip)
const zstdAsync = promisify(zstdDecompress)
const gzipAsync = promisify(gzip)
const zstdCompressAsync = promisify(zstdCompress)

/** The uncompressed record section; throws TIDEWAY_ERR_DECODE on an unknown codec or bad data. */
export async function inflateRecords(codec: number, data: Buffer): Promise<Buffer> {
  try {
    switch (codec) {
      case CompressionCodec.none:
        return data
      case CompressionCodec.gzip:
        return await gunzipAsync(data)
      case CompressionCodec.snappy:
        return await inflateSnappy(data)
      case CompressionCodec.lz4:
        return await decompressFrame(data)
      case CompressionCodec.zstd:
        return await zstdAsync(data)
    }
  } catch (err) {
    throw decodeError(`codec ${codec}: records do not inflate (${err instanceof Error ? err.message : String(err)})`)
  }
  throw decodeError(`unknown compression codec ${codec}`)
}

/** The record section compressed with `codec` (attribute bits 0-2); `none` returns it as is. */
export async function deflateRecords(codec: number, data: Buffer): Promise<Buffer> {
  switch (codec) {
    case CompressionCodec.none:
      return data
    case CompressionCodec.gzip:
      return await gzipAsync(data)
    case CompressionCodec.snappy:
      return await snappyCompress(data)
    case CompressionCodec.lz4:
      return await compressFrame(data)
    case CompressionCodec.zstd:
      return await zstdCompressAsync(data)
  }
  throw new RangeError(`unknown compression codec ${codec}`)
}

async function inflateSnappy(data: Buffer): Promise<Buffer> {
  if (data.length < XERIAL_HEADER_BYTES || !data.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) {
    return (await snappyUncompress(data)) as Buffer
  }
  const blocks: Buffer[] = []
  for (let at = XERIAL_HEADER_BYTES; at < data.length; ) {
    if (at + 4 > data.length) throw new Error('xerial block length cut short')
    const length = data.readInt32BE(at)
    const end = at + 4 + length
    if (length < 0 || end > data.length) throw new Error(`xerial block of ${length} bytes overruns the data`)
    blocks.push((await snappyUncompress(data.subarray(at + 4, end))) as Buffer)
    at = end
  }
  return Buffer.concat(blocks)
}
