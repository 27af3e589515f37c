/**
 * One authority decision: whether an encoded invocation may do what it claims here,
 * by three independent proofs — did (the invoker signed it), vc (the credentials
 * presented hold), ucan (a chain from the resource's owner under this mesh's rules) —
 * and no replay. What costs least and needs no network is checked first.
 */

import { isDidKey } from '../../identity/index.ts'
import type { MeshStore } from '../../store/index.ts'
import { resourceOwner, type Tier } from './capabilities.ts'
import type { ChainPath, ChainVerifier } from './chain.ts'
import type { ChargeBook } from './charges.ts'
import type { VerifiedCredential } from './credentials.ts'
import { type AuthorityFailure, type ProofName, ucanFailure } from './failure.ts'
import type { MeshRules } from './mesh-rules.ts'
import type { LaterCredentials, PresentedCredentials } from './presented-credentials.ts'
import type { ReplayGuard } from './replay-guard.ts'
import type { AuthorityContext, AuthorityRequest, AuthorityVerdict } from './verdict.ts'

export interface InvocationVerifierComponents {
  store: Pick<MeshStore, 'batch'>
  chains: ChainVerifier
  replay: ReplayGuard
  presented: PresentedCredentials
  rules: MeshRules
  charges: ChargeBook
  tierOf: (did: string) => Tier
}

export interface InvocationVerifierInit {
  meshDid: string
  /** Allowed clock difference, seconds. */
  maxSkewSeconds: number
}

const PROOF_ORDER: ProofName[] = ['did', 'vc', 'ucan']

export class InvocationVerifier {
  readonly #c: InvocationVerifierComponents
  readonly #meshDid: string
  readonly #skew: number

  constructor(components: InvocationVerifierComponents, init: InvocationVerifierInit) {
    this.#c = components
    this.#meshDid = init.meshDid
    this.#skew = init.maxSkewSeconds
  }

  /** See `Authority.verifyAuthority`; `now` and `audience` already defaulted. */
  async verify(
    request: AuthorityRequest,
    context: AuthorityContext & { now: number; audience: string },
  ): Promise<AuthorityVerdict> {
    const { chains, replay } = this.#c
    const { now, audience } = context
    if (typeof request !== 'object' || request === null || typeof request.can !== 'string') {
      return { error: ucanFailure('MESH_BAD_REQUEST', 'an authority request names a capability', {}) }
    }
    const foreign = context.foreign === true
    if (foreign && (resourceOwner(String(request.with)) !== audience || audience === this.#meshDid)) {
      return {
        error: ucanFailure(
          'MESH_BAD_REQUEST',
          'a foreign act is on a resource of the mesh it is addressed to',
          {
            reason: 'foreign',
            with: request.with,
            audience,
          },
        ),
      }
    }
    const decoded = chains.decode(request.ucan)
    if (decoded.error !== undefined) return { error: decoded.error }
    const invocation = decoded.ok.invocation
    if (replay.claim(invocation.cid, 0)) {
      replay.release(invocation.cid)
    } else {
      return { error: replayFailure(invocation.cid) }
    }

    // What needs neither a signature nor the network comes first: audience, time, the
    // capability claimed. A request failing it resolves no did:web and checks no credential.
    const claim = chains.claim(decoded.ok, request, { audience, now })
    if (claim.error !== undefined) {
      return {
        error: {
          ...claim.error,
          failed: [{ proof: claim.error.proof, code: claim.error.code, message: claim.error.message }],
        },
      }
    }

    const failures: AuthorityFailure[] = []
    // A did:web invoker is resolved (fetched) only once its chain holds; a did:key is local.
    const webInvoker = !isDidKey(invocation.issuer)
    // 1. DID: who you are.
    const did = webInvoker ? undefined : await chains.checkInvoker(invocation)
    if (did !== undefined) failures.push(did)
    // 2. VC: who vouches for you (what needs a did:web fetched waits in `later`).
    const presented: VerifiedCredential[] = []
    const later: LaterCredentials = { credentials: [] }
    const vc = await this.#c.presented.check(request, invocation.issuer, now, presented, later)
    if (vc !== undefined) failures.push(vc)
    // 3. UCAN: what you may do, under this mesh's rules.
    let human: string | undefined
    const authorize = () =>
      chains.authorize(
        decoded.ok,
        request,
        {
          audience,
          now,
          accept: async (path) => {
            const verdict = foreign
              ? await this.#c.rules.foreign(path, presented, now)
              : await this.#c.rules.local(path, presented, now)
            if (verdict.error !== undefined) return verdict.error
            human = verdict.human
            return undefined
          },
        },
        claim.ok,
      )
    let chain = await authorize()
    // The credentials left for later are checked once the chain holds, or lacks only the
    // human they may show: a chain this mesh granted, not any request naming a host.
    if (
      vc === undefined &&
      (later.presentation !== undefined || later.credentials.length > 0) &&
      (chain.error === undefined || chain.error.code === 'MESH_NOT_HUMAN_SIGNED')
    ) {
      const late = await this.#c.presented.checkLater(later, invocation.issuer, now, presented)
      if (late !== undefined) failures.push(late)
      else if (chain.error !== undefined) chain = await authorize()
    }
    if (chain.error !== undefined) failures.push(chain.error)
    if (webInvoker && failures.length === 0) {
      const web = await chains.checkInvoker(invocation)
      if (web !== undefined) failures.push(web)
    }

    if (failures.length > 0) {
      failures.sort((a, b) => PROOF_ORDER.indexOf(a.proof) - PROOF_ORDER.indexOf(b.proof))
      const first = failures[0] as AuthorityFailure
      const accountable = this.#c.charges.accountable(invocation, failures, webInvoker, now)
      return {
        error: {
          ...first,
          failed: failures.map((f) => ({ proof: f.proof, code: f.code, message: f.message })),
          ...(accountable === undefined ? {} : { accountable }),
        },
      }
    }
    const path = (chain as { ok: ChainPath }).ok

    const forgetAt = this.#forgetAt(invocation.expiration)
    if (!replay.claim(invocation.cid, forgetAt)) return { error: replayFailure(invocation.cid) }
    const commitOperations = replay.operations(invocation.cid, forgetAt)
    if (context.deferCommit !== true) {
      try {
        await this.#c.store.batch(commitOperations)
      } catch (err) {
        replay.release(invocation.cid)
        throw err
      }
    }
    return {
      ok: {
        issuer: invocation.issuer,
        audience: invocation.audience,
        capability: path.capability,
        chain: path.links.map((l) => l.cid),
        issuers: path.links.map((l) => l.issuer),
        tier: this.#c.tierOf(invocation.issuer),
        humanInChain: human,
        invocation: invocation.cid,
        credentials: presented,
        commitOperations: context.deferCommit === true ? commitOperations : [],
      },
    }
  }

  // Kept past exp by two skews and a margin: after that the time check refuses it anyway.
  #forgetAt(exp: number): number {
    return exp * 1000 + 2 * this.#skew * 1000 + 60_000
  }
}

function replayFailure(cid: string): AuthorityFailure {
  return ucanFailure('MESH_REPLAY', 'this invocation was already used', { reason: 'replay', cid })
}
