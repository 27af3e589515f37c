import type { AuditLog } from '../audit/index.ts'
import type { Authority, AuthorityOk } from '../auth/authority/index.ts'
import { agentResourceOf, toMeshError } from '../auth/authority/index.ts'
import { MeshError, NotFoundError } from '../errors.ts'
import { Ed25519KeyPair } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { AgentCard } from '../manifest/index.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'
import { agentCard, type LocalAgent } from './agent.ts'

export interface AgentServiceInit {
  store: MeshStore
  audit: Pick<AuditLog, 'append'>
  /** A getter: a key rotation replaces the authority (and the mesh did agents live under). */
  authority: () => Pick<
    Authority,
    'meshDid' | 'chains' | 'verifyAuthority' | 'release' | 'trust' | 'enrollMember'
  >
  agents: LocalAgent[]
  /** Where foreign principals invoke (`POST /api/invoke`), for the cards' `url`. */
  invokeUrl?: () => string | undefined
  /** Makes an agent a local principal (e.g. so that it can be added to rooms). */
  enroll?: (agent: { did: string; id: string; name: string }) => Promise<void>
  /**
   * Reputation hook: every accepted invocation, and every refusal the authority charges
   * to its invoker (`AuthorityError.accountable`).
   */
  onInteraction?: (did: string, outcome: 'accepted' | 'refused', reason: string) => void
  /** A skill's run is aborted after this long; default 10 000 ms. */
  timeoutMs?: number
  logger?: Logger
}

/** `POST /api/invoke`'s answer. */
export interface InvokeResult {
  agent: string
  ability: string
  invoker: string
  /** CID of the (now spent) invocation. */
  invocation: string
  /** The invoker's tier here, and the human in its chain. */
  tier: number
  human: string | null
  result: unknown
}

export interface InvokeRequest {
  ucan: string
  credentials?: string[]
  presentation?: string
}

/**
 * This mesh's agents: their keys (kept in the store, sublevel `agents`), their A2A
 * cards for the manifest, and `invoke` — an `agent/invoke` invocation of
 * `<mesh did>/agents/<id>` with `nb.ability` one of the agent's skills, verified by the
 * authority (three proofs, tiers: agent/invoke needs tier ≤ 3, a human in the chain),
 * then run; the invocation is spent in the same batch as its audit row.
 */
export class AgentService {
  readonly #init: AgentServiceInit
  readonly #keys: Sublevel<string>
  readonly #log: Logger
  readonly #dids = new Map<string, string>()

  constructor(init: AgentServiceInit) {
    this.#init = init
    this.#keys = init.store.sublevel<string>('agents')
    this.#log = (init.logger ?? silentLogger()).child({ area: 'agents' })
  }

  /** Loads (or creates) each agent's key and enrols it as a tier 3 agent of this mesh. */
  async start(): Promise<void> {
    const authority = this.#init.authority()
    for (const agent of this.#init.agents) {
      let seed = await this.#keys.get(`1/key/${agent.id}`)
      if (seed === undefined) {
        seed = Buffer.from(Ed25519KeyPair.generate().seed).toString('base64url')
        await this.#keys.put(`1/key/${agent.id}`, seed)
      }
      const did = new Ed25519KeyPair(Buffer.from(seed, 'base64url')).did
      this.#dids.set(agent.id, did)
      const record = authority.trust.get(did)
      if (record?.local !== true || record.kind !== 'agent') {
        await authority.enrollMember(did, { kind: 'agent', role: 'agent', tier: 3 })
      }
      await this.#init.enroll?.({ did, id: agent.id, name: agent.name })
    }
  }

  /** The did of agent `id`. */
  didOf(id: string): string | undefined {
    return this.#dids.get(id)
  }

