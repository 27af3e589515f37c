import { Signature } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import { CID } from 'multiformats/cid'
import {
  type CapabilityInput,
  ED25519_PRIV_CODE,
  EDDSA_SIGNATURE_CODE,
  Ed25519Principal,
  extractToken,
  invocationToken,
} from '../../../api/ucan.ts'
import { type HumanKey, signBytes } from './human-key.ts'

/**
 * Human-signed UCAN chains, made in the browser exactly as the CLI makes them
 * (src/cli/chains.ts, both through src/api/ucan.ts): a ucanto invocation signed by the
 * human's WebCrypto Ed25519 key (non-extractable: ucanto asks it to sign, never for its
 * bytes), addressed to this mesh, with the mesh's root delegation to its architect
 * (`GET /api/auth/root-delegation`) — or a delegation the human holds — as its proof.
 */

/** Reads a token (the root delegation) as a ucanto delegation to embed as a proof. */
export { extractToken as decodeToken }

/** The acts the console signs (capabilities of src/auth/authority/capabilities.ts). */
export const ACTS = {
  connect: 'mesh/connect',
  accept: 'connection/accept',
  decline: 'connection/decline',
  disconnect: 'connection/disconnect',
  roomShare: 'room/share',
  promote: 'trust/promote',
  // members (SPEC §8), as the CLI names them
  enrol: 'mesh/enrol',
  remove: 'mesh/remove',
  // paused links and revocation (issue 13)
  pause: 'connection/pause',
  resume: 'connection/resume',
  revoke: 'ucan/revoke',
  // room lifecycle (SPEC §9): a room's owner or moderator sets a member's role
  roomRole: 'room/role',
  roomAccept: 'room/accept',
  roomDecline: 'room/decline',
  roomUnshare: 'room/unshare',
  roomLeave: 'room/leave',
  roomRemove: 'room/remove',
} as const

/**
 * ucanto's `Signer` on a WebCrypto key, on the principal the node's NodeEd25519Signer
 * shares (src/auth/authority/principal.ts). `sign` is async (WebCrypto is): ucanto
 * awaits it. It cannot `encode()` or `toArchive()` — the key is not extractable.
 */
export class WebCryptoEd25519Signer extends Ed25519Principal {
  readonly #key: HumanKey

  constructor(key: HumanKey) {
    super(key.did)
    this.#key = key
  }

  get signer(): this {
    return this
  }

  get code(): number {
    return ED25519_PRIV_CODE
  }

  async sign(payload: Uint8Array): Promise<API.SignatureView<unknown, number>> {
    return Signature.create(EDDSA_SIGNATURE_CODE, await signBytes(this.#key, payload)) as API.SignatureView<
      unknown,
      number
    >
  }

  withDID(): never {
    throw new Error('a browser key signs as its own did:key only')
  }

  encode(): never {
    throw new Error('the browser key is not extractable')
  }
}

/** The signer to pass as ucanto's `issuer`. */
export function ucantoSigner(key: HumanKey): API.Signer<API.DIDKey> {
  return new WebCryptoEd25519Signer(key) as unknown as API.Signer<API.DIDKey>
}

/** The mesh's resource for one of its rooms (`<mesh did>/rooms/<id>`). */
export function roomResource(meshDid: string, room: string): string {
  return `${meshDid}/rooms/${room}`
}

/**
 * What the console signs, as the node's routes expect it (each ability with its
 * subject caveat; resources default to the mesh itself).
 */
export type Act =
  | { can: typeof ACTS.connect; peer: string }
  | { can: typeof ACTS.accept | typeof ACTS.decline | typeof ACTS.disconnect; connection: string }
  /** Share a room with a peer mesh. */
  | { can: typeof ACTS.roomShare; room: string; peer: string }
  /** Open a federated DM with a principal of another mesh (the room does not exist yet). */
  | { can: typeof ACTS.roomShare; dm: string }
  | { can: typeof ACTS.promote; subject: string; tier: number; reason: string }
  /** Enrol a did:key as a member of this mesh (`role` only when one is asked for). */
  | { can: typeof ACTS.enrol; did: string; kind: 'human' | 'agent'; role?: string }
  | { can: typeof ACTS.remove; did: string }
  // paused links and revocation (issue 13)
  | { can: typeof ACTS.pause | typeof ACTS.resume; connection: string }
  /** Revoke a delegation by its CID (text, base32): `nb.ucan` is the CID as a link. */
  | { can: typeof ACTS.revoke; ucan: string; reason?: string }
  /** Set a member's role in a room of this mesh. */
  | { can: typeof ACTS.roomRole; room: string; did: string; role: string }
  /** Accept or decline a room a peer mesh shared with this one (`peer` = that mesh). */
  | { can: typeof ACTS.roomAccept | typeof ACTS.roomDecline; room: string; peer: string }
  /** End this mesh's share of a room with a peer mesh. */
  | { can: typeof ACTS.roomUnshare; room: string; peer: string }
  /** Leave a room another mesh shared with this one. */
  | { can: typeof ACTS.roomLeave; room: string }
  /** Remove a member from a room (owner or moderator). */
  | { can: typeof ACTS.roomRemove; room: string; did: string }

/** The capability an act invokes on `meshDid`. */
export function capabilityOf(meshDid: string, act: Act): CapabilityInput {
  switch (act.can) {
    case ACTS.connect:
      return { can: act.can, with: meshDid, nb: { peer: act.peer } }
    case ACTS.accept:
    case ACTS.decline:
    case ACTS.disconnect:
    case ACTS.pause:
    case ACTS.resume:
      return { can: act.can, with: meshDid, nb: { connection: act.connection } }
    case ACTS.roomShare:
      return 'dm' in act
        ? { can: act.can, with: meshDid, nb: { peer: act.dm } }
        : { can: act.can, with: roomResource(meshDid, act.room), nb: { peer: act.peer } }
    case ACTS.promote:
      return { can: act.can, with: meshDid, nb: { subject: act.subject, tier: act.tier, reason: act.reason } }
    case ACTS.enrol:
      return {
        can: act.can,
        with: meshDid,
        nb: { did: act.did, kind: act.kind, ...(act.role === undefined ? {} : { role: act.role }) },
      }
    case ACTS.remove:
      return { can: act.can, with: meshDid, nb: { did: act.did } }
    case ACTS.revoke:
      return {
        can: act.can,
        with: meshDid,
        nb: { ucan: CID.parse(act.ucan), ...(act.reason === undefined ? {} : { reason: act.reason }) },
      }
    case ACTS.roomLeave:
      return { can: act.can, with: roomResource(meshDid, act.room) }
    case ACTS.roomRemove:
      return { can: act.can, with: roomResource(meshDid, act.room), nb: { did: act.did } }
    case ACTS.roomAccept:
    case ACTS.roomDecline:
    case ACTS.roomUnshare:
      return { can: act.can, with: roomResource(meshDid, act.room), nb: { peer: act.peer } }
    case ACTS.roomRole:
      return { can: act.can, with: roomResource(meshDid, act.room), nb: { did: act.did, role: act.role } }
  }
}

/**
 * Signs `act` on the mesh `meshDid` with `key`, proved by `proofs` (the root
 * delegation when the key is the architect's, else delegations the human holds).
 */
export function signAct(key: HumanKey, meshDid: string, act: Act, proofs: API.Delegation[]): Promise<string> {
  return invocationToken(ucantoSigner(key), meshDid, capabilityOf(meshDid, act), proofs)
}
