// The idempotent producer's sequence rules (research kafka-protocol.md §2.3), on the pure table
// and through a real partition log: retries are answered with the original offsets and stored
// once, gaps and stale epochs are refused, and the state survives a reopen and a crash.
import assert from 'node:assert/strict'
import { afterEach, test } from 'node:test'
import { rmSync } from 'node:fs'
import { isTidewayError } from '../../../src/errors.ts'
import type { BatchHeader } from '../../../src/protocol/record-batch.ts'
import { incrementSequence, ProducerStateTable } from '../../../src/storage/producer-state.ts'
import { buildBatch } from '../../helpers/batches.ts'
import { appendValues, crashCopy, openLog, partitionDir, readAllValues } from './helpers.ts'

const opts = { timeout: 20_000 }
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const PID = 42n

/** A header as a producer sends it: `count` records from `baseSequence`. */
function header(baseSequence: number, count: number, producerEpoch = 0, baseOffset = 0n): BatchHeader {
  return buildBatch(Array.from({ length: count }, (_, i) => ({ value: `v${i}` })), { producerId: PID, producerEpoch, baseSequence, baseOffset }).header
}

const refusedWith = (code: string) => (err: unknown) => isTidewayError(err) && err.code === code

test('sequences wrap from 2^31-1 to 0, as Kafka counts them', () => {
  assert.equal(incrementSequence(5, 1), 6)
  assert.equal(incrementSequence(0x7fffffff, 1), 0)
  assert.equal(incrementSequence(0x7ffffffe, 3), 1)
})

test('the table: retries among the last 5 batches, gaps, epochs, unknown producers, expiry', () => {
  const table = new ProducerStateTable()
  assert.deepEqual(table.check(header(17, 2)), { kind: 'append' }, 'an unknown producer may start anywhere (KIP-360)')
  let offset = 0n
  for (let seq = 17; seq < 17 + 7 * 2; seq += 2) {
    const h = header(seq, 2, 0, offset)
    assert.equal(table.check(h).kind, 'append')
    table.record(h, 1000)
    offset += 2n
  }
  // Batches at 17..29: the last 5 are 21, 23, 25, 27, 29.
  const retry = table.check(header(25, 2))
  assert.equal(retry.kind, 'duplicate')
  assert.equal(retry.kind === 'duplicate' && retry.batch.baseOffset, 8n)
  assert.throws(() => table.check(header(17, 2)), refusedWith('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'), 'older than the retained 5')
  assert.throws(() => table.check(header(33, 1)), refusedWith('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'), 'a gap')
  assert.throws(() => table.check(header(25, 3)), refusedWith('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'), 'same start, other length')
  assert.equal(table.check(header(31, 1)).kind, 'append')
  assert.throws(() => table.check(header(0, 1, 1 - 2)), refusedWith('TIDEWAY_ERR_PRODUCER_FENCED'), 'an older epoch')
  assert.throws(() => table.check(header(5, 1, 1)), refusedWith('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'), 'a new epoch starts at 0')
  assert.equal(table.check(header(0, 1, 1)).kind, 'append')

  // Wrap-around: after a batch ending at 2^31-1 comes one starting at 0.
  const wrapping = new ProducerStateTable()
  wrapping.record(header(0x7ffffffe, 2), 1000)
  assert.equal(wrapping.check(header(0, 3)).kind, 'append')
  assert.throws(() => wrapping.check(header(0x7fffffff, 1)), refusedWith('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'))

  assert.equal(table.expire(1000 + 500, 1000), 0)
  assert.equal(table.expire(1000 + 1001, 1000), 1)
  assert.equal(table.check(header(5, 1)).kind, 'append', 'forgotten: any sequence again')
})

