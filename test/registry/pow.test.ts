import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkPow, computePow, powZeroBits } from '../../src/registry/index.ts'
import { alice, bob } from '../fixtures/principals.ts'

describe('admission stamps (hashcash)', () => {
  it('finds a stamp of the difficulty asked, bound to its did', async () => {
    const nonce = await computePow(alice.did, 10)
    assert.ok(powZeroBits(alice.did, nonce) >= 10)
    assert.equal(checkPow(alice.did, nonce, 10), true)
    assert.equal(checkPow(bob.did, nonce, 10), powZeroBits(bob.did, nonce) >= 10)
    assert.equal(checkPow(alice.did, undefined, 10), false)
    assert.equal(checkPow(alice.did, undefined, 0), true, 'difficulty 0 asks for nothing')
  })

  it('stops when its signal aborts and refuses a difficulty above 32 bits', async () => {
    const controller = new AbortController()
    const work = computePow(alice.did, 32, { signal: controller.signal })
    controller.abort()
    await assert.rejects(work, { name: 'AbortError' })
    await assert.rejects(computePow(alice.did, 33), RangeError)
  })
})
