// The history checker must catch each kind of violation it claims to, or a clean report means
// nothing. Each case builds a small history with exactly one fault.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkHistory, History, type StoredRecord } from '../../helpers/history.ts'

/** A history of `values` sent one after another to partition 0, each acknowledged at its index. */
function sequential(values: string[]): History {
  const h = new History()
  values.forEach((value, i) => {
    h.sends.set(value, { producer: 'p', value, partition: 0, t: i * 10 })
    h.acks.set(value, { value, partition: 0, offset: i, t: i * 10 + 5 })
  })
  return h
}

const log = (...values: string[]): Map<number, StoredRecord[]> => new Map([[0, values.map((value, offset) => ({ offset, value }))]])

test('a clean history reports nothing', () => {
  const report = checkHistory(sequential(['a', 'b', 'c']), log('a', 'b', 'c'))
  assert.deepEqual(report.violations, [])
  assert.equal(report.recordsChecked, 3)
})

test('an acknowledged record that is not stored is lost', () => {
  const report = checkHistory(sequential(['a', 'b', 'c']), log('a', 'b'))
  assert.deepEqual(report.lost, ['c'])
  assert.ok(report.violations.some((v) => v.startsWith('lost:')))
})

test('an unacknowledged record may or may not be stored', () => {
  const h = sequential(['a', 'b'])
  h.sends.set('c', { producer: 'p', value: 'c', partition: 0, t: 100 })
  h.failed('c', new Error('cut'))
  assert.deepEqual(checkHistory(h, log('a', 'b')).violations, [])
  assert.deepEqual(checkHistory(h, log('a', 'b', 'c')).violations, [])
})

test('a record stored twice is a duplicate, allowed only when asked', () => {
  const stored = log('a', 'b', 'b')
  const strict = checkHistory(sequential(['a', 'b']), stored)
  assert.equal(strict.duplicates, 1)
  assert.ok(strict.violations.some((v) => v.includes('stored 2 times')))
  assert.deepEqual(checkHistory(sequential(['a', 'b']), stored, { noDuplicates: false }).violations, [])
})

test('a record stored before one acknowledged ahead of its send is reordered', () => {
  // b was sent after a's ack, so it must come after a.
  const h = sequential(['a', 'b'])
  h.acks.set('a', { value: 'a', partition: 0, offset: 1, t: 5 })
  h.acks.set('b', { value: 'b', partition: 0, offset: 0, t: 15 })
  const report = checkHistory(h, log('b', 'a'))
  assert.equal(report.reorders.length, 1)
})

test('concurrent sends may land in either order', () => {
  const h = new History()
  h.sends.set('a', { producer: 'p', value: 'a', partition: 0, t: 0 })
  h.sends.set('b', { producer: 'q', value: 'b', partition: 0, t: 1 })
  h.acks.set('a', { value: 'a', partition: 0, offset: 1, t: 5 })
  h.acks.set('b', { value: 'b', partition: 0, offset: 0, t: 5 })
  assert.deepEqual(checkHistory(h, log('b', 'a')).violations, [])
})

test('a skipped offset is a gap, unless offsets need not be dense', () => {
  const stored = new Map([[0, [{ offset: 0, value: 'a' }, { offset: 2, value: 'b' }]]])
  const h = sequential(['a', 'b'])
  h.acks.set('b', { value: 'b', partition: 0, offset: 2, t: 15 })
  assert.equal(checkHistory(h, stored).gaps.length, 1)
  assert.deepEqual(checkHistory(h, stored, { denseOffsets: false }).violations, [])
})

test('an acknowledged offset that holds another record is a mismatch', () => {
  const h = sequential(['a', 'b'])
  h.acks.set('b', { value: 'b', partition: 0, offset: 7, t: 15 })
  assert.ok(checkHistory(h, log('a', 'b')).violations.some((v) => v.includes('acknowledged at 0@7')))
})

test('a record a consumer read that is gone from its offset has vanished (offset reused)', () => {
  const h = sequential(['a', 'b'])
  h.reads.push({ member: 'm', assignment: 0, partition: 0, offset: 1, value: 'x', t: 3 })
  h.sends.set('x', { producer: 'p', value: 'x', partition: 0, t: 1 })
  const report = checkHistory(h, log('a', 'b'))
  assert.equal(report.vanished.length, 1)
})

