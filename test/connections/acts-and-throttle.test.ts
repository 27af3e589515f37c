import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AuditLog, RefusalThrottle } from '../../src/audit/index.ts'
import { type ActAuthority, ActGate, type GateAct } from '../../src/auth/acts/index.ts'
import { Authority, type AuthorityOk } from '../../src/auth/authority/index.ts'
import { actCapability, invocationToken, proofOf } from '../../src/cli/chains.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'

const mesh = new Ed25519KeyPair(Buffer.alloc(32, 31))
const peerMesh = new Ed25519KeyPair(Buffer.alloc(32, 32))

/** A gate whose authority only counts the verdicts it is asked to release. */
function countingGate(released: unknown[]) {
  const authority = { release: (verdict: AuthorityOk) => released.push(verdict) } as unknown as ActAuthority
  return new ActGate({ authority: () => authority })
}

/** A verified chain as the gate returns it: invoked by `issuers[0]`, with `human` in it. */
function chainAct(human: string | undefined, issuers: string[]): GateAct {
  return {
    format: 'ucan',
    issuer: issuers[0] ?? '',
    human,
    issuers,
    operations: [],
    forward: [],
    verdict: { issuer: issuers[0] } as unknown as AuthorityOk,
  }
}

describe('withAct', () => {
  it('releases the act when the effect fails, so the same token is judged again', async (t) => {
    const store = await tempStore(t)
    const audit = new AuditLog({ store, key: mesh })
    await audit.start()
    t.after(() => audit.stop())
    const authority = new Authority({
      store,
      audit,
      meshKey: mesh,
      meshName: 'mesh',
      architectDid: alice.did,
    })
    await authority.start()
    const gate = new ActGate({ authority: () => authority })
    const root = proofOf((await authority.ensureRootDelegation(alice.did)).token)
    const token = await invocationToken(
      alice,
      mesh.did,
      actCapability(mesh.did, 'connection/accept', 'c'.repeat(32)),
      [root],
    )
    const expect = { audience: mesh.did, act: 'connection/accept', subject: 'c'.repeat(32) }
    const act = await gate.local(token, expect)
    await assert.rejects(
      gate.withAct(act, async () => {
        throw new Error('effect failed')
      }),
      /effect failed/,
    )
    // Released: verifies again. This time the effect succeeds and the act stays claimed.
    const again = await gate.local(token, expect)
    assert.equal(await gate.withAct(again, async () => 'done'), 'done')
    await assert.rejects(gate.local(token, expect), { code: 'MESH_REPLAY' })
  })
})

describe('peerHumanAct', () => {
  const isMeshKey = (did: string) => did === mesh.did || did === peerMesh.did

  it('refuses a chain whose human is a mesh key, and releases it', async () => {
    const released: unknown[] = []
    const gate = countingGate(released)
    const act = chainAct(peerMesh.did, [bob.did, peerMesh.did])
    await assert.rejects(gate.peerHumanAct(act, { isMeshKey, architect: bob.did }), {
      code: 'MESH_NOT_HUMAN_SIGNED',
    })
    await assert.rejects(gate.peerHumanAct(chainAct(undefined, [bob.did]), { isMeshKey, architect: null }), {
      code: 'MESH_NOT_HUMAN_SIGNED',
    })
    assert.equal(released.length, 2)
  })

  it('refuses a chain that does not pass through the declared architect, and releases it', async () => {
    const released: unknown[] = []
    const gate = countingGate(released)
    // mallory delegated to herself: a human, but not the architect the peer declared (bob).
    const act = chainAct(mallory.did, [mallory.did, peerMesh.did])
    await assert.rejects(
      gate.peerHumanAct(act, { isMeshKey: async (d) => isMeshKey(d), architect: bob.did }),
      {
        code: 'MESH_FORBIDDEN',
      },
    )
    assert.deepEqual(released, [act.verdict])
  })

  it('passes a chain through the architect, and a DM share (no architect asked), without releasing', async () => {
    const released: unknown[] = []
    const gate = countingGate(released)
    const act = chainAct(mallory.did, [mallory.did, bob.did, peerMesh.did])
    assert.equal(await gate.peerHumanAct(act, { isMeshKey, architect: bob.did }), act)
    const dm = chainAct(mallory.did, [mallory.did, peerMesh.did])
    assert.equal(await gate.peerHumanAct(dm, { isMeshKey, architect: null }), dm)
    assert.deepEqual(released, [])
  })
})

describe('RefusalThrottle', () => {
  it('records one refusal per key per interval and counts the rest into the next record', () => {
    let now = 1_000_000
    const throttle = new RefusalThrottle({ intervalMs: 1000, now: () => now })
    assert.deepEqual(throttle.admit('peer-a'), { suppressedSinceLast: 0 })
    assert.equal(throttle.admit('peer-a'), undefined)
    assert.equal(throttle.admit('peer-a'), undefined)
    // Another key has its own interval.
    assert.deepEqual(throttle.admit('peer-b'), { suppressedSinceLast: 0 })
    now += 999
    assert.equal(throttle.admit('peer-a'), undefined)
    now += 1
    assert.deepEqual(throttle.admit('peer-a'), { suppressedSinceLast: 3 })
    now += 1000
    assert.deepEqual(throttle.admit('peer-a'), { suppressedSinceLast: 0 })
  })

  it('reads its interval at each call and forgets all keys past its bound', () => {
    let now = 0
    let interval = 1000
    const throttle = new RefusalThrottle({ intervalMs: () => interval, maxKeys: 2, now: () => now })
    throttle.admit('a')
    assert.equal(throttle.admit('a'), undefined)
    interval = 0
    assert.deepEqual(throttle.admit('a'), { suppressedSinceLast: 1 })
    interval = 1000
    throttle.admit('b')
    throttle.admit('c')
    // Three keys held (> 2): the next new key clears the table, so 'a' is admitted again at once.
    throttle.admit('d')
    now += 1
    assert.deepEqual(throttle.admit('a'), { suppressedSinceLast: 0 })
  })
})
