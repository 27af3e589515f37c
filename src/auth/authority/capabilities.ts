/**
 * The mesh's capabilities as data (ucanto `capability` descriptors): what each ability
 * acts on (`with`), which caveats it takes (`nb`), and how a delegated capability may
 * derive a claimed one (`derives`): a delegation only ever narrows.
 *
 * Resources are DID URLs rooted at a mesh's did, so the mesh key is the authority of
 * everything under its did (it "self-issues" them; see `canIssue`):
 *
 * ```
 * <mesh did>                    the whole mesh (mesh/connect, mesh/rotate-key, connection/*, trust/promote, ucan/revoke, mesh/enrol, mesh/remove)
 * <mesh did>/rooms/<room id>    one room (room/*); the bare mesh did covers every room
 * <mesh did>/agents/<agent id>  one agent (agent/invoke); the bare mesh did covers every agent
 * ```
 *
 * Narrowing rules (`derives`): the claimed `with` equals the delegated one or lies under
 * it (`/rooms/…`, `/agents/…` below the mesh did); every caveat the delegation sets must
 * be matched exactly by the claim (a caveat the delegation leaves out is unrestricted);
 * `trust/promote`'s `tier` is a floor — a delegation with `tier: 3` lets its holder
 * grant tier 3 or 4, never 2.
 */
import type * as API from '@ucanto/interface'
import { capability, Schema } from '@ucanto/validator'

const ID = '[A-Za-z0-9._~-]{1,128}'
const DID_BODY = 'did:[a-z0-9]+:[A-Za-z0-9._%:-]{1,256}'

/** A mesh did (the whole mesh). */
const meshResource = Schema.text({ pattern: new RegExp(`^${DID_BODY}$`) }) as unknown as API.Reader<
  API.DID,
  unknown
>
/** A mesh did or one of its rooms. */
const roomResource = Schema.text({
  pattern: new RegExp(`^${DID_BODY}(/rooms/${ID})?$`),
}) as unknown as API.Reader<API.URI, unknown>
/** A mesh did or one of its agents. */
const agentResource = Schema.text({
  pattern: new RegExp(`^${DID_BODY}(/agents/${ID})?$`),
}) as unknown as API.Reader<API.URI, unknown>

/** The resource of one room of a mesh. */
export function roomResourceOf(meshDid: string, roomId: string): `${string}:${string}` {
  return `${meshDid}/rooms/${roomId}` as `${string}:${string}`
}

/** The resource of one agent of a mesh. */
export function agentResourceOf(meshDid: string, agentId: string): `${string}:${string}` {
  return `${meshDid}/agents/${agentId}` as `${string}:${string}`
}

/** The mesh did a resource belongs to (the part before the first `/`). */
export function resourceOwner(resource: string): string {
  const slash = resource.indexOf('/')
  return slash === -1 ? resource : resource.slice(0, slash)
}

/** Whether `claimed` is `delegated` or lies under it. */
export function withinResource(claimed: string, delegated: string): boolean {
  return claimed === delegated || claimed.startsWith(`${delegated}/`)
}

type Nb = Record<string, unknown>
type Result = { ok: Record<string, never> } | { error: API.Failure }

function refuse(message: string): { error: API.Failure } {
  return Schema.error(message) as { error: API.Failure }
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true
  // links (ucan/revoke) compare by their string form
  return a != null && b != null && typeof a === 'object' && typeof b === 'object' && String(a) === String(b)
}

/**
 * A `derives` that checks the resource, then each caveat in `exact` (equal when the
 * delegation sets it) and `floor` (claimed ≥ delegated when the delegation sets it).
 */
