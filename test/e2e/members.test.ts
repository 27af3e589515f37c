import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { MemberList, MemberView } from '../../src/api/index.ts'
import { e2e, freePort } from '../fixtures/e2e.ts'

describe('mesh member add/list/remove against a running node', () => {
  it('enrols a human and an agent by key name or did, each works --as itself, removal locks the human out', async (t) => {
    const { root, keystore, start, init, run: mesh, cli: ok } = await e2e(t, 'mesh-members-e2e-')
    const dir = join(root, 'alpha')
    await init('alpha', dir)
    await start([
      'start',
      ...['--data', dir, '--http', `127.0.0.1:${await freePort()}`],
      ...['--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`, '--discovery-interval', '60000'],
    ])
    const m = { dir }
    const carol = await keystore.create('carol')
    const bot = await keystore.create('bot')

    const added = await ok<MemberView>(m, 'member', 'add', 'carol', '--kind', 'human')
    assert.deepEqual(
      [added.did, added.name, added.kind, added.role, added.tier],
      [carol.did, 'carol', 'human', 'user', 4],
    )
    const agent = await ok<MemberView>(
      m,
      'member',
      'add',
      bot.did,
      '--kind',
      'agent',
      '--name',
      'helper',
      '--role',
      'helper',
    )
    assert.deepEqual([agent.did, agent.name, agent.kind, agent.role], [bot.did, 'helper', 'agent', 'helper'])

    const list = await ok<MemberList>(m, 'member', 'list')
    assert.deepEqual(
      list.members.map((x) => [x.name, x.kind]),
      [
        ['alpha-architect', 'human'],
        ['carol', 'human'],
        ['echo', 'agent'],
        ['helper', 'agent'],
        ['summarizer', 'agent'],
      ],
    )
    // Every client command signs as any enrolled key with --as.
    assert.equal((await ok<{ role: string }>(m, 'whoami', '--as', 'carol')).role, 'human')
    assert.equal((await ok<{ role: string }>(m, 'whoami', '--as', 'bot')).role, 'agent')
    assert.equal((await ok<MemberList>(m, 'member', 'list', '--as', 'bot')).members.length, 5)
    await ok(m, 'rooms', '--as', 'carol')
    const vc = await ok<{ vc: string }>(m, 'member', 'credential', 'carol', '--as', 'carol')
    assert.match(vc.vc, /^[\w-]+\.[\w-]+\.[\w-]+$/)
    // A member without a delegation cannot enrol: the CLI says how to pass one.
    const refused = await mesh<unknown>(
      m,
      'member',
      'add',
      'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
      '--kind',
      'human',
      '--name',
      'x',
      '--as',
      'carol',
    )
    assert.equal(refused.code, 1)
    assert.equal(refused.out.error?.code, 'MESH_BAD_REQUEST')

    assert.deepEqual(await ok(m, 'member', 'remove', 'carol'), { removed: carol.did })
    const locked = await mesh<unknown>(m, 'whoami', '--as', 'carol')
    assert.deepEqual([locked.code, locked.out.error?.code], [1, 'MESH_FORBIDDEN'])
    assert.equal((await ok<MemberList>(m, 'member', 'list')).members.length, 4)
    const again = await mesh<unknown>(m, 'member', 'remove', 'carol')
    assert.deepEqual([again.code, again.out.error?.code], [1, 'MESH_NOT_FOUND'])
  })
})
