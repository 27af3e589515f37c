import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import canonicalize from 'canonicalize'
import { jcs } from '../../src/identity/jcs.ts'
import { messageEntryText } from '../../src/rooms/entry-jcs.ts'
import { contentId } from '../../src/rooms/index.ts'

const did = (c: string) => `did:key:z6Mk${c.repeat(44)}`
const base = {
  v: 1,
  room: 'room-1',
  author: did('a'),
  authorMesh: did('b'),
  body: 'hello "world"\n\\ \u0001 é',
  mentions: [did('c'), did('d')],
  ts: 1_700_000_000_123,
}

/** What the generic path writes (or throws). */
function generic(value: unknown): string | Error {
  try {
    return jcs(value) as string
  } catch (err) {
    return err as Error
  }
}

describe('message entries written out in JCS (issue 15, b6peer)', () => {
  it('writes exactly what the generic walk and the canonicalize package write', () => {
    const cases: unknown[] = [
      base,
      { ...base, mentions: [] },
      { ...base, replyTo: 'x'.repeat(43) },
      { ...base, replyTo: undefined },
      {
        ts: base.ts,
        v: 1,
        mentions: base.mentions,
        body: base.body,
        room: base.room,
        authorMesh: base.authorMesh,
        author: base.author,
      },
      { ...base, body: 'emoji 😀 pair' },
      { ...base, ts: -0 },
      { ...base, ts: 1.5e-7 },
      { ...base, ts: 1e21 },
      { ...base, room: '\u2028\u2029<>&' },
    ]
    for (const value of cases) {
      const text = messageEntryText(value)
      assert.equal(text, generic(value), JSON.stringify(value))
      assert.equal(text, canonicalize(value))
    }
  })

  it('leaves every other shape to the generic walk (undefined), which refuses or writes it', () => {
    const inherited = Object.create({ replyTo: 'y'.repeat(43) })
    Object.assign(inherited, base)
    const hidden = { ...base }
    Object.defineProperty(hidden, 'ts', { value: base.ts, enumerable: false })
    const others: unknown[] = [
      null,
      'text',
      [base],
      { ...base, extra: 1 },
      { ...base, attachments: [] },
      { ...base, v: 2 },
      { ...base, ts: Number.NaN },
      { ...base, ts: Number.POSITIVE_INFINITY },
      { ...base, ts: '1' },
      { ...base, mentions: 'x' },
      { ...base, mentions: [1] },
      // biome-ignore lint/suspicious/noSparseArray: a hole
      { ...base, mentions: [did('c'), , did('d')] },
      { ...base, replyTo: 5 },
      { ...base, body: 'lone \uD800 surrogate' },
      { ...base, mentions: ['\uDC00'] },
      { ...base, replyTo: '\uD83D' },
      { ...base, toJSON: () => 'x' },
      { ...base, mentions: Object.assign([did('c')], { toJSON: () => [] }) },
      hidden,
    ]
    for (const value of others)
      assert.equal(messageEntryText(value), undefined, String(JSON.stringify(value)))
    // An inherited member is not the entry's: the generic walk leaves it out, and so does contentId.
    assert.equal(messageEntryText(inherited), jcs(inherited))
    assert.throws(() => contentId({ ...base, body: 'lone \uD800 surrogate' }), /surrogate/i)
  })

  it('content ids are unchanged (sha256 of the generic text)', async () => {
    const { createHash } = await import('node:crypto')
    for (const value of [base, { ...base, replyTo: 'z'.repeat(43) }, { ...base, body: 'emoji 😀' }])
      assert.equal(
        contentId(value),
        createHash('sha256')
          .update(jcs(value) as string)
          .digest('base64url'),
      )
  })
})
