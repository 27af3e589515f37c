/**
 * What else a verified chain grants: after the authority accepted an invocation along
 * one path (`AuthorityOk.chain`), whether the same path — same links, same issuers, so
 * the same tiers and the same human — also derives another ability on the same
 * resource, by ucanto's own `derives` rules link by link. Used by capability sessions
 * (a chain granting `room/read` and `room/post` opens one session for both), and for
 * the path's expiry (the earliest `exp` of its delegations).
 */

import type * as API from '@ucanto/interface'
import { CAPABILITIES } from './capabilities.ts'
import { decodeToken, linkString, viewOf } from './token.ts'

/** The delegations of a path, by CID: those embedded in `ucan`, and linked ones known here (`extra`). */
export function pathViews(ucan: string, extra: (string | undefined)[] = []): Map<string, API.Delegation> {
  const views = new Map<string, API.Delegation>()
  const walk = (view: API.Delegation) => {
    const cid = linkString(view.cid)
    if (views.has(cid)) return
    views.set(cid, view)
    for (const proof of view.proofs) if (!isLink(proof)) walk(proof as API.Delegation)
  }
  for (const token of [ucan, ...extra]) {
    if (token === undefined) continue
    const decoded = decodeToken(token)
    if (decoded.ok !== undefined) walk(viewOf(decoded.ok))
  }
  return views
}

/**
 * Whether the proofs of `ucan` reach a delegation issued by `owner` (embedded) or one
 * of `known` (CIDs of its delegations held here, e.g. the root delegation, only linked).
 */
export function rootedIn(ucan: string, owner: string, known: (string | undefined)[]): boolean {
  const decoded = decodeToken(ucan)
  if (decoded.ok === undefined) return false
  const seen = new Set<string>()
  const walk = (view: API.Delegation, depth: number): boolean => {
    for (const proof of view.proofs) {
      if (isLink(proof)) {
        if (known.includes(String(proof))) return true
        continue
      }
      const d = proof as API.Delegation
      const cid = linkString(d.cid)
      if (seen.has(cid) || depth > 16) continue
      seen.add(cid)
      if (d.issuer.did() === owner || walk(d, depth + 1)) return true
    }
    return false
  }
  return walk(viewOf(decoded.ok), 0)
}

function isLink(proof: API.Proof): boolean {
  return !('capabilities' in (proof as object))
}

/**
 * Whether every delegation of `chain` (CIDs: the invocation first, then each proof down
 * to the owner's) derives `can` on `resource` from the one below it. False when a link
 * is unknown or a link grants nothing that derives it.
 */
export function pathGrants(
  views: Map<string, API.Delegation>,
  chain: string[],
  can: string,
  resource: string,
): boolean {
  const info = CAPABILITIES[can]
  const invocation = views.get(chain[0] as string)
  if (info === undefined || invocation === undefined) return false
  const start = info.parser.match({
    capability: { can, with: resource, nb: {} } as never,
    delegation: invocation,
  } as never)
  if (start.error) return false
  let matches: API.Match[] = [start.ok as API.Match]
  for (const cid of chain.slice(1)) {
    const proof = views.get(cid)
    if (proof === undefined) return false
    const sources = proof.capabilities.map((capability) => ({ capability, delegation: proof }))
    matches = matches.flatMap((m) => m.select(sources as unknown as API.Source[]).matches)
    if (matches.length === 0) return false
  }
  return true
}

/** The earliest expiry (seconds) of the path's delegations (the invocation itself excluded). */
export function pathExpiry(views: Map<string, API.Delegation>, chain: string[]): number {
  let exp = Number.POSITIVE_INFINITY
  for (const cid of chain.slice(1)) {
    const e = views.get(cid)?.expiration
    if (typeof e === 'number' && e < exp) exp = e
  }
  return exp
}
