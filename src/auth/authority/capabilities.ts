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
 *
 * The table is plain data; each ability's ucanto parser is built from it the first time
 * it is asked for (`CAPABILITIES[can].parser`), which is when ucanto loads (issue 15,
 * cold start: ./ucanto.ts).
 */
import type * as API from '@ucanto/interface'
import { ucantoValidator } from './ucanto.ts'

const ID = '[A-Za-z0-9._~-]{1,128}'
const DID_BODY = 'did:[a-z0-9]+:[A-Za-z0-9._%:-]{1,256}'

/** What an ability acts on: a mesh did, or a mesh did or one of its rooms, or of its agents. */
type ResourceKind = 'mesh' | 'room' | 'agent'
const RESOURCE_PATTERNS: Record<ResourceKind, RegExp> = {
  mesh: new RegExp(`^${DID_BODY}$`),
  room: new RegExp(`^${DID_BODY}(/rooms/${ID})?$`),
  agent: new RegExp(`^${DID_BODY}(/agents/${ID})?$`),
}

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
  return ucantoValidator().Schema.error(message) as { error: API.Failure }
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

/**
 * One caveat, always optional: a did, a link, anything, text of 1 to `text` characters,
 * or an integer strictly between the two bounds of `integer`.
 */
type Caveat = 'did' | 'link' | 'unknown' | { text: number } | { integer: [above: number, below: number] }
const did = (): Caveat => 'did'
const text = (max: number): Caveat => ({ text: max })

type Schemas = ReturnType<typeof ucantoValidator>['Schema']

function readerOf(caveat: Caveat, schema: Schemas): API.Reader<unknown, unknown> {
  if (caveat === 'did') return schema.did().optional() as API.Reader<unknown, unknown>
  if (caveat === 'link') return schema.link().optional() as API.Reader<unknown, unknown>
  if (caveat === 'unknown') return schema.unknown().optional() as API.Reader<unknown, unknown>
  if ('text' in caveat) {
    return schema.text({ pattern: new RegExp(`^[\\s\\S]{1,${caveat.text}}$`) }).optional() as API.Reader<
      unknown,
      unknown
    >
  }
  const [above, below] = caveat.integer
  return schema.integer().greaterThan(above).lessThan(below).optional() as API.Reader<unknown, unknown>
}

/** A capability parser of any of ours, as the chain verifier uses it. */
export type AnyCapabilityParser = API.TheCapabilityParser<API.Match<API.ParsedCapability>>

export interface CapabilityInfo {
  /** Built on first use (ucanto loads then). */
  readonly parser: AnyCapabilityParser
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
  with: ResourceKind
  nb?: Record<string, Caveat>
  subject?: string
  floor?: string[]
  /** Further caveats a delegation that sets them must be matched exactly by the claim. */
  exact?: string[]
  participation?: true
}

/** A human's answer to, or end of, one connection (with = the mesh; `connection` names it). */
const connectionAct: AbilitySpec = {
  with: 'mesh',
  nb: { connection: text(256) },
  subject: 'connection',
}

