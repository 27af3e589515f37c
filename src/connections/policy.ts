import {
  POLICY_LIMITS,
  POLICY_MODES,
  policyPatchSchema,
  policyPutSchema,
  policySchema,
} from '../api/schemas/policy.ts'
import { BadRequestError, type MeshError, PeerUnknownError, PolicyRejectedError } from '../errors.ts'
import { isDidKey } from '../identity/index.ts'
import { lazyValidator } from '../schema.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'

/**
 * The federation policy (SPEC §3, `GET|PUT /api/federation/policy`):
 *
 * - `mode`: `open` (any mesh may ask to connect), `allowlist` (only meshes in
 *   `allow`), `closed` (no new connections, no federation traffic).
 * - `deny`: meshes always refused, whatever the mode.
 * - `autoAccept`: accept connection requests that pass the policy without waiting
 *   for the architect.
 * - `maxForeignParticipantsPerRoom`, `maxBackfillEventsPerRequest`: bounds the rooms
 *   and sync code enforce (the latter is the catch-up's chunk size).
 * - `backfillLimit`: how many messages of history a newly sharing peer gets (SPEC §9):
 *   `0` only what is written after the share, `null` all of it (the default, also for
 *   a stored policy from before the field existed).
 */
export { POLICY_LIMITS, POLICY_MODES, policyPatchSchema, policyPutSchema, policySchema }
export type PolicyMode = (typeof POLICY_MODES)[number]

export interface FederationPolicy {
  mode: PolicyMode
  allow: string[]
  deny: string[]
  autoAccept: boolean
  maxForeignParticipantsPerRoom: number
  maxBackfillEventsPerRequest: number
  backfillLimit: number | null
  // room lifecycle (SPEC §9): a share from a peer is accepted at once (else a human answers it)
  autoAcceptRooms: boolean
}

/** Some fields of a policy (`PATCH`): only those change. */
export type PolicyPatch = Partial<FederationPolicy>

export const DEFAULT_POLICY: Readonly<FederationPolicy> = Object.freeze({
  mode: 'open',
  allow: [],
  deny: [],
  autoAccept: false,
  maxForeignParticipantsPerRoom: 50,
  maxBackfillEventsPerRequest: 1000,
  backfillLimit: null,
  autoAcceptRooms: false,
})

// The policy's shape is the contract's (src/api): the PUT route and `validatePolicy`
// refuse exactly the same inputs.
const validateShape = lazyValidator<Omit<FederationPolicy, 'backfillLimit'> & PolicyPatch>(policyPutSchema)
const validatePatchShape = lazyValidator<PolicyPatch>(policyPatchSchema)

/**
 * Checks a policy (schema, and that every did is an Ed25519 did:key); MESH_BAD_REQUEST
 * otherwise. A policy without `backfillLimit` gets the default (null).
 */
export function validatePolicy(value: unknown): FederationPolicy {
  if (!validateShape(value)) shapeError(validateShape.errors?.[0])
  for (const list of ['allow', 'deny'] as const) {
    const bad = value[list].find((did) => !isDidKey(did))
    if (bad !== undefined)
      throw new BadRequestError(`policy ${list} holds a did that is not an Ed25519 did:key`, { did: bad })
  }
  return copy({ ...value, backfillLimit: value.backfillLimit ?? null })
}

/** Checks the fields of a `PATCH` (unknown fields refused); MESH_BAD_REQUEST otherwise. */
export function validatePolicyPatch(value: unknown): PolicyPatch {
  if (!validatePatchShape(value)) shapeError(validatePatchShape.errors?.[0])
  return value
}

