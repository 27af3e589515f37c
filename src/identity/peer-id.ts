import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { BadRequestError } from '../errors.ts'
import { didFromPublicKey, publicKeyFromDid } from './keys.ts'

/** A mesh's did:key and its PeerId are one Ed25519 key written two ways. */
export function didFromPeerId(peerId: PeerId | string): string {
  const id = typeof peerId === 'string' ? peerIdFromString(peerId) : peerId
  if (id.type !== 'Ed25519' || id.publicKey === undefined) {
    throw new BadRequestError('peer id is not an Ed25519 key', { peerId: id.toString() })
  }
  return didFromPublicKey(id.publicKey.raw)
}

export function peerIdFromDid(did: string): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKeyFromDid(did)))
}