const ABILITIES: Readonly<Record<string, AbilitySpec>> = {
  'mesh/connect': { with: 'mesh', nb: { peer: did() }, subject: 'peer' },
  /** The architect rotates the mesh key (with = the mesh's current did). */
  'mesh/rotate-key': { with: 'mesh' },
  'connection/accept': connectionAct,
  'connection/decline': connectionAct,
  'connection/disconnect': connectionAct,
  'room/share': { with: 'room', nb: { peer: did() }, subject: 'peer' },
  'room/read': { with: 'room', participation: true },
  'room/post': { with: 'room', participation: true },
  'room/invite': { with: 'room', nb: { invitee: did() }, subject: 'invitee' },
  'trust/promote': {
    with: 'mesh',
    nb: {
      subject: did(),
      /** On an invocation: the tier granted. On a delegation: the most privileged tier it may grant. */
      tier: { integer: [1, 5] },
      reason: text(512),
    },
    subject: 'subject',
    floor: ['tier'],
  },
  'agent/invoke': {
    with: 'agent',
    nb: {
      /** The agent capability invoked, as listed in the manifest (e.g. `echo`). */
      ability: text(128),
      /** Its input; never constrained by a delegation. */
      input: 'unknown',
    },
    subject: 'ability',
  },
  'ucan/revoke': {
    with: 'mesh',
    nb: { ucan: 'link', reason: text(512) },
    subject: 'ucan',
    // revocation people can use (SPEC §9): a member takes back what it issued at any tier
    // (RevocationService lets only the issuer or the architect revoke a delegation)
    participation: true,
  },
  // members: enrolment and removal (SPEC §8)
  /** A human enrols a did as a member (with = the mesh; a delegation may fix its kind and role). */
  'mesh/enrol': {
    with: 'mesh',
    nb: { did: did(), kind: text(16), role: text(64) },
    subject: 'did',
    exact: ['kind', 'role'],
  },
  /** A human removes a member (with = the mesh). */
  'mesh/remove': { with: 'mesh', nb: { did: did() }, subject: 'did' },
  // paused links (issue 13): a human pauses or resumes one connection
  'connection/pause': connectionAct,
  'connection/resume': connectionAct,
  // room lifecycle and consent (SPEC §9): with = the room at this mesh (`<mesh>/rooms/<room>`)
  /** A human accepts or declines a room a peer mesh shared (`peer` = that mesh). */
  'room/accept': { with: 'room', nb: { peer: did() }, subject: 'peer' },
  'room/decline': { with: 'room', nb: { peer: did() }, subject: 'peer' },
  /** The home mesh's human ends the share of a room with a peer mesh (`peer` = that mesh). */
  'room/unshare': { with: 'room', nb: { peer: did() }, subject: 'peer' },
  /** A human of the receiving mesh leaves a room shared with it. */
  'room/leave': { with: 'room' },
  /** A room's owner or moderator removes a member (`did`); a moderator may be a tier-4 member. */
  'room/remove': { with: 'room', nb: { did: did() }, subject: 'did', participation: true },
  /** A room's owner or moderator sets a member's (`did`) role (`role`, fixed by a delegation that names it). */
  'room/role': {
    with: 'room',
    nb: { did: did(), role: text(16) },
    subject: 'did',
    exact: ['role'],
    participation: true,
  },
  // the model proxy (SPEC §13): a foreign principal's chat completion (with = the mesh; a delegation may fix `model`)
  'model/invoke': {
    with: 'mesh',
    nb: { model: text(256), request: 'unknown' },
    exact: ['model'],
    participation: true,
  },
}

function parserOfSpec(can: string, spec: AbilitySpec): AnyCapabilityParser {
  const { capability, Schema } = ucantoValidator()
  const nb =
    spec.nb === undefined ? undefined : Object.entries(spec.nb).map(([k, c]) => [k, readerOf(c, Schema)])
  return capability({
    can: can as API.Ability,
    with: Schema.text({ pattern: RESOURCE_PATTERNS[spec.with] }) as unknown as API.Reader<API.URI, unknown>,
    ...(nb === undefined ? {} : { nb: Schema.struct(Object.fromEntries(nb) as never) }),
    derives: narrows(
      [...(spec.subject === undefined ? [] : [spec.subject]), ...(spec.exact ?? [])],
      spec.floor,
    ) as never,
  }) as unknown as AnyCapabilityParser
}

function define(can: string, spec: AbilitySpec): CapabilityInfo {
  let parser: AnyCapabilityParser | undefined
  return {
    get parser() {
      parser ??= parserOfSpec(can, spec)
      return parser
    },
    ...(spec.subject === undefined ? {} : { subject: spec.subject }),
    participation: spec.participation === true,
  }
}

/** Every ability this mesh understands, with its parser and rules. */
export const CAPABILITIES: Readonly<Record<string, CapabilityInfo>> = Object.freeze(
  Object.fromEntries(Object.entries(ABILITIES).map(([can, spec]) => [can, define(can, spec)])),
)

/** The ucanto parser of one of our abilities (ucanto loads on the first call). */
export function parserOf(can: string): AnyCapabilityParser {
  const info = CAPABILITIES[can]
  if (info === undefined) throw new Error(`unknown ability ${can}`)
  return info.parser
}

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
