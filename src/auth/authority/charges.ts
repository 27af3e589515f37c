/**
 * Who a refusal may be charged to (reputation): blame and cost follow proof. The
 * invoker is charged only when this request proves that it invoked — its own
 * signature holds on an invocation addressed here, within its time, seen refused for
 * the first time — and what failed is the chain it signed, not a replay nor the
 * credentials presented beside it (anyone can attach or strip those). Never a proof's
 * issuer: a delegation is held by its delegates and everyone they showed it to, and
 * posting it proves nothing about who sent it.
 */

import type { ChainLink } from './chain-link.ts'
import type { AuthorityFailure } from './failure.ts'

export interface ChargeBookInit {
  /** This mesh's did: its own invocations are never charged. */
  meshDid: string
  /** Allowed clock difference, seconds: a charged invocation is remembered this long past its exp. */
  maxSkewSeconds: number
  /** Refused invocations remembered as charged (one charge each); default 10 000. */
  maxCharged?: number
}

// Refusals that say nothing about what the invoker signed.
const NOT_CHARGED = new Set(['MESH_REPLAY', 'MESH_BAD_REQUEST', 'MESH_UNAVAILABLE', 'MESH_INTERNAL'])

/** The refused invocations already charged to their invoker: a reposted copy is charged nothing more. */
export class ChargeBook {
  // By CID → when they expire (ms).
  readonly #charged = new Map<string, number>()
  readonly #init: Required<ChargeBookInit>

  constructor(init: ChargeBookInit) {
    this.#init = { ...init, maxCharged: init.maxCharged ?? 10_000 }
  }

  /**
   * The invoker, when this refusal may be charged to it. Called after the claim check
   * passed (addressed here, within its time); `webInvoker`: a did:web invoker whose
   * signature was not checked. Each invocation is charged once, remembered until it expires.
   */
  accountable(
    invocation: ChainLink,
    failures: AuthorityFailure[],
    webInvoker: boolean,
    now: number,
  ): string | undefined {
    if (invocation.issuer === this.#init.meshDid) return undefined
    // A did:web invoker's signature is checked only when its chain held: unproven here.
    if (webInvoker) return undefined
    if (failures.some((f) => f.proof !== 'ucan')) return undefined
    if (failures.some((f) => NOT_CHARGED.has(f.code))) return undefined
    if (this.#charged.has(invocation.cid)) return undefined
    const max = this.#init.maxCharged
    if (this.#charged.size >= max) {
      for (const [cid, until] of this.#charged) if (until <= now) this.#charged.delete(cid)
      // Still full: the oldest tenth goes (a reposted old one may then be charged once more).
      let drop = this.#charged.size >= max ? Math.ceil(max / 10) : 0
      for (const cid of this.#charged.keys()) {
        if (drop-- <= 0) break
        this.#charged.delete(cid)
      }
    }
    this.#charged.set(invocation.cid, invocation.expiration * 1000 + this.#init.maxSkewSeconds * 1000)
    return invocation.issuer
  }

  /** How many invocations are remembered as charged. */
  get size(): number {
    return this.#charged.size
  }
}
