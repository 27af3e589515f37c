import { ForbiddenError, MeshError } from '../../errors.ts'
import type { StoreOperation } from '../../store/index.ts'
import type { Authority, AuthorityOk } from '../authority/index.ts'
import { CAPABILITIES, jwtIssuerOf, toMeshError } from '../authority/index.ts'

/**
 * The gate every human act passes before this node carries it out, or believes that a
 * peer mesh carried it out (SPEC §4: cross-mesh actions need a chain in which a human
 * signed). Every act is a UCAN chain: a ucanto invocation, base64url CAR (`encodeToken`),
 * with its proofs back to the acting mesh's root delegation to its architect. Verified
 * by the Authority — time ±60 s, replay (also after a restart), depth, revocation,
 * narrowing, tiers, and a human in the chain. Locally the chain is rooted in this
 * mesh's key; a forwarded act (`peer`) is rooted in the *sending* mesh's key, with the
 * sending mesh's membership credentials (forwarded after the token) showing its human.
 * Anything else (e.g. the interim signed acts of before the Authority, now removed) is
 * MESH_UCAN_INVALID.
 *
 * Like the verifiers behind it, the gate claims an act when it verifies it: the caller
 * writes `act.operations` in the batch of the act's effect, or `release`s it.
 */
export interface GateAct {
  /** Always a UCAN chain (the interim format is gone). */
  format: 'ucan'
  /** The invoker: the human, or the principal a human delegated to. */
  issuer: string
  /** The human in the chain. */
  human: string | undefined
  /** Every issuer along the chain, invoker first. */
  issuers: string[]
  /** The spend of the act: commit these with its effect. */
  operations: StoreOperation[]
  /** What a peer needs to check it: the token, then the credentials of its humans. */
  forward: string[]
  /** @internal */
  verdict?: AuthorityOk
}

/** What the gate needs of the Authority (a getter: a key rotation replaces it). */
export type ActAuthority = Pick<
  Authority,
  'meshDid' | 'chains' | 'verifyAuthority' | 'release' | 'heldCredentials'
>

export interface ActGateInit {
  authority: () => ActAuthority
}

/** What `peerHumanAct` holds a peer's verified chain against. */
export interface PeerHumanActCheck {
  /** Whether `did` is a mesh key (the sender's, this mesh's, another known mesh's): never a human. */
  isMeshKey: (did: string) => boolean | Promise<boolean>
  /** The architect the sending mesh declared, whom the chain must pass through; null: no such check. */
  architect: string | null
}

/** What a token says before it is verified (to pick the audience and subject it is checked against). */
export interface ActPeek {
  format: 'ucan'
  issuer: string
  audience: string
  /** The claimed capability's caveats. */
  nb: Record<string, unknown>
}

const MAX_FORWARDED_CREDENTIALS = 4

export class ActGate {
  readonly #init: ActGateInit

  constructor(init: ActGateInit) {
    this.#init = init
  }

  /** Decodes a token without verifying it; MESH_UCAN_INVALID when it is not a UCAN. */
  peek(token: string): ActPeek {
    const decoded = this.#init.authority().chains.decode(token)
    if (decoded.error !== undefined) throw toMeshError(decoded.error)
    const { invocation } = decoded.ok
    const capability = invocation.view.capabilities[0] as { nb?: Record<string, unknown> } | undefined
    return {
      format: 'ucan',
      issuer: invocation.issuer,
      audience: invocation.audience,
      nb: capability?.nb ?? {},
    }
  }

