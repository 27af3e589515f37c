import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import type { GateAct } from '../../src/auth/index.ts'
import { ForbiddenError } from '../../src/errors.ts'
import {
  createKeyFile,
  Ed25519KeyPair,
  loadKeyHistory,
  MESH_KEY_FILE,
  type MeshKeyHistory,
} from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { KeyRotation } from '../../src/node/key-rotation.ts'

/** A data dir holding a fresh mesh key, removed when the test ends. */
async function dataDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mesh-rotation-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await createKeyFile(join(dir, MESH_KEY_FILE), 'mesh', 'alpha')
  return dir
}

/** A rotation over fakes that write down, in order, what the node was asked to do. */
async function rotation(t: TestContext, options: { history?: MeshKeyHistory; refuse?: string } = {}) {
  const dir = await dataDir(t)
  const events: string[] = []
  let history = options.history ?? (await loadKeyHistory(dir))
  const act = { issuer: 'did:key:zArchitect', operations: [] } as unknown as GateAct
  const keys = new KeyRotation({
    dataDir: dir,
    logger: silentLogger(),
    acts: () => ({
      local: async (token, expect) => {
        if (token === options.refuse) throw new ForbiddenError('refused')
        events.push(
          `act ${expect.act} for ${expect.audience === history.current.did ? 'current key' : 'other'}`,
        )
        return act
      },
      release: async () => void events.push('release'),
    }),
    audit: () => ({
      rotateKey: async (key, options) => {
        const details = options?.details
        events.push(`audit seq ${String(details?.seq)} by ${String(details?.by)}`)
        return { seq: 0, key: key.did } as never
      },
    }),
    history: () => history,
    adopt: async (next) => {
      events.push(`adopt ${next.keys.length} keys`)
      history = next
    },
    restart: async (key, whileStopped) => {
      events.push(`stop for ${key.did === history.current.did ? 'adopted key' : 'other'}`)
      await whileStopped()
      events.push('restart')
    },
    announce: async (identity, records) => {
      events.push(`announce ${records.length} to ${identity === history.identity ? 'identity' : 'other'}`)
      return ['did:key:zPeer']
    },
    peerId: () => 'peer-id-now',
  })
  return { keys, events, dir, history: () => history }
}

describe('KeyRotation', () => {
  it('checks the act, audits, adopts, and announces while the network is stopped', async (t) => {
    const { keys, events, history } = await rotation(t)
    const before = history()
    const result = await keys.rotate({ ucan: 'token', actor: 'did:key:zArchitect' })
    assert.deepEqual(events, [
      'act mesh/rotate-key for current key',
      'audit seq 1 by did:key:zArchitect',
      'adopt 2 keys',
      'stop for adopted key',
      'announce 1 to identity',
      'restart',
    ])
    assert.deepEqual(result, {
      identity: before.identity,
      previous: before.current.did,
      did: history().current.did,
      peerId: 'peer-id-now',
      seq: 1,
      announcedTo: ['did:key:zPeer'],
    })
  })

  it('releases the act and adopts nothing when the key cannot be rotated', async (t) => {
    // A history whose key is not the one on disk: rotateMeshKey refuses it.
    const other = Ed25519KeyPair.generate()
    const { keys, events } = await rotation(t, {
      history: { identity: other.did, records: [], keys: [other.did], current: other },
    })
    await assert.rejects(keys.rotate({ ucan: 'token', actor: 'did:key:zArchitect' }), {
      code: 'MESH_CONFLICT',
    })
    assert.deepEqual(events, ['act mesh/rotate-key for current key', 'release'])
  })

  it('runs one rotation at a time: the second starts from the key the first adopted', async (t) => {
    const { keys, history } = await rotation(t)
    const identity = history().identity
    const [first, second] = await Promise.all([
      keys.rotate({ ucan: 'one', actor: 'did:key:zArchitect' }),
      keys.rotate({ ucan: 'two', actor: 'did:key:zArchitect' }),
    ])
    assert.equal(first.seq, 1)
    assert.equal(second.seq, 2)
    assert.equal(second.previous, first.did)
    assert.equal(second.identity, identity)
    assert.equal(history().keys.length, 3)
  })

  it('goes on after a rotation the act check refused', async (t) => {
    const { keys, events } = await rotation(t, { refuse: 'one' })
    await assert.rejects(keys.rotate({ ucan: 'one', actor: 'did:key:zArchitect' }), {
      code: 'MESH_FORBIDDEN',
    })
    const result = await keys.rotate({ ucan: 'two', actor: 'did:key:zArchitect' })
    assert.equal(result.seq, 1)
    assert.equal(events.filter((e) => e === 'restart').length, 1)
  })
})