function narrows(exact: string[], floor: string[] = []) {
  return (claimed: { with: string; nb?: Nb }, delegated: { with: string; nb?: Nb }): Result => {
    if (!withinResource(claimed.with, delegated.with)) {
      return refuse(`resource ${claimed.with} is not within ${delegated.with}`)
    }
    const c = claimed.nb ?? {}
    const d = delegated.nb ?? {}
    for (const name of exact) {
      if (d[name] !== undefined && !same(c[name], d[name])) {
        return refuse(`${name}: ${String(c[name])} violates ${String(d[name])}`)
      }
    }
    for (const name of floor) {
      const limit = d[name]
      if (typeof limit === 'number' && !(typeof c[name] === 'number' && (c[name] as number) >= limit)) {
        return refuse(`${name}: ${String(c[name])} exceeds the delegated limit ${limit}`)
      }
    }
    return { ok: {} }
  }
}

const did = () => Schema.did()
const text = (max: number) => Schema.text({ pattern: new RegExp(`^[\\s\\S]{1,${max}}$`) })

/** A capability parser of any of ours, as the chain verifier uses it. */
export type AnyCapabilityParser = API.TheCapabilityParser<API.Match<API.ParsedCapability>>

export interface CapabilityInfo {
  parser: AnyCapabilityParser
  /** The caveat that names an act's subject (`verifyAct`'s `subject`), if the ability has one. */
  subject?: string
  /** Participation: allowed at tier 4. */
  participation: boolean
}

/**
 * One ability as data: its resource, its caveats, the caveat naming its subject (a
 * delegation that sets it must be matched exactly), the caveats that are floors, and
 * whether tier 4 may invoke it.
 */
interface AbilitySpec {
  with: API.Reader<API.URI, unknown> | API.Reader<API.DID, unknown>
  nb?: Record<string, API.Reader<unknown, unknown>>
  subject?: string
  floor?: string[]
  /** Further caveats a delegation that sets them must be matched exactly by the claim. */
  exact?: string[]
  participation?: true
}

/** A human's answer to, or end of, one connection (with = the mesh; `connection` names it). */
const connectionAct: AbilitySpec = {
  with: meshResource,
  nb: { connection: text(256).optional() },
  subject: 'connection',
}

const ABILITIES: Readonly<Record<string, AbilitySpec>> = {
  'mesh/connect': { with: meshResource, nb: { peer: did().optional() }, subject: 'peer' },
  /** The architect rotates the mesh key (with = the mesh's current did). */
  'mesh/rotate-key': { with: meshResource },
  'connection/accept': connectionAct,
  'connection/decline': connectionAct,
  'connection/disconnect': connectionAct,
  'room/share': { with: roomResource, nb: { peer: did().optional() }, subject: 'peer' },
  'room/read': { with: roomResource, participation: true },
  'room/post': { with: roomResource, participation: true },
  'room/invite': { with: roomResource, nb: { invitee: did().optional() }, subject: 'invitee' },
  'trust/promote': {
    with: meshResource,
    nb: {
      subject: did().optional(),
      /** On an invocation: the tier granted. On a delegation: the most privileged tier it may grant. */
      tier: Schema.integer().greaterThan(1).lessThan(5).optional(),
      reason: text(512).optional(),
    },
    subject: 'subject',
    floor: ['tier'],
  },
  'agent/invoke': {
    with: agentResource,
    nb: {
      /** The agent capability invoked, as listed in the manifest (e.g. `echo`). */
      ability: text(128).optional(),
      /** Its input; never constrained by a delegation. */
      input: Schema.unknown().optional(),
    },
    subject: 'ability',
  },
  'ucan/revoke': {
    with: meshResource,
    nb: { ucan: Schema.link().optional(), reason: text(512).optional() },
    subject: 'ucan',
    // revocation people can use (SPEC §9): a member takes back what it issued at any tier
    // (RevocationService lets only the issuer or the architect revoke a delegation)
    participation: true,
  },
  // members: enrolment and removal (SPEC §8)
  /** A human enrols a did as a member (with = the mesh; a delegation may fix its kind and role). */
  'mesh/enrol': {
    with: meshResource,
    nb: { did: did().optional(), kind: text(16).optional(), role: text(64).optional() },
    subject: 'did',
    exact: ['kind', 'role'],
  },
  /** A human removes a member (with = the mesh). */
  'mesh/remove': { with: meshResource, nb: { did: did().optional() }, subject: 'did' },
  // paused links (issue 13): a human pauses or resumes one connection
  'connection/pause': connectionAct,
  'connection/resume': connectionAct,
  // room lifecycle and consent (SPEC §9): with = the room at this mesh (`<mesh>/rooms/<room>`)
  /** A human accepts or declines a room a peer mesh shared (`peer` = that mesh). */
  'room/accept': { with: roomResource, nb: { peer: did().optional() }, subject: 'peer' },
  'room/decline': { with: roomResource, nb: { peer: did().optional() }, subject: 'peer' },
  /** The home mesh's human ends the share of a room with a peer mesh (`peer` = that mesh). */
  'room/unshare': { with: roomResource, nb: { peer: did().optional() }, subject: 'peer' },
  /** A human of the receiving mesh leaves a room shared with it. */
  'room/leave': { with: roomResource },
  /** A room's owner or moderator removes a member (`did`); a moderator may be a tier-4 member. */
  'room/remove': { with: roomResource, nb: { did: did().optional() }, subject: 'did', participation: true },
  /** A room's owner or moderator sets a member's (`did`) role (`role`, fixed by a delegation that names it). */
  'room/role': {
    with: roomResource,
    nb: { did: did().optional(), role: text(16).optional() },
    subject: 'did',
    exact: ['role'],
    participation: true,
  },
  // the model proxy (SPEC §13): a foreign principal's chat completion (with = the mesh; a delegation may fix `model`)
  'model/invoke': {
    with: meshResource,
    nb: { model: text(256).optional(), request: Schema.unknown().optional() },
    exact: ['model'],
    participation: true,
  },
}

