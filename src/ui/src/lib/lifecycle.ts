import type {
  ConnectionView,
  FederationPolicy,
  IssuedDelegationView,
  PolicyPatch,
  RevocationView,
} from '../../../api/index.ts'

/**
 * The console's data helpers for issue 13 (SPEC §9): paused links, delegations and their
 * revocation, and the history limit of the federation policy. Plain functions, tested on
 * Node (test/ui/lifecycle-data.test.ts).
 */

// ---- paused links ----

/** Whether a human may pause this connection (an accepted one that runs; `degraded` is accepted). */
export function canPause(c: Pick<ConnectionView, 'status'>): boolean {
  return c.status === 'accepted' || c.status === 'degraded'
}

/** Whether a human may resume it. */
export function canResume(c: Pick<ConnectionView, 'status'>): boolean {
  return c.status === 'paused'
}

/** Whether the Disconnect button is offered (a paused link is still an accepted one). */
export function canDisconnect(c: Pick<ConnectionView, 'status'>): boolean {
  return canPause(c) || canResume(c)
}

// ---- history limit (`backfillLimit`) ----

/** The three choices the form offers: all history, the last N entries, only new messages. */
export type BackfillChoice = 'all' | 'last' | 'none'

/** The choice a stored `backfillLimit` stands for (`null`: all; `0`: only new). */
export function backfillChoiceOf(limit: number | null | undefined): BackfillChoice {
  if (limit === null || limit === undefined) return 'all'
  return limit === 0 ? 'none' : 'last'
}

/** The `backfillLimit` a choice stores; `count` only counts for `last` (at least 1). */
export function backfillLimitOf(choice: BackfillChoice, count: number): number | null {
  if (choice === 'all') return null
  if (choice === 'none') return 0
  return Number.isInteger(count) && count >= 1 ? count : 1
}

/** How the policy's history limit reads in one line. */
export function backfillText(limit: number | null | undefined): string {
  const choice = backfillChoiceOf(limit)
  if (choice === 'all') return 'all history'
  if (choice === 'none') return 'only messages written after the share'
  return `the last ${limit} ${limit === 1 ? 'entry' : 'entries'} of history`
}

// ---- PATCH of the policy: only the changed fields ----

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i])
  return a === b
}

/** The fields of `draft` that differ from `stored` (a list that changed is sent whole). */
export function policyPatchOf(stored: FederationPolicy, draft: FederationPolicy): PolicyPatch {
  const patch: Record<string, unknown> = {}
  for (const key of Object.keys(draft) as (keyof FederationPolicy)[]) {
    if (!sameValue(stored[key], draft[key])) patch[key] = draft[key]
  }
  return patch as PolicyPatch
}

// ---- delegations and revocations ----

/** A CIDv1 in base32 (what `mesh delegate` prints and the list shows). */
export const CID_TEXT = /^b[a-z2-7]{20,120}$/

export type DelegationState = 'live' | 'expired' | 'revoked'

/** A delegation's state at `nowSeconds`: revoked wins over expired. */
export function delegationState(
  d: Pick<IssuedDelegationView, 'revoked' | 'exp'>,
  nowSeconds = Math.floor(Date.now() / 1000),
): DelegationState {
  if (d.revoked !== null) return 'revoked'
  if (d.exp !== null && d.exp <= nowSeconds) return 'expired'
  return 'live'
}

/** Whether the console offers Revoke: only for a delegation not yet revoked (an expired one may still be revoked). */
export function canRevoke(d: Pick<IssuedDelegationView, 'revoked' | 'cid'>): boolean {
  return d.revoked === null && CID_TEXT.test(d.cid)
}

/** `room/share on did:key:…/rooms/x, …` */
export function capabilitiesText(d: Pick<IssuedDelegationView, 'capabilities'>): string {
  return d.capabilities.map((c) => `${c.can} on ${c.with}`).join(', ')
}

/** Who holds a revocation: this mesh (its own) or the peer mesh that sent it. */
export function revocationOrigin(r: Pick<RevocationView, 'mesh'>, selfDid: string): 'own' | 'peer' {
  return r.mesh === undefined || r.mesh === selfDid ? 'own' : 'peer'
}

/** Revocations newest first, own before peers' at the same instant. */
export function sortRevocations<R extends Pick<RevocationView, 'at' | 'mesh'>>(
  list: R[],
  selfDid: string,
): R[] {
  return [...list].sort(
    (a, b) =>
      b.at.localeCompare(a.at) ||
      Number(revocationOrigin(a, selfDid) === 'peer') - Number(revocationOrigin(b, selfDid) === 'peer'),
  )
}

/** When a delegation expires, read from now: `never`, `in 23 h`, `expired 5 min ago`. */
export function expiryText(exp: number | null, nowSeconds = Math.floor(Date.now() / 1000)): string {
  if (exp === null) return 'never'
  const span = (s: number) =>
    s < 60
      ? `${s} s`
      : s < 3600
        ? `${Math.floor(s / 60)} min`
        : s < 86400
          ? `${Math.floor(s / 3600)} h`
          : `${Math.floor(s / 86400)} d`
  return exp > nowSeconds ? `in ${span(exp - nowSeconds)}` : `expired ${span(nowSeconds - exp)} ago`
}