test('records nobody sent, or stored in the wrong partition, are violations', () => {
  assert.ok(checkHistory(sequential(['a']), log('a', 'z')).violations.some((v) => v.includes('never sent')))
  const h = sequential(['a'])
  const elsewhere = new Map([[1, [{ offset: 0, value: 'a' }]]])
  assert.ok(checkHistory(h, elsewhere).violations.some((v) => v.includes('sent to partition 0')))
})

test('a commit past the end of the partition is a violation', () => {
  const h = sequential(['a'])
  h.commits.push({ member: 'm', partition: 0, offset: 5, t: 20 })
  assert.ok(checkHistory(h, log('a')).violations.some((v) => v.includes('past the partition')))
})

test('group violations and unconsumed records are reported through the group check', () => {
  const h = sequential(['a', 'b'])
  const group = {
    assigned: [
      { member: 'm1', generation: 1, partitions: [0], t: 0 },
      { member: 'm2', generation: 1, partitions: [0], t: 0 },
    ],
    records: [{ member: 'm1', assignment: 0, partition: 0, offset: 0, value: 'a', t: 1 }],
    commits: [],
  }
  const report = checkHistory(h, log('a', 'b'), { group })
  assert.ok(report.violations.some((v) => v.includes('assigned to both')))
  assert.ok(report.violations.some((v) => v.includes('never consumed')))
})

test('a commit accepted from a member that does not own the partition in that generation is a violation', () => {
  const group = {
    assigned: [
      { member: 'm1', generation: 1, partitions: [0], t: 0 },
      { member: 'm2', generation: 2, partitions: [0], t: 10 },
    ],
    records: [],
    commits: [{ member: 'm1', partition: 0, offset: 1, t: 12, generation: 2 }],
  }
  const report = checkHistory(sequential(['a']), log('a'), { group })
  assert.ok(report.violations.some((v) => v.includes('commit of partition 0 by m1 accepted')))
})

test('a zombie still processing after the handover is counted when zombies are possible, and a violation otherwise', () => {
  const group = {
    assigned: [
      { member: 'm1', generation: 1, partitions: [0], t: 0 },
      { member: 'm2', generation: 2, partitions: [0], t: 10 },
    ],
    records: [
      { member: 'm1', assignment: 0, partition: 0, offset: 0, value: 'a', t: 1 },
      { member: 'm2', assignment: 0, partition: 0, offset: 0, value: 'a', t: 11 },
      { member: 'm1', assignment: 0, partition: 0, offset: 1, value: 'b', t: 12 },
      { member: 'm2', assignment: 0, partition: 0, offset: 1, value: 'b', t: 13 },
    ],
    commits: [],
  }
  const h = sequential(['a', 'b'])
  assert.ok(checkHistory(h, log('a', 'b'), { group }).violations.some((v) => v.includes('still processed')))
  const tolerant = checkHistory(h, log('a', 'b'), { group, zombiesPossible: true })
  assert.deepEqual(tolerant.violations, [])
  assert.equal(tolerant.group!.zombieOverlaps, 1)
})

test('compacted topics: an acknowledged record removed for a later record of its key is superseded, not lost', () => {
  const keyOf = (value: string) => value.split('|')[0]!
  const h = sequential(['x|1', 'y|1', 'x|2'])
  const compacted = new Map([[0, [{ offset: 1, value: 'y|1' }, { offset: 2, value: 'x|2' }]]])
  const report = checkHistory(h, compacted, { keyOf, denseOffsets: false })
  assert.deepEqual(report.violations, [])
  assert.equal(report.superseded, 1)
  assert.deepEqual(checkHistory(h, compacted, { denseOffsets: false }).lost, ['x|1'], 'without keyOf it is lost')
})

test('compacted topics: the latest acknowledged record of a key missing is lost', () => {
  const keyOf = (value: string) => value.split('|')[0]!
  const h = sequential(['x|1', 'y|1', 'x|2'])
  const report = checkHistory(h, new Map([[0, [{ offset: 0, value: 'x|1' }, { offset: 1, value: 'y|1' }]]]), { keyOf, denseOffsets: false })
  assert.deepEqual(report.lost, ['x|2'])
})
