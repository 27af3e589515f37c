import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DeliveryError } from '../../src/connections/connect-protocol.ts'
import { type MailboxPark, parkAtRelay } from '../../src/connections/mailbox-park.ts'
import type { OutboxItem } from '../../src/connections/outbox.ts'
import { MeshError } from '../../src/errors.ts'
import { silentLogger } from '../../src/log.ts'

// store and forward (SPEC §10): when the outbox leaves a message at a peer's relay, and when not.

const RELAY = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWRelay'
const item = (attempts: number): OutboxItem =>
  ({
    seq: 1,
    peer: 'did:key:zPeer',
    connectionId: 'c1',
    envelopeId: 'e'.repeat(22),
    type: 'ucan.revoked',
    body: {},
    proofs: [],
    attempts,
    nextAttemptAt: 0,
    lastError: null,
  }) as unknown as OutboxItem

function setup(park: MailboxPark['park']) {
  const audited: unknown[] = []
  const parked: string[][] = []
  const c = {
    mailbox: {
      relaysOf: async (_did: string, known: readonly string[]) =>
        known.filter((a) => a.includes('/p2p-circuit')).map((a) => a.slice(0, a.indexOf('/p2p-circuit'))),
      park: async (recipient: string, relays: readonly string[], plaintext: Uint8Array, options: object) => {
        parked.push([...relays])
        return park(recipient, relays, plaintext, options)
      },
    },
    outbox: { removeOperations: () => [] },
    audit: {
      append: async (entry: unknown) => {
        audited.push(entry)
        return undefined as never
      },
    },
    logger: silentLogger(),
  }
  return { c, audited, parked }
}

const peer = { did: 'did:key:zPeer', multiaddrs: [`${RELAY}/p2p-circuit/p2p/12D3KooWPeer`] }
const unreachable = new DeliveryError('connect-refused', 'MESH_UNAVAILABLE', 'dial failed')
const ok = async () => ({ relay: RELAY, seq: 1, id: 'i'.repeat(22) })

describe('the outbox and the mailbox (SPEC §10)', () => {
  it('a second unreachable attempt is parked at the peer’s relay (audited, out of the outbox); a first is not', async () => {
    const { c, audited, parked } = setup(ok)
    const opts = { timeoutMs: 1000 }
    assert.equal(
      await parkAtRelay(c, item(0), peer, 'did:key:zPeer', new Uint8Array(1), unreachable, opts),
      false,
    )
    assert.equal(
      await parkAtRelay(c, item(1), peer, 'did:key:zPeer', new Uint8Array(1), unreachable, opts),
      true,
    )
    assert.deepEqual(parked, [[RELAY]])
    assert.equal((audited[0] as { action: string }).action, 'federation.mailbox.parked')
  })

  it('not parked: a refusal by the peer, a peer with no relay, a relay out of reach or with no mailbox for it', async () => {
    const opts = { timeoutMs: 1000 }
    const refused = new DeliveryError('remote-refused', 'MESH_FORBIDDEN', 'no')
    const { c } = setup(ok)
    assert.equal(
      await parkAtRelay(c, item(3), peer, 'did:key:zPeer', new Uint8Array(1), refused, opts),
      false,
    )
    const direct = { did: 'did:key:zPeer', multiaddrs: ['/ip4/127.0.0.1/tcp/2/p2p/12D3KooWPeer'] }
    assert.equal(
      await parkAtRelay(c, item(3), direct, 'did:key:zPeer', new Uint8Array(1), unreachable, opts),
      false,
    )
    for (const code of ['MESH_UNAVAILABLE', 'MESH_NOT_FOUND'] as const) {
      const { c: down } = setup(async () => {
        throw new MeshError(code, 'no')
      })
      assert.equal(
        await parkAtRelay(down, item(3), peer, 'did:key:zPeer', new Uint8Array(1), unreachable, opts),
        false,
      )
    }
  })

  it('a full mailbox: the message stays in the outbox, retried, with the relay’s MESH_QUOTA_EXCEEDED', async () => {
    const { c, audited } = setup(async () => {
      throw new MeshError('MESH_QUOTA_EXCEEDED', 'full', { items: 2 })
    })
    await assert.rejects(
      parkAtRelay(c, item(2), peer, 'did:key:zPeer', new Uint8Array(1), unreachable, { timeoutMs: 1000 }),
      (err: DeliveryError) =>
        err instanceof DeliveryError &&
        err.kind === 'connect-refused' &&
        err.code === 'MESH_QUOTA_EXCEEDED' &&
        err.details.reason === 'mailbox',
    )
    assert.deepEqual(audited, [])
  })
})
