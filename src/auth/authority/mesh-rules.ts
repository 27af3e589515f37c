/**
 * This mesh's rules on one complete chain path (the chain verifier's `accept`): the
 * tiers (who may re-delegate, what tier 4 may do, who may change tiers) and a human
 * in the chain, shown by a membership credential presented or held here. A forwarded
 * act of another mesh on its own resources gets only the human rule, vouched for by
 * that mesh. The policy (`humanRequired`, `acceptMembershipIssuer`) is passed in.
 */

import { CAPABILITIES, MAX_DELEGATING_TIER, resourceOwner } from './capabilities.ts'
import type { ChainPath } from './chain.ts'
import type { CredentialVerifier, VerifiedCredential } from './credentials.ts'
import { type AuthorityFailure, ucanFailure } from './failure.ts'
import type { HeldCredentials } from './held-credentials.ts'
import type { TrustStore } from './trust.ts'

export interface MeshRulesComponents {
  trust: Pick<TrustStore, 'tierOf' | 'isLocal'> & Partial<Pick<TrustStore, 'isRemoved'>>
  credentials: Pick<CredentialVerifier, 'verifyCredential'>
  held: Pick<HeldCredentials, 'of'>
}

export interface MeshRulesInit {
  meshDid: string
  /** Which abilities need a human in the chain; default all of them. */
  humanRequired?: (can: string) => boolean
  /** Whether membership credentials from this (foreign) mesh are believed; default all meshes. */
  acceptMembershipIssuer?: (meshDid: string) => boolean
}

/** A path accepted, with the human whose credential satisfied the rule (undefined when not required); or why not. */
export type RulesVerdict =
  | { error: AuthorityFailure; human?: undefined }
  | { error?: undefined; human: string | undefined }

export class MeshRules {
  readonly #c: MeshRulesComponents
  readonly #meshDid: string
  readonly #humanRequired: (can: string) => boolean
  readonly #acceptIssuer: (meshDid: string) => boolean

  constructor(components: MeshRulesComponents, init: MeshRulesInit) {
    this.#c = components
    this.#meshDid = init.meshDid
    this.#humanRequired = init.humanRequired ?? (() => true)
    this.#acceptIssuer = init.acceptMembershipIssuer ?? (() => true)
  }

  /** The rules on a path of an act on this mesh: tiers, then a human in the chain. */
  async local(path: ChainPath, presented: VerifiedCredential[], now: number): Promise<RulesVerdict> {
    const { links, capability } = path
    const can = capability.can
    const invoker = (links[0] as ChainPath['links'][number]).issuer
    const owner = resourceOwner(capability.with)
    const trust = this.#c.trust
    // members: a removed member's old chains die with its membership (SPEC §8)
    const removed = links.find((link) => trust.isRemoved?.(link.issuer) === true)
    if (removed !== undefined) {
      return {
        error: ucanFailure('MESH_UCAN_INVALID', 'a principal in this chain was removed from this mesh', {
          reason: 'removed',
          principal: removed.issuer,
          cid: removed.cid,
        }),
      }
    }
    for (let i = 1; i < links.length; i++) {
      const link = links[i] as ChainPath['links'][number]
      if (link.issuer === owner) continue
      const tier = trust.tierOf(link.issuer)
      if (tier > MAX_DELEGATING_TIER) {
        return {
          error: tierFailure(`a tier ${tier} principal cannot re-delegate`, {
            reason: 'redelegation',
            principal: link.issuer,
            tier,
            cid: link.cid,
          }),
        }
      }
    }
    const tier = trust.tierOf(invoker)
    if (tier === 4 && CAPABILITIES[can]?.participation !== true) {
      return {
        error: tierFailure(`tier 4 is participation only; ${can} is not`, {
          reason: 'participation',
          principal: invoker,
          tier,
          can,
        }),
      }
    }
    if (can === 'trust/promote') {
      if (!trust.isLocal(invoker) || invoker === this.#meshDid) {
        return {
          error: tierFailure('only a member of this mesh may change tiers here', {
            reason: 'foreign',
            principal: invoker,
            tier,
          }),
        }
      }
      if (!(await this.#isHuman(invoker, presented, now, true))) {
        return {
          error: ucanFailure('MESH_NOT_HUMAN_SIGNED', 'a tier is changed only by a local human', {
            reason: 'promoter',
            principal: invoker,
          }),
        }
      }
      const granted = capability.nb.tier
      if (typeof granted === 'number' && granted < tier) {
        return {
          error: tierFailure(`a tier ${tier} principal cannot grant tier ${granted}`, {
            reason: 'grant',
            principal: invoker,
            tier,
            granted,
          }),
        }
      }
    }
    return this.#humanIn(path, presented, now, false)
  }

  /** A forwarded act: only the human rule, vouched for by the mesh that owns the resource. */
  foreign(path: ChainPath, presented: VerifiedCredential[], now: number): Promise<RulesVerdict> {
    return this.#humanIn(path, presented, now, resourceOwner(path.capability.with))
  }

  // The first issuer along the path who is a human (vouched for by `by`, or by this mesh
  // or any mesh believed when false); the owner of the resource itself never counts for `by`.
  async #humanIn(
    path: ChainPath,
    presented: VerifiedCredential[],
    now: number,
    by: false | string,
  ): Promise<RulesVerdict> {
    const { links, capability } = path
    if (!this.#humanRequired(capability.can)) return { human: undefined }
    for (const link of links) {
      if (link.issuer === by) continue
      if (await this.#isHuman(link.issuer, presented, now, by)) return { human: link.issuer }
    }
    const message = by === false ? 'no human signed in this chain' : `no human of ${by} signed in this chain`
    return {
      error: ucanFailure('MESH_NOT_HUMAN_SIGNED', message, {
        reason: 'no-human',
        issuers: links.map((l) => l.issuer),
      }),
    }
  }

  // A human: a valid membership credential says so — from this mesh (localOnly), from
  // one given mesh (a did), or from this mesh or any mesh believed (false).
  async #isHuman(
    did: string,
    presented: VerifiedCredential[],
    now: number,
    localOnly: boolean | string,
  ): Promise<boolean> {
    const fits = (c: VerifiedCredential) =>
      c.subject === did &&
      c.membership?.kind === 'human' &&
      (typeof localOnly === 'string'
        ? c.issuer === localOnly && did !== localOnly
        : localOnly
          ? c.issuer === this.#meshDid
          : c.issuer === this.#meshDid || this.#acceptIssuer(c.issuer))
    if (presented.some(fits)) return true
    for (const jwt of this.#c.held.of(did)) {
      const result = await this.#c.credentials.verifyCredential(jwt, { now })
      if (result.ok !== undefined && fits(result.ok)) return true
    }
    return false
  }
}

function tierFailure(message: string, details: Record<string, unknown>): AuthorityFailure {
  return { code: 'MESH_TIER_FORBIDDEN', message, proof: 'ucan', details }
}
