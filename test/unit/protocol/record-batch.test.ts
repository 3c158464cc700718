import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isTidewayError } from '../../../src/errors.ts'
import { readBatchHeader, splitBatches, validateBatch, writeBaseOffset } from '../../../src/protocol/record-batch.ts'
import { buildBatch } from '../../helpers/batches.ts'

const isCorrupt = (err: unknown) => isTidewayError(err, 'TIDEWAY_ERR_CORRUPT_BATCH')

test('a well-formed batch validates and its header reads back', () => {
  const { batch } = buildBatch([{ key: 'k', value: 'v' }, { value: 'w' }], { baseTimestamp: 5000n })
  const header = validateBatch(batch)
  assert.equal(header.magic, 2)
  assert.equal(header.recordCount, 2)
  assert.equal(header.lastOffsetDelta, 1)
  assert.equal(header.baseTimestamp, 5000n)
  assert.equal(header.maxTimestamp, 5001n)
  assert.equal(header.batchLength, batch.length - 12)
})

test('rewriting the base offset keeps the CRC valid (it lies outside the checksum)', () => {
  const { batch } = buildBatch([{ value: 'v' }])
  writeBaseOffset(batch, 123456789n)
  assert.equal(validateBatch(batch).baseOffset, 123456789n)
})

test('a flipped bit, a wrong magic, a wrong length and a wrong count are each refused', () => {
  const flipped = buildBatch([{ value: 'payload' }]).batch
  flipped[flipped.length - 2]! ^= 0x01
  assert.throws(() => validateBatch(flipped), (err) => isCorrupt(err) && /CRC/.test((err as Error).message))

  const magic = buildBatch([{ value: 'v' }]).batch
  magic.writeInt8(1, 16)
  assert.throws(() => validateBatch(magic), (err) => isCorrupt(err) && /magic/.test((err as Error).message))

  const length = buildBatch([{ value: 'v' }]).batch
  assert.throws(() => validateBatch(length.subarray(0, length.length - 1)), isCorrupt)

  const count = buildBatch([{ value: 'v' }]).batch
  count.writeInt32BE(5, 57)
  assert.throws(() => validateBatch(count), isCorrupt)
})

test('a record set splits into whole batches without copying; a partial trailing batch is refused', () => {
  const batches = [1, 2, 3].map((n) => buildBatch(Array.from({ length: n }, (_, i) => ({ value: `v${i}` }))).batch)
  const set = Buffer.concat(batches)
  const split = splitBatches(set)
  assert.equal(split.length, 3)
  assert.deepEqual(split.map((b) => readBatchHeader(b).recordCount), [1, 2, 3])
  assert.equal(split[1]!.buffer, set.buffer, 'views into the same memory')
  assert.throws(() => splitBatches(set.subarray(0, set.length - 4)), isCorrupt)
  assert.deepEqual(splitBatches(Buffer.alloc(0)), [])
})
