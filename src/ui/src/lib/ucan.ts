import { Delegation, invoke, Signature } from '@ucanto/core'
import type * as API from '@ucanto/interface'
import { fromBase64url, randomBytes, toBase64url } from './bytes.ts'
import type { HumanKey } from './human-key.ts'

/**
 * Human-signed UCAN chains, made in the browser exactly as the CLI makes them
 * (src/cli/chains.ts): a ucanto invocation signed by the human's WebCrypto Ed25519 key
 * (non-extractable: ucanto asks it to sign, never for its bytes), addressed to this
 * mesh, with the mesh's root delegation to its architect (`GET
 * /api/auth/root-delegation`) — or a delegation the human holds — as its proof. The
 * encoded token is the base64url of the invocation's CAR archive
 * (src/auth/authority/token.ts), which goes in the API's `ucan` field.
 */

/** The acts the console signs (capabilities of src/auth/authority/capabilities.ts). */
export const ACTS = {
  connect: 'mesh/connect',
  accept: 'connection/accept',
  decline: 'connection/decline',
  disconnect: 'connection/disconnect',
  roomShare: 'room/share',
  promote: 'trust/promote',
} as const

/** Lifetime of an invocation the console signs (seconds), as the CLI's. */
export const INVOCATION_TTL_SECONDS = 600

const EDDSA = Signature.EdDSA
const ED25519_PRIV_CODE = 0x1300

/**
 * ucanto's `Signer` on a WebCrypto key, in the shape of the node's NodeEd25519Signer
 * (src/auth/authority/principal.ts). `sign` is async (WebCrypto is): ucanto awaits it.
 * It cannot `encode()` or `toArchive()` — the key is not extractable.
 */
export class WebCryptoEd25519Signer {
  readonly #key: HumanKey

  constructor(key: HumanKey) {
    this.#key = key
  }

  get signer(): this {
    return this
  }

  get code(): number {
    return ED25519_PRIV_CODE
  }

  get signatureCode(): number {
    return EDDSA
  }

  get signatureAlgorithm(): string {
    return 'EdDSA'
  }

  did(): API.DIDKey {
    return this.#key.did as API.DIDKey
  }

  toDIDKey(): API.DIDKey {
    return this.did()
  }

  async sign(payload: Uint8Array): Promise<API.SignatureView<unknown, number>> {
    const raw = await crypto.subtle.sign({ name: 'Ed25519' }, this.#key.privateKey, payload as BufferSource)
    return Signature.create(EDDSA, new Uint8Array(raw)) as API.SignatureView<unknown, number>
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

/** Encodes a delegation or invocation with its proofs for the wire (base64url CAR). */
export async function encodeToken(delegation: API.Delegation): Promise<string> {
  const archived = await delegation.archive()
  if (archived.error) throw archived.error
  return toBase64url(archived.ok)
}

/** Decodes a token (e.g. the root delegation) into a ucanto delegation to embed as a proof. */
export async function decodeToken(token: string): Promise<API.Delegation> {
  const extracted = await Delegation.extract(fromBase64url(token))
  if (extracted.error) throw new Error(`not a UCAN token: ${extracted.error.message}`)
  return extracted.ok as API.Delegation
}

export interface CapabilityInput {
  can: string
  with: string
  nb?: Record<string, unknown>
}

/** Signs an invocation of `capability` addressed to `audience` (the signer's mesh), encoded. */
export async function invocationToken(
  key: HumanKey,
  audience: string,
  capability: CapabilityInput,
  proofs: API.Delegation[],
  ttlSeconds = INVOCATION_TTL_SECONDS,
): Promise<string> {
  const invocation = invoke({
    issuer: ucantoSigner(key),
    audience: { did: () => audience as API.DID },
    capability: capability as unknown as API.Capability,
    expiration: Math.floor(Date.now() / 1000) + ttlSeconds,
    nonce: toBase64url(randomBytes(16)),
    proofs,
  })
  return encodeToken((await invocation.delegate()) as API.Delegation)
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

/** The capability an act invokes on `meshDid`. */
export function capabilityOf(meshDid: string, act: Act): CapabilityInput {
  switch (act.can) {
    case ACTS.connect:
      return { can: act.can, with: meshDid, nb: { peer: act.peer } }
    case ACTS.accept:
    case ACTS.decline:
    case ACTS.disconnect:
      return { can: act.can, with: meshDid, nb: { connection: act.connection } }
    case ACTS.roomShare:
      return 'dm' in act
        ? { can: act.can, with: meshDid, nb: { peer: act.dm } }
        : { can: act.can, with: roomResource(meshDid, act.room), nb: { peer: act.peer } }
    case ACTS.promote:
      return { can: act.can, with: meshDid, nb: { subject: act.subject, tier: act.tier, reason: act.reason } }
  }
}

/**
 * Signs `act` on the mesh `meshDid` with `key`, proved by `proofs` (the root
 * delegation when the key is the architect's, else delegations the human holds).
 */
export function signAct(key: HumanKey, meshDid: string, act: Act, proofs: API.Delegation[]): Promise<string> {
  return invocationToken(key, meshDid, capabilityOf(meshDid, act), proofs)
}
