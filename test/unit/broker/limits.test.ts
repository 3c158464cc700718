import assert from 'node:assert/strict'
import { test } from 'node:test'
import { RequestBytesBudget, WarningLimiter } from '../../../src/broker/limits.ts'

test('the request-bytes budget wakes waiters once usage drops below the limit', () => {
  const budget = new RequestBytesBudget(100)
  budget.take(60)
  assert.equal(budget.exhausted, false)
  budget.take(60)
  assert.equal(budget.exhausted, true)
  let woken = 0
  budget.whenAvailable(() => woken++)
  const cancelled = budget.whenAvailable(() => assert.fail('a cancelled waiter is never woken'))
  cancelled()
  budget.release(10)
  assert.equal(woken, 0, 'still at the limit')
  budget.release(50)
  assert.equal(woken, 1)
  budget.release(60)
  assert.equal(woken, 1, 'a waiter is woken once')
  assert.equal(budget.inUse, 0)
})

test('warnings beyond the per-second allowance are dropped and counted on the next one', () => {
  let now = 0
  const limiter = new WarningLimiter(2, () => now)
  assert.deepEqual(limiter.admit(), { suppressed: 0 })
  assert.deepEqual(limiter.admit(), { suppressed: 0 })
  assert.equal(limiter.admit(), undefined)
  assert.equal(limiter.admit(), undefined)
  now += 1000
  assert.deepEqual(limiter.admit(), { suppressed: 2 })
})
