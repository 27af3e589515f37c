import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import type { Entry } from '../../src/rooms/room-entries.ts'
import type { NewEntry } from '../../src/rooms/validate-update.ts'
import { type TurnHost, WriteTurn } from '../../src/rooms/write-turn.ts'

/** A room as a turn sees it: `has` may throw (what a broken room would do), commits are recorded. */
function host(room: string, opts: { hasThrows?: Error; refuse?: string } = {}) {
  const key = Ed25519KeyPair.generate()
  const commits: NewEntry[][] = []
  const h: TurnHost = {
    room,
    assertHealthy() {},
    has() {
      if (opts.hasThrows) throw opts.hasThrows
      return false
    },
    sealedBy: 'did:key:zMesh',
    signer: () => key,
    leaf: () => undefined,
    check(entries) {
      if (entries.some((e) => e.key === opts.refuse)) throw new Error(`refused ${opts.refuse}`)
    },
    async commit(entries) {
      commits.push(entries)
    },
  }
  return { h, commits }
}

const message = (key: string) => [{ map: 'messages' as const, key, value: { text: key } as unknown as Entry }]

describe('write turns of several rooms, run together', () => {
  it('a room that throws unexpectedly fails its own writers only; the other rooms of the turn commit', async () => {
    const broken = host('room-broken', { hasThrows: new Error('index gone') })
    const sound = host('room-sound')
    const brokenTurn = new WriteTurn(broken.h)
    const soundTurn = new WriteTurn(sound.h)
    const results = await Promise.allSettled([
      brokenTurn.add(message('b1'), []),
      soundTurn.add(message('s1'), []),
      brokenTurn.add(message('b2'), []),
      soundTurn.add(message('s2'), []),
    ])
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'fulfilled', 'rejected', 'fulfilled'],
    )
    assert.match(String((results[0] as PromiseRejectedResult).reason), /index gone/)
    assert.deepEqual(
      sound.commits.map((c) => c.map((e) => e.key)),
      [['s1', 's2']],
    )
    assert.equal(broken.commits.length, 0)
  })

  it('a write its room refuses fails alone; the turn’s other writes commit in one transaction', async () => {
    const room = host('room-one', { refuse: 'bad' })
    const turn = new WriteTurn(room.h)
    const results = await Promise.allSettled([
      turn.add(message('a'), []),
      turn.add(message('bad'), []),
      turn.add(message('c'), []),
    ])
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    )
    assert.deepEqual(
      room.commits.map((c) => c.map((e) => e.key)),
      [['a', 'c']],
    )
  })
})
