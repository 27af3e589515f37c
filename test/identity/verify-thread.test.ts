/**
 * Issue 15 (verify15, beta15): Ed25519 checks shared with the verifying thread. A check's
 * bytes are built only when its turn's checks go to the thread (32 or more): a turn of
 * few (live traffic) builds nothing, and each is its taker's to verify. What the thread
 * found good is taken as good; a forged or unbuildable check never is.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Ed25519KeyPair, type SharedCheck, shareChecks } from '../../src/identity/index.ts'

const key = new Ed25519KeyPair(Buffer.alloc(32, 21))

/** A check of `key`'s signature over `text` (forged: another text's signature); counts its builds. */
function signed(text: string, builds: { count: number }, forged = false): SharedCheck {
  const data = Buffer.from(text)
  const signature = key.sign(forged ? Buffer.from(`${text}!`) : data)
  return {
    did: key.did,
    build: () => {
      builds.count++
      return { data, signature }
    },
  }
}

describe('checks shared with the verifying thread', () => {
  it('builds nothing for a turn of few checks: each stays its taker’s', async () => {
    const builds = { count: 0 }
    const shared = shareChecks([signed('a', builds), signed('b', builds), signed('c', builds)])
    await new Promise((resolve) => setImmediate(resolve)) // the turn's end: where a batch is posted
    await shared.settled()
    assert.equal(builds.count, 0)
    for (const i of [0, 1, 2]) assert.equal(shared.take(i), false)
  })

  it('builds and verifies a turn of many: good ones taken as good, a forged or unbuildable one never', async () => {
    const builds = { count: 0 }
    const checks = Array.from({ length: 40 }, (_, i) => signed(`entry ${i}`, builds, i === 7))
    checks[9] = { did: key.did, build: () => undefined }
    checks[11] = { did: 'did:key:nonsense', build: (checks[11] as SharedCheck).build }
    const shared = shareChecks(checks)
    await new Promise((resolve) => setImmediate(resolve))
    await shared.settled()
    assert.equal(builds.count, 39) // every check but the unbuildable one, once
    for (let i = 0; i < checks.length; i++)
      assert.equal(shared.take(i), ![7, 9, 11].includes(i), `check ${i}`)
    assert.equal(shared.take(40), false)
  })
})