  /**
   * A local act, from the HTTP API: `act` on `resource` (default `audience`, this mesh),
   * with `subject` in the ability's subject caveat (mesh/connect: the peer did,
   * connection/*: the connection id). Throws the refusal as a MeshError.
   */
  async local(
    token: string,
    expect: { audience: string; act: string; subject?: string; resource?: string },
  ): Promise<GateAct> {
    const authority = this.#init.authority()
    const verdict = await authority.verifyAuthority(
      {
        ucan: token,
        can: expect.act,
        with: expect.resource ?? expect.audience,
        ...subjectCaveat(expect.act, expect.subject),
      },
      { audience: expect.audience, deferCommit: true },
    )
    if (verdict.error !== undefined) throw toMeshError(verdict.error)
    const credentials: string[] = []
    for (const did of verdict.ok.issuers) {
      if (did === authority.meshDid) continue
      for (const jwt of authority.heldCredentials(did)) {
        if (jwtIssuerOf(jwt) === authority.meshDid) credentials.push(jwt)
      }
    }
    return chainAct(verdict.ok, [token, ...credentials.slice(0, MAX_FORWARDED_CREDENTIALS)])
  }

  /**
   * An act a peer mesh forwarded (`proofs` = envelope.auth.proofs: the token, then
   * credentials), judged at `now` (when the peer carried it out): a chain rooted in the
   * key `audience` of the peer, with a human that mesh vouches for. The caller checks who
   * the signers are not (mesh keys). Throws the refusal as a MeshError.
   */
  async peer(
    proofs: string[],
    expect: {
      audience: string
      act: string
      subject: string
      /** The resource acted on, owned by `audience`; default `audience` (the whole mesh). */
      resource?: string
      now: number
    },
  ): Promise<GateAct> {
    const token = proofs[0]
    if (token === undefined) {
      throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the message carries no human act', { act: expect.act })
    }
    const verdict = await this.#init.authority().verifyAuthority(
      {
        ucan: token,
        can: expect.act,
        with: expect.resource ?? expect.audience,
        ...subjectCaveat(expect.act, expect.subject),
        credentials: proofs.slice(1, 1 + MAX_FORWARDED_CREDENTIALS),
      },
      { audience: expect.audience, now: expect.now, deferCommit: true, foreign: true },
    )
    if (verdict.error !== undefined) throw toMeshError(verdict.error)
    return chainAct(verdict.ok, proofs)
  }

  /** Takes back an act that was not carried out. */
  async release(act: GateAct): Promise<void> {
    if (act.verdict !== undefined) this.#init.authority().release(act.verdict)
  }

  /**
   * Runs `fn`, the effect of a claimed `act`; when it fails the act is released (so
   * that the same token can be sent again) and the failure rethrown.
   */
  async withAct<T>(act: GateAct, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      await this.release(act)
      throw err
    }
  }

  /**
   * The checks on a peer's forwarded chain that only its verdict can answer (SPEC §4),
   * after `peer()` verified it: the human in the chain is no mesh key, and the chain
   * passes through `check.architect` (null: not asked, e.g. a DM share, where the
   * human is the DM's owner). Releases the act when refused.
   */
  async peerHumanAct(act: GateAct, check: PeerHumanActCheck): Promise<GateAct> {
    return this.withAct(act, async () => {
      if (act.human === undefined || (await check.isMeshKey(act.human))) {
        throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the human in the chain is a mesh key', {
          human: act.human ?? null,
        })
      }
      if (check.architect !== null && !act.issuers.includes(check.architect)) {
        throw new ForbiddenError('the chain does not pass through the architect the peer declared', {
          architectDid: check.architect,
          issuers: act.issuers,
        })
      }
      return act
    })
  }
}

/** A verified chain as a GateAct; `forward` is what a peer needs to check it. */
function chainAct(ok: AuthorityOk, forward: string[]): GateAct {
  return {
    format: 'ucan',
    issuer: ok.issuer,
    human: ok.humanInChain,
    issuers: ok.issuers,
    operations: ok.commitOperations,
    forward,
    verdict: ok,
  }
}

/** The subject an act's token claims (its subject caveat). */
export function claimedSubject(peek: ActPeek, act: string): unknown {
  const name = CAPABILITIES[act]?.subject
  return name === undefined ? undefined : peek.nb[name]
}

function subjectCaveat(act: string, subject: string | undefined): { nb?: Record<string, unknown> } {
  const name = CAPABILITIES[act]?.subject
  return name === undefined || subject === undefined ? {} : { nb: { [name]: subject } }
}
