import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MemberBook } from '../../src/auth/index.ts'
import { tempStore } from '../fixtures/principals.ts'

const architectDid = 'did:key:z6MkArchitect'

describe('MemberBook', () => {
  it('knows the architect without storing it, and members once enrolled', async (t) => {
    const book = new MemberBook({ store: await tempStore(t), architectDid, architectKeyName: 'ada' })
    assert.equal(await book.role(architectDid), 'architect')
    assert.deepEqual(await book.localPrincipal(architectDid), { localId: 'ada', tier: 1 })
    assert.equal(await book.role('did:key:z6MkStranger'), undefined)
    assert.equal(await book.localPrincipal('did:key:z6MkStranger'), undefined)
    await book.enroll({ did: 'did:key:z6MkBob', kind: 'human', name: 'bob' })
    assert.equal(await book.role('did:key:z6MkBob'), 'human')
    assert.deepEqual(await book.localPrincipal('did:key:z6MkBob'), { localId: 'bob', tier: 4 })
  })

  it('names the architect "architect" when init gave its key no name', async (t) => {
    const book = new MemberBook({ store: await tempStore(t), architectDid })
    assert.deepEqual(await book.localPrincipal(architectDid), { localId: 'architect', tier: 1 })
  })

  it('keeps an earlier enrolment of the same did', async (t) => {
    const book = new MemberBook({ store: await tempStore(t), architectDid })
    await book.enroll({ did: 'did:key:z6MkBot', kind: 'agent', name: 'echo', enrolledAt: 'then' })
    await book.enroll({ did: 'did:key:z6MkBot', kind: 'human', name: 'renamed' })
    assert.deepEqual(await book.get('did:key:z6MkBot'), {
      did: 'did:key:z6MkBot',
      kind: 'agent',
      role: 'agent',
      name: 'echo',
      tier: 4,
      enrolledAt: 'then',
      enrolledBy: 'did:key:z6MkBot',
    })
  })

  it('counts the architect and humans as members, agents as bots', async (t) => {
    const book = new MemberBook({ store: await tempStore(t), architectDid })
    assert.deepEqual(await book.counts(), { members: 1, bots: 0 })
    await book.enroll({ did: 'did:key:z6MkBot1', kind: 'agent', name: 'echo' })
    await book.enroll({ did: 'did:key:z6MkBot2', kind: 'agent', name: 'summarizer' })
    await book.enroll({ did: 'did:key:z6MkBob', kind: 'human', name: 'bob' })
    assert.deepEqual(await book.counts(), { members: 2, bots: 2 })
  })

  it('migrates records of the old shape {did, role, name}: built-in agents become kind and role agent', async (t) => {
    const store = await tempStore(t)
    const sub = store.sublevel<Record<string, string>>('members')
    await sub.put('did:key:z6MkOldBot', { did: 'did:key:z6MkOldBot', role: 'agent', name: 'echo' })
    await sub.put('did:key:z6MkOldBob', { did: 'did:key:z6MkOldBob', role: 'human', name: 'bob' })
    const book = new MemberBook({
      store,
      architectDid,
      tierOf: (did) => (did.endsWith('Bob') ? 2 : undefined),
    })
    assert.equal(await book.migrate('2026-01-01T00:00:00.000Z'), 2)
    assert.equal(await book.migrate(), 0, 'once')
    assert.deepEqual(await book.get('did:key:z6MkOldBot'), {
      did: 'did:key:z6MkOldBot',
      kind: 'agent',
      role: 'agent',
      name: 'echo',
      tier: 3,
      enrolledAt: '2026-01-01T00:00:00.000Z',
      enrolledBy: 'did:key:z6MkOldBot',
    })
    assert.equal(await book.role('did:key:z6MkOldBob'), 'human')
    assert.deepEqual(await book.localPrincipal('did:key:z6MkOldBob'), { localId: 'bob', tier: 2 })
    assert.deepEqual(
      (await book.list()).map((m) => [m.name, m.kind, m.role, m.tier]),
      [
        ['architect', 'human', 'architect', 1],
        ['bob', 'human', 'user', 2],
        ['echo', 'agent', 'agent', 3],
      ],
    )
    assert.deepEqual(await book.counts(), { members: 2, bots: 1 })
  })
})
