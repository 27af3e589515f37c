/**
 * The authority's contract: what is asked (an encoded invocation, the capability it
 * must claim, the credentials beside it), in which context, and the verdict —
 * ucanto's `{ok} | {error}`, never a throw for a bad request.
 */

import { MeshError } from '../../errors.ts'
import type { StoreOperation } from '../../store/index.ts'
import type { Tier } from './capabilities.ts'
import type { ChainPath } from './chain.ts'
import type { ExpectedCapability } from './claim.ts'
import type { VerifiedCredential } from './credentials.ts'
import type { AuthorityFailure, ProofName } from './failure.ts'

/** What is asked: an encoded invocation, the capability it must claim, and the credentials presented with it. */
export interface AuthorityRequest extends ExpectedCapability {
  /** The encoded invocation (base64url CAR, see `encodeToken`). */
  ucan: string
  /** Credential JWTs presented alongside (membership of the humans in the chain, vouching). */
  credentials?: string[]
  /** Or a presentation (VP JWT) of them, held by the invoker and addressed to this mesh. */
  presentation?: string
}

export interface AuthorityContext {
  /** ms since the epoch; default the authority's clock. */
  now?: number
  /** The principal the invocation must be addressed to; default this mesh. */
  audience?: string
  /**
   * Leave the invocation claimed but unwritten: the caller writes `ok.commitOperations`
   * in the batch of the act's effect (then `committed`), or `release`s it. Default false:
   * the invocation is spent before the verdict returns.
   */
  deferCommit?: boolean
  /**
   * A forwarded act of another mesh on its own resources (a peer's connect, accept,
   * decline or disconnect): `audience` is that mesh, which must also own `request.with`,
   * so the chain is rooted in its key. This mesh's tiers do not apply (they rule what
   * principals may do *here*); the human in the chain is shown by a membership
   * credential that mesh issued (presented, or held here) to a key other than its own.
   * Default false.
   */
  foreign?: boolean
}

export interface AuthorityOk {
  /** The invoker. */
  issuer: string
  audience: string
  capability: ChainPath['capability']
  /** CIDs: the invocation, then each proof down to the one the resource's owner issued. */
  chain: string[]
  /** The issuers along the chain, in the same order. */
  issuers: string[]
  /** The invoker's tier on this mesh. */
  tier: Tier
  /** The human whose credential satisfied the human-in-the-chain rule (undefined when not required). */
  humanInChain: string | undefined
  /** CID of the invocation (spent). */
  invocation: string
  credentials: VerifiedCredential[]
  /** With `deferCommit`: the operations that spend the invocation. */
  commitOperations: StoreOperation[]
}

export interface AuthorityError extends AuthorityFailure {
  /** Every proof that failed, in the order did, vc, ucan. */
  failed?: { proof: ProofName; code: string; message: string }[]
  /**
   * Who this refusal may be charged to (reputation): the invoker, set only when this
   * request proves that it invoked — its own signature holds on an invocation addressed
   * here, within its time, seen refused for the first time — and what failed is the
   * chain it signed, not a replay nor the credentials presented beside it (anyone can
   * attach or strip those). Never a proof's issuer: a delegation is held by its delegates
   * and everyone they showed it to, and posting it proves nothing about who sent it.
   */
  accountable?: string
}

export type AuthorityVerdict =
  | { ok: AuthorityOk; error?: undefined }
  | { ok?: undefined; error: AuthorityError }

/** A refused verdict as the MeshError an HTTP route or stream handler reports. */
export function toMeshError(error: AuthorityError): MeshError {
  return new MeshError(error.code, error.message, {
    proof: error.proof,
    ...error.details,
    failed: error.failed,
  })
}
