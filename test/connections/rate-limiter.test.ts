import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RateLimiter } from '../../src/connections/rate-limiter.ts'
import { alice, bob, mallory } from '../fixtures/principals.ts'

describe('rate limiter', () => {
  it('refuses a flood from mallory while alice and bob go through', () => {
    const clock = { now: 0 }
    const limiter = new RateLimiter({ capacity: 10, refillPerSecond: 2, now: () => clock.now })
    let admitted = 0
    for (let i = 0; i < 1000; i++) if (limiter.take(mallory.did)) admitted++
    assert.equal(admitted, 10)
    assert.equal(limiter.take(alice.did), true)
    assert.equal(limiter.take(bob.did), true)
    assert.throws(
      () => limiter.consume(mallory.did),
      (err: { code: string; details: { retryAfterMs: number } }) => {
        assert.equal(err.code, 'MESH_RATE_LIMITED')
        assert.equal(err.details.retryAfterMs, 500)
        return true
      },
    )
    clock.now = 1_000
    assert.equal(limiter.take(mallory.did), true)
    assert.equal(limiter.take(mallory.did), true)
    assert.equal(limiter.take(mallory.did), false)
  })

  it('refills up to the capacity, never beyond, and not when the clock steps back', () => {
    const clock = { now: 0 }
    const limiter = new RateLimiter({ capacity: 3, refillPerSecond: 1, now: () => clock.now })
    assert.equal(limiter.take(alice.did, 3), true)
    clock.now = 60_000
    assert.equal(limiter.available(alice.did), 3)
    assert.equal(limiter.take(alice.did, 4), false)
    assert.equal(limiter.take(alice.did, 3), true)
    clock.now = 30_000
    assert.equal(limiter.take(alice.did), false)
  })

  it('tracks at most maxKeys peers, forgetting the least recently used', () => {
    const limiter = new RateLimiter({ capacity: 1, refillPerSecond: 0, maxKeys: 2, now: () => 0 })
    assert.equal(limiter.take(alice.did), true)
    assert.equal(limiter.take(bob.did), true)
    assert.equal(limiter.take(alice.did), false) // alice is now the most recent
    assert.equal(limiter.take(mallory.did), true) // bob is forgotten
    assert.equal(limiter.size, 2)
    assert.equal(limiter.take(alice.did), false)
    assert.equal(limiter.take(bob.did), true)
  })

  it('refuses nonsense options', () => {
    assert.throws(() => new RateLimiter({ capacity: 0 }), RangeError)
    assert.throws(() => new RateLimiter({ refillPerSecond: -1 }), RangeError)
  })
})