  /** The A2A cards of this mesh's agents, for the manifest. */
  cards(): AgentCard[] {
    const url = this.#init.invokeUrl?.()
    return this.#init.agents.map((a) => ({
      ...agentCard(a, this.#dids.get(a.id) as string, url),
      resource: agentResourceOf(this.#init.authority().meshDid, a.id),
    }))
  }

  /** Verifies and runs an `agent/invoke`; throws the refusal as a MeshError (details.proof names the proof). */
  async invoke(request: InvokeRequest, options: { signal?: AbortSignal } = {}): Promise<InvokeResult> {
    const authority = this.#init.authority()
    const decoded = authority.chains.decode(request.ucan)
    if (decoded.error !== undefined) throw toMeshError(decoded.error)
    const capability = decoded.ok.invocation.view.capabilities[0] as
      | { can: string; with: string; nb?: { ability?: unknown; input?: unknown } }
      | undefined
    if (capability?.can !== 'agent/invoke') {
      throw new MeshError('MESH_UCAN_INVALID', 'POST /api/invoke takes an agent/invoke invocation', {
        proof: 'ucan',
        reason: 'capability',
        can: capability?.can ?? null,
      })
    }
    const prefix = `${authority.meshDid}/agents/`
    const agentId = capability.with.startsWith(prefix) ? capability.with.slice(prefix.length) : undefined
    const agent = this.#init.agents.find((a) => a.id === agentId)
    if (agent === undefined) {
      throw new NotFoundError('no such agent on this mesh', { resource: capability.with })
    }
    const ability = capability.nb?.ability
    const skill = agent.skills.find((s) => s.id === ability)
    if (skill === undefined) {
      throw new NotFoundError(`agent ${agent.id} has no such skill`, {
        ability: typeof ability === 'string' ? ability : null,
        skills: agent.skills.map((s) => s.id),
      })
    }
    const verdict = await authority.verifyAuthority(
      {
        ucan: request.ucan,
        can: 'agent/invoke',
        with: capability.with,
        nb: { ability: skill.id },
        ...(request.credentials !== undefined ? { credentials: request.credentials } : {}),
        ...(request.presentation !== undefined ? { presentation: request.presentation } : {}),
      },
      { deferCommit: true },
    )
    if (verdict.error !== undefined) {
      // Charged only to an invoker this request proves (never a proof's issuer).
      if (verdict.error.accountable !== undefined) {
        this.#init.onInteraction?.(verdict.error.accountable, 'refused', `agent/invoke ${verdict.error.code}`)
      }
      throw toMeshError(verdict.error)
    }
    const ok = verdict.ok
    let result: unknown
    try {
      result = await this.#run(skill, capability.nb?.input, ok, agent, options.signal)
      await this.#init.audit.append(
        {
          action: 'agent.invoked',
          actor: ok.issuer,
          subject: `${capability.with}#${skill.id}`,
          details: {
            invocation: ok.invocation,
            tier: ok.tier,
            human: ok.humanInChain ?? null,
            chain: ok.chain.slice(0, 16),
          },
        },
        { with: ok.commitOperations },
      )
    } catch (err) {
      authority.release(ok)
      throw err
    }
    this.#init.onInteraction?.(ok.issuer, 'accepted', 'agent/invoke')
    this.#log.info(
      { event: 'agents.invoked', agent: agent.id, ability: skill.id, invoker: ok.issuer, tier: ok.tier },
      'agent invoked',
    )
    return {
      agent: agent.id,
      ability: skill.id,
      invoker: ok.issuer,
      invocation: ok.invocation,
      tier: ok.tier,
      human: ok.humanInChain ?? null,
      result,
    }
  }

  async #run(
    skill: LocalAgent['skills'][number],
    input: unknown,
    ok: AuthorityOk,
    agent: LocalAgent,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.#init.timeoutMs ?? 10_000)
    const combined = signal === undefined ? timeout : AbortSignal.any([timeout, signal])
    const run = skill.run(input, {
      invoker: ok.issuer,
      tier: ok.tier,
      agentDid: this.#dids.get(agent.id) as string,
      signal: combined,
    })
    const aborted = new Promise<never>((_, reject) => {
      combined.addEventListener(
        'abort',
        () => reject(new MeshError('MESH_UNAVAILABLE', `agent ${agent.id} did not answer in time`)),
        { once: true },
      )
    })
    return Promise.race([run, aborted])
  }
}
