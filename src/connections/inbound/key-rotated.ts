import { MeshError, NotFoundError, SignatureMismatchError } from '../../errors.ts'
import { verifyRotationChain } from '../../identity/index.ts'
import { checkBody, type KeyRotatedBody } from '../connect-protocol.ts'
import { type Applied, ack, type ConnectionBook } from '../connection-book.ts'
import type { Envelope, EnvelopeVerifier } from '../envelope.ts'
import type { PeerRotation } from '../peer-rotation.ts'
import type { PeerBook } from '../peers.ts'

export interface KeyRotatedHandlerComponents {
  book: Pick<ConnectionBook, 'get'>
  peers: Pick<PeerBook, 'identityOf'>
  envelopes: Pick<EnvelopeVerifier, 'commit'>
  rotation: Pick<PeerRotation, 'applyChain'>
}

/**
 * `mesh.key-rotated`: a peer announces its new key with the chain from its identity;
 * the chain must end at the key that sent it and belong to a known peer with this
 * connection. Runs in the book's queue.
 */
export function keyRotatedHandler(
  c: KeyRotatedHandlerComponents,
  init: { name: string; now?: () => number },
) {
  const now = init.now ?? Date.now
  return {
    async handle(env: Envelope): Promise<Applied> {
      const body = checkBody<KeyRotatedBody>(env.type, env.body)
      const chain = verifyRotationChain(body.rotations, { identity: body.identity, now: now() })
      if (chain.keys.at(-1) !== env.origin) {
        throw new SignatureMismatchError('the rotation chain does not end at the key that sent it', {
          origin: env.origin,
          last: chain.keys.at(-1),
        })
      }
      let identity: string | undefined
      for (const key of [...chain.keys].reverse()) {
        identity = await c.peers.identityOf(key)
        if (identity !== undefined) break
      }
      if (identity === undefined) {
        throw new MeshError('MESH_PEER_UNKNOWN', 'no key of this rotation chain belongs to a known peer', {
          identity: body.identity,
        })
      }
      const record = await c.book.get(body.connectionId)
      if (record === undefined || record.peerDid !== identity) {
        throw new NotFoundError('no such connection with this mesh', { connectionId: body.connectionId })
      }
      const added = await c.rotation.applyChain(identity, body.rotations, { source: 'announcement', env })
      if (added.length === 0) await c.envelopes.commit(env)
      return { reply: ack(env.id, record, init.name) }
    },
  }
}