test('a partition stores a retried batch once and answers it with the original offsets, in flight or not', opts, async () => {
  const dir = partitionDir()
  dirs.push(dir)
  const log = await openLog(dir)
  await appendValues(log, ['other'])
  const send = (baseSequence: number, values: string[], producerEpoch = 0) =>
    appendValues(log, values, { producerId: PID, producerEpoch, baseSequence })
  // The original and its retry issued together (the retry arrives while the original is in flight).
  const [original, retryInFlight] = await Promise.all([send(0, ['a', 'b']), send(0, ['a', 'b'])])
  assert.equal(original.baseOffset, 1n)
  assert.equal(original.repeated, undefined)
  assert.deepEqual(retryInFlight, { ...original, repeated: true }, 'the retry is answered as a repeat (counted as a dedup hit)')
  const retryLater = await send(0, ['a', 'b'])
  assert.equal(retryLater.baseOffset, 1n)
  assert.equal(retryLater.repeated, true)
  assert.equal((await send(2, ['c'])).baseOffset, 3n)
  await assert.rejects(send(4, ['e']), refusedWith('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'))
  assert.deepEqual(await readAllValues(log), ['other', 'a', 'b', 'c'])

  // After a crash (no clean shutdown) and after a clean reopen, the retry is still recognised.
  const crashed = crashCopy(dir)
  dirs.push(crashed)
  await log.close()
  for (const reopenedDir of [crashed, dir]) {
    const reopened = await openLog(reopenedDir)
    const again = await appendValues(reopened, ['c'], { producerId: PID, producerEpoch: 0, baseSequence: 2 })
    assert.equal(again.baseOffset, 3n, `retry recognised after reopening ${reopenedDir === dir ? 'cleanly' : 'from a crash'}`)
    assert.equal((await appendValues(reopened, ['d'], { producerId: PID, producerEpoch: 0, baseSequence: 3 })).baseOffset, 4n)
    assert.deepEqual(await readAllValues(reopened), ['other', 'a', 'b', 'c', 'd'])
    await reopened.close()
  }
})

test('sequences reused for other records are refused, not answered as a retry: the client would think them stored', opts, async () => {
  const dir = partitionDir()
  dirs.push(dir)
  const log = await openLog(dir)
  const send = (baseSequence: number, values: string[]) => appendValues(log, values, { producerId: PID, producerEpoch: 0, baseSequence })
  assert.equal((await send(0, ['a'])).baseOffset, 0n)
  assert.equal((await send(1, ['b'])).baseOffset, 1n)
  // @platformatic/kafka can restart its sequence numbers under the same producer id when sends
  // race with its recovery from an error: same sequences, other records.
  await assert.rejects(send(0, ['z']), refusedWith('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'))
  assert.equal((await send(0, ['a'])).repeated, true, 'the real retry (same records) is still answered with the original')
  // A retry stamped with a new time in its header (KafkaJS does that) is still a retry.
  const restamped = buildBatch([{ value: 'b' }], { producerId: PID, producerEpoch: 0, baseSequence: 1, baseTimestamp: BigInt(Date.now() + 60_000) })
  assert.equal((await log.append(restamped.batch, restamped.header)).repeated, true)
  await log.close()
  const reopened = await openLog(dir) // from the snapshot written on close, fingerprints included
  await assert.rejects(appendValues(reopened, ['y'], { producerId: PID, producerEpoch: 0, baseSequence: 1 }), refusedWith('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'))
  assert.equal((await appendValues(reopened, ['b'], { producerId: PID, producerEpoch: 0, baseSequence: 1 })).repeated, true)
  assert.deepEqual(await readAllValues(reopened), ['a', 'b'])
  await reopened.close()
})

test('with segment rolls, a crash rebuilds from the roll snapshot plus the newer headers', opts, async () => {
  const dir = partitionDir()
  dirs.push(dir)
  const config = { segmentBytes: 300 }
  const log = await openLog(dir, { config })
  const offsets: bigint[] = []
  for (let seq = 0; seq < 12; seq++) {
    offsets.push((await appendValues(log, [`value-${seq}`.padEnd(60, '.')], { producerId: PID, producerEpoch: 0, baseSequence: seq })).baseOffset)
  }
  assert.ok(log.segmentCount >= 4, `rolled into ${log.segmentCount} segments`)
  const crashed = crashCopy(dir)
  dirs.push(crashed)
  await log.close()
  for (const reopenedDir of [crashed, dir]) {
    const reopened = await openLog(reopenedDir, { config })
    for (const seq of [7, 11]) {
      const retry = await appendValues(reopened, [`value-${seq}`.padEnd(60, '.')], { producerId: PID, producerEpoch: 0, baseSequence: seq })
      assert.equal(retry.baseOffset, offsets[seq], `retry of sequence ${seq} recognised (${reopenedDir === dir ? 'clean' : 'crash'})`)
    }
    await assert.rejects(appendValues(reopened, ['x'], { producerId: PID, producerEpoch: 0, baseSequence: 6 }), refusedWith('TIDEWAY_ERR_OUT_OF_ORDER_SEQUENCE'))
    assert.equal(reopened.logEndOffset, 12n, 'nothing stored twice')
    await reopened.close()
  }
})
