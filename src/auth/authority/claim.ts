/**
 * The checks on an invocation alone that need no signature and no network: it is
 * addressed to the expected audience, within its time, not too long-lived, and claims
 * exactly the expected capability (ability, resource and caveats).
 */

import type * as API from '@ucanto/interface'
import { CAPABILITIES } from './capabilities.ts'
import { type ChainLink, timeFailure } from './chain-link.ts'
import { type AuthorityFailure, ucanFailure } from './failure.ts'
import type { Result } from './result.ts'
import type { CapabilityInput } from './token.ts'

/** What the invocation must claim: the ability, the resource and the caveats with exactly these values. */
export type ExpectedCapability = CapabilityInput

/** A claimed capability, parsed. */
export type ClaimedCapability = { can: string; with: string; nb: Record<string, unknown> }

/** What `claimOf` found: the invocation's one capability, matched and parsed. */
export interface Claim {
  match: API.Match
  value: ClaimedCapability
}

export interface ClaimRules {
  /** The mesh the invocation must be addressed to. */
  audience: string
  /** The clock, ms since the epoch. */
  now: number
  /** Allowed clock difference, seconds. */
  skew: number
  /** Longest accepted invocation lifetime (exp − now), seconds. */
  maxLifetime: number
}

/** The invocation's claim of `expected`, or why it is not one. */
export function claimOf(
  invocation: ChainLink,
  expected: ExpectedCapability,
  rules: ClaimRules,
): Result<Claim, AuthorityFailure> {
  const now = Math.floor(rules.now / 1000)
  if (invocation.audience !== rules.audience) {
    return {
      error: ucanFailure('MESH_UCAN_INVALID', 'the invocation is addressed to another principal', {
        reason: 'audience',
        audience: invocation.audience,
        expected: rules.audience,
      }),
    }
  }
  const time = timeFailure(invocation, now, rules.skew)
  if (time !== undefined) return { error: time }
  if (invocation.expiration - now > rules.maxLifetime) {
    return {
      error: ucanFailure('MESH_UCAN_INVALID', 'the invocation lives longer than allowed', {
        reason: 'lifetime',
        exp: invocation.expiration,
        maxLifetimeSeconds: rules.maxLifetime,
      }),
    }
  }
  const info = CAPABILITIES[expected.can]
  if (info === undefined) {
    return {
      error: ucanFailure('MESH_UCAN_INVALID', `unknown ability ${expected.can}`, {
        reason: 'capability',
        can: expected.can,
      }),
    }
  }
  const claimed = invocation.view.capabilities.filter((c) => c.can === expected.can)
  if (claimed.length !== 1 || invocation.view.capabilities.length !== 1) {
    return {
      error: ucanFailure('MESH_UCAN_INVALID', `the invocation must claim exactly one ${expected.can}`, {
        reason: 'capability',
        claimed: invocation.view.capabilities.map((c) => c.can),
      }),
    }
  }
  const match = info.parser.match({ capability: claimed[0] as never, delegation: invocation.view })
  if (match.error) {
    return {
      error: ucanFailure('MESH_UCAN_INVALID', match.error.message, {
        reason: 'malformed',
        can: expected.can,
      }),
    }
  }
  const value = match.ok.value as unknown as ClaimedCapability
  const wrong = capabilityMismatch(value, expected)
  if (wrong !== undefined) return { error: wrong }
  return { ok: { match: match.ok, value } }
}

function capabilityMismatch(
  value: ClaimedCapability,
  expected: ExpectedCapability,
): AuthorityFailure | undefined {
  if (value.with !== expected.with) {
    return ucanFailure('MESH_UCAN_INVALID', `the invocation acts on ${value.with}, not on ${expected.with}`, {
      reason: 'capability',
      with: value.with,
      expected: expected.with,
    })
  }
  for (const [name, want] of Object.entries(expected.nb ?? {})) {
    const got = value.nb?.[name]
    if (!(got === want || (got != null && want != null && String(got) === String(want)))) {
      return ucanFailure('MESH_UCAN_INVALID', `the invocation's ${name} is not the one expected`, {
        reason: 'capability',
        caveat: name,
        got: got === undefined ? null : String(got),
        expected: String(want),
      })
    }
  }
  return undefined
}
