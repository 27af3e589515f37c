import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkQuotaOverrides, QuotaBook, quotaPolicy } from '../../src/model/index.ts'
import { tempStore } from '../fixtures/principals.ts'

type Refusal = { code: string; details: Record<string, unknown> }

const A = 'did:key:z6MkAlpha'
const B = 'did:key:z6MkBravo'

describe('model proxy quotas (SPEC §13)', () => {
  it('20 concurrent callers of one principal cannot pass 10 requests a minute; Retry-After until the minute turns', async () => {
    let now = Date.UTC(2026, 0, 1, 12, 0, 15)
    const book = new QuotaBook({
      policy: quotaPolicy({ tiers: { 4: { requestsPerMinute: 10 } } }),
      now: () => now,
    })
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, async () => {
        const reservation = book.reserve(A, 4, 10)
        await new Promise((resolve) => setImmediate(resolve))
        return book.settle(reservation, { usage: { promptTokens: 3, completionTokens: 4, totalTokens: 7 } })
      }),
    )
    const admitted = outcomes.filter((o) => o.status === 'fulfilled')
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected')
    assert.equal(admitted.length, 10)
    assert.equal(refused.length, 10)
    for (const r of refused) {
      const err = r.reason as Refusal
      assert.equal(err.code, 'MESH_RATE_LIMITED')
      assert.equal(err.details.retryAfterMs, 45_000)
    }
    const [usage] = book.usage(A)
    assert.equal(usage?.requests, 10)
    assert.equal(usage?.refused, 10)
    assert.equal(usage?.totalTokens, 70)
    assert.equal(usage?.promptTokens, 30)
    assert.equal(usage?.minute.tokens, 70)
    // the next minute admits again
    now += 45_000
    assert.doesNotThrow(() => book.reserve(A, 4, 10))
  })

  it('tokens are reserved before the call (no overshoot in flight) and charged as the upstream reports', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0)
    const book = new QuotaBook({
      policy: quotaPolicy({ tiers: { 4: { tokensPerMinute: 100 } } }),
      now: () => now,
    })
    const first = book.reserve(A, 4, 60)
    // 60 of 100 are held by the call in flight: another 60 would pass the limit
    assert.throws(
      () => book.reserve(A, 4, 60),
      (err: Refusal) => err.code === 'MESH_RATE_LIMITED',
    )
    book.settle(first, { usage: { promptTokens: 5, completionTokens: 5, totalTokens: 10 } })
    // charged 10, not 60: room for 60 now
    const second = book.reserve(A, 4, 60)
    book.settle(second, { failed: true })
    const [usage] = book.usage(A)
    assert.equal(usage?.totalTokens, 10)
    assert.equal(usage?.requests, 1)
    assert.equal(usage?.failed, 1)
    assert.equal(usage?.refused, 1)
    assert.deepEqual(usage?.minute, { requests: 1, tokens: 10 })
    // a single call larger than the quota itself can never pass: a bad request, not a wait
    assert.throws(
      () => book.reserve(A, 4, 101),
      (err: Refusal) => err.code === 'MESH_BAD_REQUEST',
    )
  })

  it('per tier together: the tier total holds across principals; a principal override replaces its tier’s limits', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0)
    const book = new QuotaBook({
      policy: quotaPolicy({
        tiers: { 4: { requestsPerMinute: 5 } },
        tierTotals: { 4: { requestsPerMinute: 6 } },
        principals: { [B]: { requestsPerMinute: 1 } },
      }),
      now: () => now,
    })
    for (let i = 0; i < 5; i++) book.reserve(A, 4, 1)
    book.reserve(B, 4, 1)
    // A has its own room left? no: 5 of 5. B: 1 of 1. The tier: 6 of 6.
    assert.throws(
      () => book.reserve('did:key:z6MkCharlie', 4, 1),
      (err: Refusal) => {
        assert.equal(err.code, 'MESH_RATE_LIMITED')
        assert.match(String(err.details.quota), /tier 4/)
        return true
      },
    )
    assert.throws(
      () => book.reserve(B, 4, 1),
      (err: Refusal) => /principal/.test(String(err.details.quota)),
    )
    // tier 3 is another bucket
    assert.doesNotThrow(() => book.reserve('did:key:z6MkDelta', 3, 1))
  })

  it('a day’s counts survive a restart (the store), and a new day starts from zero', async (t) => {
    const store = await tempStore(t)
    let now = Date.UTC(2026, 0, 1, 23, 59, 0)
    const policy = quotaPolicy({ tiers: { 4: { requestsPerDay: 2 } } })
    const first = new QuotaBook({ policy, store, now: () => now })
    await first.load()
    first.settle(first.reserve(A, 4, 1), { usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 } })
    first.settle(first.reserve(A, 4, 1), { usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 } })
    await first.flush()
    const again = new QuotaBook({ policy, store, now: () => now })
    await again.load()
    assert.throws(
      () => again.reserve(A, 4, 1),
      (err: Refusal) => {
        assert.equal(err.code, 'MESH_RATE_LIMITED')
        assert.equal(err.details.retryAfterMs, 60_000)
        return true
      },
    )
    assert.equal(again.usage(A)[0]?.totalTokens, 4)
    now += 60_000
    assert.doesNotThrow(() => again.reserve(A, 4, 1))
  })

  it('a quota policy file is checked: unknown keys, tiers, fields and bad numbers are MESH_BAD_REQUEST', () => {
    const policy = {
      tiers: { 4: { requestsPerMinute: 2 } },
      principals: { [A]: { tokensPerDay: 10 } },
      reserveTokens: 64,
    }
    assert.deepEqual(
      checkQuotaOverrides(JSON.parse(JSON.stringify(policy))),
      JSON.parse(JSON.stringify(policy)),
    )
    for (const bad of [
      null,
      [],
      { tier: {} },
      { tiers: { 5: {} } },
      { tiers: { 4: { requestsPerHour: 1 } } },
      { tiers: { 4: { requestsPerMinute: -1 } } },
      { tiers: { 4: { requestsPerMinute: 1.5 } } },
      { tierTotals: { 1: 'x' } },
      { principals: { 'not a did': {} } },
      { reserveTokens: 0 },
    ]) {
      assert.throws(
        () => checkQuotaOverrides(bad),
        (err: Refusal) => err.code === 'MESH_BAD_REQUEST',
        JSON.stringify(bad),
      )
    }
  })
})