function define(can: string, spec: AbilitySpec): CapabilityInfo {
  const parser = capability({
    can: can as API.Ability,
    with: spec.with as API.Reader<API.URI, unknown>,
    ...(spec.nb === undefined ? {} : { nb: Schema.struct(spec.nb as never) }),
    derives: narrows(
      [...(spec.subject === undefined ? [] : [spec.subject]), ...(spec.exact ?? [])],
      spec.floor,
    ) as never,
  }) as unknown as AnyCapabilityParser
  return {
    parser,
    ...(spec.subject === undefined ? {} : { subject: spec.subject }),
    participation: spec.participation === true,
  }
}

/** Every ability this mesh understands, with its parser and rules. */
export const CAPABILITIES: Readonly<Record<string, CapabilityInfo>> = Object.freeze(
  Object.fromEntries(Object.entries(ABILITIES).map(([can, spec]) => [can, define(can, spec)])),
)

function parsersOf<const Cans extends string[]>(...cans: Cans): { [K in keyof Cans]: AnyCapabilityParser } {
  return cans.map((can) => (CAPABILITIES[can] as CapabilityInfo).parser) as never
}

export const [meshConnect, meshRotateKey] = parsersOf('mesh/connect', 'mesh/rotate-key')
export const [connectionAccept, connectionDecline, connectionDisconnect] = parsersOf(
  'connection/accept',
  'connection/decline',
  'connection/disconnect',
)
export const [roomShare, roomRead, roomPost, roomInvite] = parsersOf(
  'room/share',
  'room/read',
  'room/post',
  'room/invite',
)
export const [trustPromote, agentInvoke, ucanRevoke] = parsersOf(
  'trust/promote',
  'agent/invoke',
  'ucan/revoke',
)

// members: enrolment and removal (SPEC §8)
export const [meshEnrol, meshRemove] = parsersOf('mesh/enrol', 'mesh/remove')

export type Ability = keyof typeof CAPABILITIES

/** Trust tiers (SPEC §4): 1 architect · 2 super · 3 elevated (no re-delegation) · 4 participation only. */
export const TIERS = Object.freeze({
  architect: 1,
  super: 2,
  elevated: 3,
  normal: 4,
} as const)
export type Tier = 1 | 2 | 3 | 4

/** The lowest tier (numerically highest) that may still issue delegations to others. */
export const MAX_DELEGATING_TIER = 2
