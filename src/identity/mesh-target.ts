import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { BadRequestError } from '../errors.ts'
import { isDidKey } from './keys.ts'
import { didFromPeerId } from './peer-id.ts'

/** A did:key target, or a multiaddr ending in /p2p/<peer id> (its did is the PeerId's). */
export function parseTarget(target: string): { did: string; multiaddr?: string } {
  if (target.startsWith('did:')) {
    if (!isDidKey(target)) throw new BadRequestError('target is not an Ed25519 did:key', { target })
    return { did: target }
  }
  let ma: Multiaddr
  try {
    ma = multiaddr(target)
  } catch {
    throw new BadRequestError('target is neither a did:key nor a multiaddr', { target })
  }
  const p2p = ma.getComponents().findLast((c) => c.name === 'p2p')
  if (p2p?.value === undefined) {
    throw new BadRequestError('a multiaddr target must end in /p2p/<peer id>', { target })
  }
  let did: string
  try {
    did = didFromPeerId(p2p.value)
  } catch {
    throw new BadRequestError('the /p2p/ part of the target is not an Ed25519 peer id', { target })
  }
  return { did, multiaddr: target }
}