function shapeError(first: { instancePath?: string; message?: string } | undefined): never {
  throw new BadRequestError(`invalid policy: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim(), {
    validation: first,
  })
}

export type PolicyDecision = { ok: true; autoAccept: boolean } | { ok: false; error: MeshError }

export interface PolicyChange {
  previous: FederationPolicy
  policy: FederationPolicy
  /** Who changed it (a session did). */
  actor: string
}

interface StoredPolicy {
  policy: FederationPolicy
  updatedAt: number
  updatedBy: string
}

const POLICY_KEY = 'policy/1/current'

export interface PolicyServiceInit {
  store: MeshStore
}

/**
 * The persisted policy, cached in memory: `evaluate` runs for every request and
 * message from a peer. Writes are serialized so that `previous` in a change is exact.
 */
export class PolicyService {
  readonly #store: MeshStore
  readonly #sub: Sublevel<StoredPolicy>
  #current: Promise<Compiled> | undefined
  #writing: Promise<unknown> = Promise.resolve()

  constructor(init: PolicyServiceInit) {
    this.#store = init.store
    this.#sub = init.store.sublevel<StoredPolicy>('policy')
  }

  async get(): Promise<FederationPolicy> {
    return copy((await this.#compiled()).policy)
  }

  /**
   * Validates and stores a whole policy; `operations` (e.g. an audit entry) are
   * written in the same atomic batch. Returns the change.
   */
  async put(
    // room lifecycle: autoAcceptRooms may be left out (it keeps its default)
    policy: Omit<FederationPolicy, 'autoAcceptRooms'> & { autoAcceptRooms?: boolean },
    options: { actor: string; operations?: StoreOperation[] },
  ): Promise<PolicyChange> {
    const next = validatePolicy(policy)
    return this.#write(() => next, options)
  }

  /**
   * Changes only the fields `patch` names (a list replaces the whole list), against the
   * policy as it is when the write runs; the result is checked whole.
   */
  async patch(
    patch: PolicyPatch,
    options: { actor: string; operations?: StoreOperation[] },
  ): Promise<PolicyChange> {
    const fields = validatePolicyPatch(patch)
    return this.#write((previous) => validatePolicy({ ...previous, ...fields }), options)
  }

  #write(
    make: (previous: FederationPolicy) => FederationPolicy,
    options: { actor: string; operations?: StoreOperation[] },
  ): Promise<PolicyChange> {
    const run = this.#writing.then(async () => {
      const previous = (await this.#compiled()).policy
      const next = make(copy(previous))
      await this.#store.batch([
        ...(options.operations ?? []),
        {
          type: 'put',
          sublevel: this.#sub,
          key: POLICY_KEY,
          value: { policy: next, updatedAt: Date.now(), updatedBy: options.actor },
        } as StoreOperation,
      ])
      this.#current = Promise.resolve(compile(next))
      return { previous: copy(previous), policy: copy(next), actor: options.actor }
    })
    // The chain only orders writes; each caller gets its own result or error.
    this.#writing = run.catch(() => {})
    return run
  }

  /**
   * Whether a peer mesh may federate with this one: denied → MESH_POLICY_REJECTED;
   * mode closed → MESH_POLICY_REJECTED; allowlist without the peer → MESH_PEER_UNKNOWN.
   * Otherwise `{ok: true, autoAccept}`.
   */
  async evaluate(peerDid: string): Promise<PolicyDecision> {
    const { policy, allow, deny } = await this.#compiled()
    if (deny.has(peerDid)) {
      return {
        ok: false,
        error: new PolicyRejectedError('this mesh is on the deny list', { peer: peerDid, reason: 'denied' }),
      }
    }
    if (policy.mode === 'closed') {
      return {
        ok: false,
        error: new PolicyRejectedError('federation is closed', { peer: peerDid, reason: 'closed' }),
      }
    }
    if (policy.mode === 'allowlist' && !allow.has(peerDid)) {
      return {
        ok: false,
        error: new PeerUnknownError('this mesh is not on the allow list', {
          peer: peerDid,
          reason: 'not-allowed',
        }),
      }
    }
    return { ok: true, autoAccept: policy.autoAccept }
  }

  #compiled(): Promise<Compiled> {
    if (this.#current === undefined) {
      const loading = this.#sub
        .get(POLICY_KEY)
        // A policy stored before a field existed gets that field's default.
        .then((stored) => compile(copy({ ...DEFAULT_POLICY, ...stored?.policy })))
      // A failed read is reported to this caller and retried by the next one.
      loading.catch(() => {
        if (this.#current === loading) this.#current = undefined
      })
      this.#current = loading
    }
    return this.#current
  }
}

interface Compiled {
  policy: FederationPolicy
  allow: Set<string>
  deny: Set<string>
}

function compile(policy: FederationPolicy): Compiled {
  return { policy, allow: new Set(policy.allow), deny: new Set(policy.deny) }
}

function copy(p: Readonly<FederationPolicy>): FederationPolicy {
  return {
    mode: p.mode,
    allow: [...p.allow],
    deny: [...p.deny],
    autoAccept: p.autoAccept,
    maxForeignParticipantsPerRoom: p.maxForeignParticipantsPerRoom,
    maxBackfillEventsPerRequest: p.maxBackfillEventsPerRequest,
    backfillLimit: p.backfillLimit ?? null,
    // room lifecycle: a policy stored (or PUT) without it keeps the default
    autoAcceptRooms: p.autoAcceptRooms ?? DEFAULT_POLICY.autoAcceptRooms,
  }
}
