import type { AuditLog } from '../../audit/index.ts'
import { BadRequestError } from '../../errors.ts'
import type { StoreOperation } from '../../store/index.ts'
import type { Revocation, RevocationStore } from './revocations.ts'
import { type AuthorityOk, type AuthorityRequest, type AuthorityVerdict, toMeshError } from './verdict.ts'

/**
 * What the caller adds to a verified revocation before it is written (revocation that
 * travels, SPEC §9): its own checks (throw to refuse: the act is released), fields
 * (the mesh, the signed notice) and operations for the same batch.
 */
export type CompleteRevocation = (
  revocation: Revocation,
  ok: AuthorityOk,
) => Promise<{ revocation: Revocation; operations: StoreOperation[] }>

export interface RevokeComponents {
  audit: Pick<AuditLog, 'append'>
  revocations: Pick<RevocationStore, 'operations' | 'applied'>
  /** The authority's check of the `ucan/revoke` invocation, its commit deferred. */
  verify: (
    request: AuthorityRequest,
    context: { deferCommit: true; now?: number },
  ) => Promise<AuthorityVerdict>
  /** Takes back a deferred verdict whose act was not carried out. */
  release: (ok: AuthorityOk) => void
  meshDid: string
  now: () => number
}

/** What a revocation is checked with (`revokeDelegation`, `Authority.revoke`). */
export interface RevokeOptions {
  credentials?: string[]
  presentation?: string
  now?: number
  /** revocation that travels (SPEC §9): the caller's checks and additions, in the same batch */
  complete?: CompleteRevocation
}

/**
 * Revokes a delegation: `token` is a `ucan/revoke` invocation on this mesh with
 * `nb.ucan` the delegation's CID (and optionally `nb.reason`). Recorded with an
 * audit row, and the invocation spent, in one batch. Throws a MeshError
 * (details.proof names the failed proof).
 */
export async function revokeDelegation(
  components: RevokeComponents,
  token: string,
  options: RevokeOptions = {},
): Promise<Revocation> {
  const verdict = await components.verify(
    {
      ucan: token,
      can: 'ucan/revoke',
      with: components.meshDid,
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      ...(options.presentation === undefined ? {} : { presentation: options.presentation }),
    },
    { deferCommit: true, ...(options.now === undefined ? {} : { now: options.now }) },
  )
  if (verdict.error !== undefined) throw toMeshError(verdict.error)
  const target = verdict.ok.capability.nb.ucan
  if (target == null) {
    components.release(verdict.ok)
    throw new BadRequestError('a ucan/revoke invocation names the delegation (nb.ucan)')
  }
  let revocation: Revocation = {
    cid: String(target),
    by: verdict.ok.issuer,
    reason: typeof verdict.ok.capability.nb.reason === 'string' ? verdict.ok.capability.nb.reason : '',
    at: new Date(options.now ?? components.now()).toISOString(),
    invocation: verdict.ok.invocation,
  }
  let extra: StoreOperation[] = []
  try {
    if (options.complete !== undefined) {
      const completed = await options.complete(revocation, verdict.ok)
      revocation = completed.revocation
      extra = completed.operations
    }
    await components.audit.append(
      {
        action: 'ucan.revoked',
        actor: revocation.by,
        subject: revocation.cid,
        details: {
          reason: revocation.reason,
          invocation: revocation.invocation,
          ...(revocation.notice === undefined ? {} : { announced: true }),
        },
      },
      {
        with: [...components.revocations.operations([revocation]), ...verdict.ok.commitOperations, ...extra],
      },
    )
  } catch (err) {
    components.release(verdict.ok)
    throw err
  }
  components.revocations.applied([revocation])
  return revocation
}
