/**
 * ucanto and did-jwt principals on top of the identity module's node:crypto Ed25519
 * (OpenSSL), instead of the pure-JS noble code that @ucanto/principal and did-jwt
 * ship with (~15× slower to verify).
 *
 * - `ucantoSigner(key)` implements ucanto's `Signer` (what `delegate`/`invoke` sign with).
 * - `ucantoVerifier(did)` implements ucanto's `Verifier` for an Ed25519 did:key; it is
 *   also `principalParser`, the `principal` option of ucanto's `access`/`claim`.
 * - `jwtSigner(key)` is a did-jwt `Signer` (the `EdDSASigner` contract: data in,
 *   base64url signature out); `jwtIssuer(key)` is a fresh did-jwt-vc `Issuer` per call.
 */

import type * as API from '@ucanto/interface'
import {
  EDDSA as ALGORITHM,
  ED25519_PRIV_CODE,
  ED25519_PUB_CODE,
  EDDSA_SIGNATURE_CODE,
  Ed25519Principal,
} from '../../api/ucan.ts'
import { type Ed25519KeyPair, publicKeyFromDid, verifySignature } from '../../identity/index.ts'
import { ucantoCore } from './ucanto.ts'

type DIDKey = API.DIDKey

/** ucanto `Verifier` for one Ed25519 did:key, verifying with node:crypto. */
export class NodeEd25519Verifier extends Ed25519Principal {
  readonly publicKey: Uint8Array

  constructor(did: string) {
    const publicKey = publicKeyFromDid(did)
    super(did)
    this.publicKey = publicKey
  }

  get code(): number {
    return ED25519_PUB_CODE
  }

  verify(payload: Uint8Array, signature: { code: number; raw: Uint8Array }): boolean {
    return signature.code === EDDSA_SIGNATURE_CODE && verifySignature(this.did(), payload, signature.raw)
  }

  withDID(id: API.DID): API.Verifier {
    return {
      did: () => id,
      toDIDKey: () => this.toDIDKey(),
      verify: (payload: Uint8Array, signature: API.Signature) => this.verify(payload, signature),
      withDID: (other: API.DID) => this.withDID(other),
    } as unknown as API.Verifier
  }

  encode(): Uint8Array {
    const bytes = new Uint8Array(34)
    bytes[0] = 0xed
    bytes[1] = 0x01
    bytes.set(this.publicKey, 2)
    return bytes
  }
}

const verifiers = new Map<string, NodeEd25519Verifier>()
const VERIFIER_CACHE_MAX = 4096

/** A (cached) node:crypto verifier for an Ed25519 did:key; throws for any other DID. */
export function ucantoVerifier(did: string): API.Verifier<DIDKey> {
  let verifier = verifiers.get(did)
  if (verifier === undefined) {
    verifier = new NodeEd25519Verifier(did)
    if (verifiers.size >= VERIFIER_CACHE_MAX) verifiers.clear()
    verifiers.set(did, verifier)
  }
  return verifier as unknown as API.Verifier<DIDKey>
}

/** The `principal` option of ucanto's `access`/`claim`: parses a did:key into a fast verifier. */
export const principalParser: API.PrincipalParser = {
  parse: (did: API.DID) => ucantoVerifier(did) as unknown as API.Verifier,
}

/** ucanto `Signer` for one of our key pairs: signs with node:crypto. */
export class NodeEd25519Signer extends Ed25519Principal {
  readonly #key: Ed25519KeyPair
  readonly verifier: NodeEd25519Verifier

  constructor(key: Ed25519KeyPair) {
    super(key.did)
    this.#key = key
    this.verifier = new NodeEd25519Verifier(key.did)
  }

  get signer(): this {
    return this
  }

  get code(): number {
    return ED25519_PRIV_CODE
  }

  sign(payload: Uint8Array): API.SignatureView<unknown, number> {
    return ucantoCore().Signature.create(EDDSA_SIGNATURE_CODE, this.#key.sign(payload)) as API.SignatureView<
      unknown,
      number
    >
  }

  verify(payload: Uint8Array, signature: { code: number; raw: Uint8Array }): boolean {
    return this.verifier.verify(payload, signature)
  }

  /** The multiformat private key (0x1300 ‖ seed ‖ 0xed ‖ public key), as @ucanto/principal encodes it. */
  encode(): Uint8Array {
    const bytes = new Uint8Array(68)
    bytes[0] = 0x80
    bytes[1] = 0x26
    bytes.set(this.#key.seed, 2)
    bytes.set(this.verifier.encode(), 34)
    return bytes
  }

  toArchive(): { id: DIDKey; keys: Record<DIDKey, Uint8Array> } {
    const id = this.did()
    return { id, keys: { [id]: this.encode() } as Record<DIDKey, Uint8Array> }
  }

  withDID(id: API.DID): API.Signer {
    return {
      signer: this,
      verifier: this.verifier.withDID(id),
      did: () => id,
      toDIDKey: () => this.toDIDKey(),
      sign: (payload: Uint8Array) => this.sign(payload),
      signatureAlgorithm: ALGORITHM,
      signatureCode: EDDSA_SIGNATURE_CODE,
      encode: () => this.encode(),
    } as unknown as API.Signer
  }
}

/** ucanto signer for a key pair (use it as `issuer` in `delegate`/`invoke`). */
export function ucantoSigner(key: Ed25519KeyPair): API.Signer<DIDKey> {
  return new NodeEd25519Signer(key) as unknown as API.Signer<DIDKey>
}

/** A did-jwt `Signer` (same contract as did-jwt's `EdDSASigner`), signing with node:crypto. */
export function jwtSigner(key: Ed25519KeyPair): (data: string | Uint8Array) => Promise<string> {
  return async (data) => {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
    return Buffer.from(key.sign(bytes)).toString('base64url')
  }
}

/** A did-jwt-vc `Issuer`, new and frozen on every call: never share one across issuers. */
export function jwtIssuer(key: Ed25519KeyPair): Readonly<{
  did: string
  signer: (data: string | Uint8Array) => Promise<string>
  alg: 'EdDSA'
}> {
  return Object.freeze({ did: key.did, signer: jwtSigner(key), alg: 'EdDSA' as const })
}
