import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isTidewayError } from '../../../src/errors.ts'
import {
  BATCH_HEADER_SIZE,
  BatchField,
  CompressionCodec,
  compressionCodecOf,
  isControlBatch,
  isTransactionalBatch,
  lastOffsetOf,
  readBatchHeader,
  splitBatches,
  timestampTypeOf,
  TimestampType,
  validateBatch,
  writeBaseOffset,
  writePartitionLeaderEpoch,
} from '../../../src/protocol/record-batch.ts'
import { buildBatch, decodeRecords } from '../../helpers/batches.ts'

const corruptWith = (pattern: RegExp) => (err: unknown) =>
  isTidewayError(err, 'TIDEWAY_ERR_CORRUPT_BATCH') && pattern.test((err as Error).message)

test('every header field reads back as the producer wrote it', () => {
  const { batch } = buildBatch([{ key: 'k', value: 'v' }, { value: 'w', timestampDelta: 7 }, { value: null }], {
    baseOffset: 42n,
    partitionLeaderEpoch: 3,
    baseTimestamp: 5000n,
    producerId: 9_000_000_000n,
    producerEpoch: 2,
    baseSequence: 17,
  })
  const header = validateBatch(batch)
  assert.deepEqual(
    { ...header, crc: undefined },
    {
      baseOffset: 42n,
      batchLength: batch.length - 12,
      partitionLeaderEpoch: 3,
      magic: 2,
      crc: undefined,
      attributes: 0,
      lastOffsetDelta: 2,
      baseTimestamp: 5000n,
      maxTimestamp: 5007n,
      producerId: 9_000_000_000n,
      producerEpoch: 2,
      baseSequence: 17,
      recordCount: 3,
    },
  )
  assert.equal(header.crc, batch.readUInt32BE(BatchField.crc))
  assert.equal(lastOffsetOf(header), 44n)
  assert.equal(BATCH_HEADER_SIZE, 61)
  assert.deepEqual(
    decodeRecords(batch).map((r) => [r.offset, r.timestamp, r.value?.toString() ?? null]),
    [
      [42n, 5000n, 'v'],
      [43n, 5007n, 'w'],
      [44n, 5002n, null],
    ],
  )
})

test('rewriting the base offset and leader epoch keeps the CRC valid (both lie outside it)', () => {
  const { batch } = buildBatch([{ value: 'v' }])
  writeBaseOffset(batch, 123456789n)
  writePartitionLeaderEpoch(batch, 7)
  const header = validateBatch(batch)
  assert.equal(header.baseOffset, 123456789n)
  assert.equal(header.partitionLeaderEpoch, 7)
})

test('a flipped bit in the CRC-covered bytes is refused as a CRC mismatch', () => {
  for (const position of [21, 40, 45, -1]) {
    const { batch } = buildBatch([{ value: 'payload' }])
    const at = position < 0 ? batch.length + position : position
    batch[at] = batch[at]! ^ 0x10
    assert.throws(() => validateBatch(batch), corruptWith(/CRC-32C mismatch/), `bit flipped at ${at}`)
  }
})

test('a wrong magic, a wrong length field, a count mismatch and an unknown codec are each refused', () => {
  const magic = buildBatch([{ value: 'v' }]).batch
  magic.writeInt8(1, BatchField.magic)
  assert.throws(() => validateBatch(magic), corruptWith(/magic 1/))

  const long = buildBatch([{ value: 'v' }]).batch
  long.writeInt32BE(long.readInt32BE(BatchField.batchLength) + 1, BatchField.batchLength)
  assert.throws(() => validateBatch(long), corruptWith(/batchLength/))
  const short = buildBatch([{ value: 'v' }]).batch
  assert.throws(() => validateBatch(short.subarray(0, short.length - 1)), corruptWith(/batchLength/))

  // The count checks run before the CRC check, so patching the fields is enough to reach them.
  const count = buildBatch([{ value: 'a' }, { value: 'b' }]).batch
  count.writeInt32BE(3, BatchField.recordCount)
  assert.throws(() => validateBatch(count), corruptWith(/recordCount 3 does not equal lastOffsetDelta 1/))
  const zero = buildBatch([{ value: 'a' }]).batch
  zero.writeInt32BE(0, BatchField.recordCount)
  zero.writeInt32BE(-1, BatchField.lastOffsetDelta)
  assert.throws(() => validateBatch(zero), corruptWith(/must be positive/))

  const codec = buildBatch([{ value: 'v' }], { attributes: 5 }).batch
  assert.throws(() => validateBatch(codec), corruptWith(/compression codec 5/))
})

test('a buffer shorter than a header is refused, never read past its end', () => {
  const { batch } = buildBatch([{ value: 'v' }])
  assert.throws(() => readBatchHeader(batch.subarray(0, 60)), corruptWith(/needs 61 bytes/))
  assert.throws(() => readBatchHeader(batch, batch.length - 10), corruptWith(/needs 61 bytes/))
  assert.throws(() => validateBatch(Buffer.alloc(0)), corruptWith(/needs 61 bytes/))
})

test('attribute helpers decode the codec, timestamp type, transactional and control bits', () => {
  assert.equal(compressionCodecOf(0b0000_0011), CompressionCodec.lz4)
  assert.equal(compressionCodecOf(0b0011_1100), CompressionCodec.zstd)
  assert.equal(timestampTypeOf(0b0000_1000), TimestampType.logAppendTime)
  assert.equal(timestampTypeOf(0b0011_0111), TimestampType.createTime)
  assert.equal(isTransactionalBatch(0b0001_0000), true)
  assert.equal(isTransactionalBatch(0b0010_1111), false)
  assert.equal(isControlBatch(0b0010_0000), true)
  assert.equal(isControlBatch(0b0001_1111), false)
  const { batch } = buildBatch([{ value: 'v' }], { attributes: CompressionCodec.gzip | 0x10 })
  const header = validateBatch(batch)
  assert.equal(compressionCodecOf(header.attributes), CompressionCodec.gzip)
  assert.equal(isTransactionalBatch(header.attributes), true)
})

test('a record set of one batch splits into that batch', () => {
  const { batch } = buildBatch([{ value: 'only' }])
  const split = splitBatches(batch)
  assert.equal(split.length, 1)
  assert.ok(split[0]!.equals(batch))
  assert.deepEqual(splitBatches(Buffer.alloc(0)), [])
})

test('a record set of three batches splits into zero-copy views of each', () => {
  const batches = [1, 2, 3].map((n) => buildBatch(Array.from({ length: n }, (_, i) => ({ value: `v${i}` }))).batch)
  const set = Buffer.concat(batches)
  const split = splitBatches(set)
  assert.deepEqual(
    split.map((b) => readBatchHeader(b).recordCount),
    [1, 2, 3],
  )
  assert.equal(split[1]!.buffer, set.buffer, 'views into the same memory')
  for (const b of split) validateBatch(b)
})

test('a truncated trailing batch is refused wherever the cut falls', () => {
  const set = Buffer.concat([buildBatch([{ value: 'a' }]).batch, buildBatch([{ value: 'bbbb' }]).batch])
  const second = splitBatches(set)[0]!.length
  for (const cut of [1, 11, 12, 60, set.length - second - 1]) {
    assert.throws(() => splitBatches(set.subarray(0, set.length - cut)), corruptWith(/position|trailing/), `cut ${cut}`)
  }
  const tiny = Buffer.alloc(20)
  tiny.writeInt32BE(5, BatchField.batchLength)
  assert.throws(() => splitBatches(tiny), corruptWith(/less than a header/))
})
