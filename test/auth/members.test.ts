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
    await book.enroll({ did: 'did:key:z6MkBob', role: 'human', name: 'bob' })
    assert.equal(await book.role('did:key:z6MkBob'), 'human')
    assert.deepEqual(await book.localPrincipal('did:key:z6MkBob'), { localId: 'bob', tier: 4 })
  })

  it('names the architect "architect" when init gave its key no name', async (t) => {
    const book = new MemberBook({ store: await tempStore(t), architectDid })
    assert.deepEqual(await book.localPrincipal(architectDid), { localId: 'architect', tier: 1 })
  })

  it('keeps an earlier enrolment of the same did', async (t) => {
    const book = new MemberBook({ store: await tempStore(t), architectDid })
    await book.enroll({ did: 'did:key:z6MkBot', role: 'agent', name: 'echo' })
    await book.enroll({ did: 'did:key:z6MkBot', role: 'human', name: 'renamed' })
    assert.deepEqual(await book.get('did:key:z6MkBot'), {
      did: 'did:key:z6MkBot',
      role: 'agent',
      name: 'echo',
    })
  })

  it('counts the architect and humans as members, agents as bots', async (t) => {
    const book = new MemberBook({ store: await tempStore(t), architectDid })
    assert.deepEqual(await book.counts(), { members: 1, bots: 0 })
    await book.enroll({ did: 'did:key:z6MkBot1', role: 'agent', name: 'echo' })
    await book.enroll({ did: 'did:key:z6MkBot2', role: 'agent', name: 'summarizer' })
    await book.enroll({ did: 'did:key:z6MkBob', role: 'human', name: 'bob' })
    assert.deepEqual(await book.counts(), { members: 2, bots: 2 })
  })
})
