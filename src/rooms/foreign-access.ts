import { createHash, randomBytes } from 'node:crypto'
import type { AuditLog } from '../audit/index.ts'
import { pathExpiry, pathGrants, pathViews, rootedIn } from '../auth/authority/chain-grants.ts'
import {
  type Authority,
  type AuthorityError,
  type AuthorityOk,
  toMeshError,
} from '../auth/authority/index.ts'
import { BadRequestError, ForbiddenError, MeshError, TooLargeError, UnauthenticatedError } from '../errors.ts'
import type { MeshStore, Sublevel } from '../store/index.ts'
import { contentId, type MemberEntry, type MemberRole, ROOM_LIMITS } from './room-entries.ts'
import type { MemberView, RoomManager } from './room-manager.ts'
import { laterThan } from './room-roles.ts' // issue 15 (batch15): dated after this turn's writes too

/** The two abilities a chain may grant a foreign principal on one room (SPEC §8, way 2). */
export const ROOM_ABILITIES = ['room/read', 'room/post'] as const
export type RoomAbility = (typeof ROOM_ABILITIES)[number]

/** What `POST /api/invoke` and `POST /api/session/ucan` take. */
export interface ChainRequest {
  ucan: string
  credentials?: string[]
  presentation?: string
}

/** `POST /api/invoke`'s answer to a `room/post` or `room/read`. */
export interface RoomInvokeResult {
  room: string
  ability: RoomAbility
  invoker: string
  invocation: string
  tier: number
  human: string | null
  result: unknown
}

/** A capability session: one principal, one room, the abilities its chain grants, until the chain ends. */
export interface CapabilitySession {
  id: string
  did: string
  room: string
  can: RoomAbility[]
  /** CIDs of the chain's delegations: a revocation of any ends the session. */
  chain: string[]
  expiresAt: string
}

interface StoredSession {
  did: string
  room: string
  can: RoomAbility[]
  chain: string[]
  expiresAt: number
}

export interface ForeignAccessInit {
  rooms: RoomManager
  store: MeshStore
  /** A getter: a key rotation replaces the authority. */
  authority: () => Pick<
    Authority,
    'meshDid' | 'chains' | 'verifyAuthority' | 'revocations' | 'rootDelegation'
  >
  audit?: Pick<AuditLog, 'append'>
  /** Reputation hook, as the agents' invocations have it. */
  onInteraction?: (did: string, outcome: 'accepted' | 'refused', reason: string) => void
  /** Longest capability session, whatever the chain's expiry; default 12 h. */
  sessionTtlMs?: number
  now?: () => number
}

/** Capability session tokens start so, apart from sign-in tokens (which never do). */
export const CAPABILITY_TOKEN_PREFIX = 'cap_'
const hashToken = (token: string): string => createHash('sha256').update(token).digest('base64url')
export const ROOM_READ_MAX_PAGE = 200
const MAX_PAGE = ROOM_READ_MAX_PAGE

/**
 * A foreign principal in one of this mesh's rooms under a chain (SPEC §8, way 2): a
 * human-signed chain rooted in this mesh granting `room/read` and/or `room/post` on
 * `<mesh did>/rooms/<id>`. Its invocation is its authentication (`invoke`), or opens a
 * capability session scoped to that room, to what the chain grants and to its expiry
 * (`openSession`, `authenticate`). The principal enters the room as a tier 4 guest this
 * mesh seals (`read-only` while its chain grants only reading): messages are sealed by
 * their author's mesh, and the chain's holder has none in the room, so this mesh, which
 * verified the chain, vouches for its entries.
 */
export class ForeignAccess {
  readonly #init: ForeignAccessInit
  readonly #sessions: Sublevel<StoredSession>
  readonly #now: () => number
  // The sessions seen since start, watched for a revoked chain (their sockets are closed).
  readonly #live = new Map<string, { did: string; chain: string[]; expiresAt: number }>()
  readonly #revoked = new Set<(session: { id: string; did: string }) => void>()
  #watcher: ReturnType<typeof setInterval> | undefined
  #sweeps = 0

  constructor(init: ForeignAccessInit) {
    this.#init = init
    this.#sessions = init.store.sublevel<StoredSession>('capability-sessions')
    this.#now = init.now ?? Date.now
  }

  /** Checks every `intervalMs` whether a live session's chain was revoked (however it was: here or by a peer). */
  start(intervalMs = 1000): void {
    this.#watcher ??= setInterval(() => this.#sweep(), intervalMs)
    this.#watcher.unref()
  }

  stop(): void {
    clearInterval(this.#watcher)
    this.#watcher = undefined
  }

  /** Calls `listener` with each capability session ended by a revocation; returns the unsubscribe. */
  onRevoked(listener: (session: { id: string; did: string }) => void): () => void {
    this.#revoked.add(listener)
    return () => this.#revoked.delete(listener)
  }

  #sweep(): void {
    // Ended sessions leave the store every 600 sweeps (10 min at the default interval).
    if (++this.#sweeps % 600 === 0) void this.purgeExpired().catch(() => {})
    const revocations = this.#init.authority().revocations
    const now = this.#now()
    for (const [id, s] of this.#live) {
      if (s.expiresAt <= now) {
        this.#live.delete(id)
        continue
      }
      if (!s.chain.some((cid) => revocations.isRevoked(cid))) continue
      this.#live.delete(id)
      void this.#sessions.del(id).catch(() => {})
      for (const listener of this.#revoked) listener({ id, did: s.did })
    }
  }

  /** `room/post {body}` or `room/read {after?, limit?}`, verified, then done as the invoker. */
  async invoke(request: ChainRequest): Promise<RoomInvokeResult> {
    const peeked = this.#peek(request.ucan)
    const nb = peeked.nb
    const body = peeked.can === 'room/post' ? postBody(nb) : undefined
    const page = peeked.can === 'room/read' ? readPage(nb) : undefined
    const { ok, room } = await this.#verify(request, peeked)
    await this.#admit(room, ok.issuer, peeked.can === 'room/post')
    const result =
      body !== undefined
        ? await this.#init.rooms.post(room, ok.issuer, body)
        : await this.#init.rooms.messages(room, ok.issuer, page)
    await this.#init.audit?.append({
      action: 'room.invoked',
      actor: ok.issuer,
      subject: peeked.with,
      details: { can: peeked.can, invocation: ok.invocation, tier: ok.tier, human: ok.humanInChain ?? null },
    })
    this.#init.onInteraction?.(ok.issuer, 'accepted', peeked.can)
    return {
      room,
      ability: peeked.can,
      invoker: ok.issuer,
      invocation: ok.invocation,
      tier: ok.tier,
      human: ok.humanInChain ?? null,
      result,
    }
  }

  /**
   * `POST /api/session/ucan`: `ucan` invokes `room/read` or `room/post` on one room; the
   * session gets every one of the two that the same chain grants, and ends with the
   * chain's earliest expiry (at most `sessionTtlMs` from now).
   */
  async openSession(request: ChainRequest): Promise<{
    token: string
    expiresAt: string
    did: string
    room: string
    can: RoomAbility[]
  }> {
    const peeked = this.#peek(request.ucan)
    const { ok, room } = await this.#verify(request, peeked)
    const authority = this.#init.authority()
    const views = pathViews(request.ucan, [authority.rootDelegation()?.token])
    const can = ROOM_ABILITIES.filter((c) => c === peeked.can || pathGrants(views, ok.chain, c, peeked.with))
    const now = this.#now()
    const expiresAt = Math.min(
      pathExpiry(views, ok.chain) * 1000,
      now + (this.#init.sessionTtlMs ?? 12 * 3600_000),
    )
    if (expiresAt <= now) {
      // Within the clock skew the chain still verifies, but a session would be born ended.
      throw new MeshError('MESH_UCAN_INVALID', 'the chain has ended: no session opens under it', {
        proof: 'ucan',
        reason: 'expired',
        expiresAt: new Date(expiresAt).toISOString(),
      })
    }
    await this.#admit(room, ok.issuer, can.includes('room/post'))
    const token = CAPABILITY_TOKEN_PREFIX + randomBytes(32).toString('base64url')
    this.#live.set(hashToken(token), { did: ok.issuer, chain: ok.chain.slice(1), expiresAt })
    await this.#sessions.put(hashToken(token), {
      did: ok.issuer,
      room,
      can,
      chain: ok.chain.slice(1),
      expiresAt,
    })
    await this.#init.audit?.append({
      action: 'session.capability_opened',
      actor: ok.issuer,
      subject: peeked.with,
      details: { can, invocation: ok.invocation, expiresAt: new Date(expiresAt).toISOString() },
    })
    this.#init.onInteraction?.(ok.issuer, 'accepted', 'session/ucan')
    return { token, expiresAt: new Date(expiresAt).toISOString(), did: ok.issuer, room, can }
  }

  /** The capability session of a token: MESH_UNAUTHENTICATED when unknown or ended, MESH_UCAN_INVALID when its chain was revoked. */
  async authenticate(token: string): Promise<CapabilitySession> {
    const id = hashToken(token)
    const stored = await this.#sessions.get(id)
    if (stored === undefined || stored.expiresAt <= this.#now()) {
      throw new UnauthenticatedError('invalid or expired capability session', { reason: 'expired' })
    }
    const revocations = this.#init.authority().revocations
    const revoked = stored.chain.find((cid) => revocations.isRevoked(cid))
    if (revoked !== undefined) {
      this.#live.delete(id)
      await this.#sessions.del(id)
      throw new MeshError('MESH_UCAN_INVALID', 'the chain of this capability session was revoked', {
        reason: 'revoked',
        cid: revoked,
      })
    }
    if (!this.#live.has(id))
      this.#live.set(id, { did: stored.did, chain: stored.chain, expiresAt: stored.expiresAt })
    return { id, ...stored, expiresAt: new Date(stored.expiresAt).toISOString() }
  }

  /**
   * `POST /api/rooms/:id/invite {did, mesh, ucan}`: `actor` (signed in here) invokes
   * `room/invite` with `nb.invitee` = `did` on the room, under a human-signed chain;
   * the invitee is admitted at once as a tier 4 guest this mesh seals, which it reaches
   * under a chain (way 2). `mesh` (its home mesh) is recorded in the audit row; no
   * share is made for it: a share is its own human act (`room/share`, SPEC §9).
   */
  async invite(
    roomId: string,
    actor: string,
    input: { did: string; mesh?: string; ucan: string },
  ): Promise<MemberView> {
    const authority = this.#init.authority()
    const resource = `${authority.meshDid}/rooms/${roomId}`
    const verdict = await authority.verifyAuthority({
      ucan: input.ucan,
      can: 'room/invite',
      with: resource,
      nb: { invitee: input.did },
    })
    if (verdict.error !== undefined) throw toMeshError(verdict.error)
    if (verdict.ok.issuer !== actor) {
      throw new ForbiddenError('the invitation is signed by another principal than the one signed in', {
        reason: 'actor',
        issuer: verdict.ok.issuer,
      })
    }
    await this.#init.rooms.record(roomId)
    await this.#admit(roomId, input.did, true)
    await this.#init.audit?.append({
      action: 'room.invited',
      actor,
      subject: resource,
      details: { invitee: input.did, mesh: input.mesh ?? null, invocation: verdict.ok.invocation },
    })
    const rooms = this.#init.rooms
    // as the invitee reads it: it is a member now, whoever invited it
    const listed = await rooms.members(roomId, input.did)
    return listed.find((m) => m.did === input.did) as MemberView
  }

  /** Deletes the ended capability sessions; returns how many. */
  async purgeExpired(): Promise<number> {
    const now = this.#now()
    const ended: string[] = []
    for await (const [id, s] of this.#sessions.iterator()) if (s.expiresAt <= now) ended.push(id)
    if (ended.length > 0) await this.#sessions.batch(ended.map((key) => ({ type: 'del' as const, key })))
    return ended.length
  }

  // The one capability the invocation claims, before any signature is checked.
  #peek(ucan: string): { can: RoomAbility; with: string; nb: Record<string, unknown> } {
    const authority = this.#init.authority()
    const decoded = authority.chains.decode(ucan)
    if (decoded.error !== undefined) throw toMeshError(decoded.error)
    const capability = decoded.ok.invocation.view.capabilities[0] as
      | { can: string; with: string; nb?: Record<string, unknown> }
      | undefined
    if (capability === undefined || !(ROOM_ABILITIES as readonly string[]).includes(capability.can)) {
      throw new MeshError('MESH_UCAN_INVALID', 'this takes a room/read or room/post invocation', {
        proof: 'ucan',
        reason: 'capability',
        can: capability?.can ?? null,
      })
    }
    return { can: capability.can as RoomAbility, with: String(capability.with), nb: capability.nb ?? {} }
  }

  async #verify(
    request: ChainRequest,
    peeked: { can: RoomAbility; with: string },
  ): Promise<{ ok: AuthorityOk; room: string }> {
    const authority = this.#init.authority()
    const prefix = `${authority.meshDid}/rooms/`
    if (!peeked.with.startsWith(prefix)) {
      throw new ForbiddenError('the invocation acts on no room of this mesh', {
        proof: 'ucan',
        reason: 'resource',
        with: peeked.with,
      })
    }
    const verdict = await authority.verifyAuthority({
      ucan: request.ucan,
      can: peeked.can,
      with: peeked.with,
      ...(request.credentials !== undefined ? { credentials: request.credentials } : {}),
      ...(request.presentation !== undefined ? { presentation: request.presentation } : {}),
    })
    if (verdict.error !== undefined) {
      if (verdict.error.accountable !== undefined) {
        this.#init.onInteraction?.(
          verdict.error.accountable,
          'refused',
          `${peeked.can} ${verdict.error.code}`,
        )
      }
      const rooted = rootedIn(request.ucan, authority.meshDid, [authority.rootDelegation()?.cid])
      throw rooted ? widened(verdict.error) : toMeshError(verdict.error)
    }
    const room = peeked.with.slice(prefix.length)
    await this.#init.rooms.record(room)
    return { ok: verdict.ok, room }
  }

  // The invoker as a tier 4 guest of the room, sealed by this mesh: `member` when its
  // chain grants posting, else `read-only` (a guest already `member` stays one).
  async #admit(roomId: string, did: string, posts: boolean): Promise<void> {
    const rooms = this.#init.rooms
    const room = await rooms.load(roomId)
    const existing = room.member(did)
    if (existing !== undefined && existing.mesh !== rooms.ownMesh) {
      // One way in at a time: a member through its own mesh posts through it (way 1).
      throw new ForbiddenError('this principal is a member of the room through its own mesh', {
        reason: 'member-elsewhere',
        mesh: existing.mesh,
      })
    }
    if (existing !== undefined && !(posts && existing.role === 'read-only' && existing.tier === 4)) return
    const role: MemberRole = posts ? 'member' : 'read-only'
    const entry: MemberEntry = {
      v: 1,
      room: roomId,
      did,
      mesh: rooms.ownMesh,
      meshName: rooms.meshName,
      localId: guestName(did),
      role,
      tier: 4,
      ts: Math.max(this.#now(), laterThan(room, { did, mesh: rooms.ownMesh, ts: existing?.ts ?? 0 })),
    }
    await room.write([{ map: 'members', key: contentId(entry), value: entry }])
  }
}

/** How the room names a guest under a chain: `guest-` and the end of its did. */
export function guestName(did: string): string {
  return `guest-${did.slice(-8)}`
}

// A chain rooted in this mesh that does not reach this claim (another room, an ability
// it does not grant) is a widening: MESH_FORBIDDEN. No chain, one rooted elsewhere, a
// broken or expired one: as the authority says (MESH_UCAN_INVALID…).
function widened(error: AuthorityError): MeshError {
  const reason = error.details.reason
  if (error.code === 'MESH_UCAN_INVALID' && (reason === 'escalation' || reason === 'unrelated')) {
    return new ForbiddenError(`the chain does not grant this: ${error.message}`, {
      proof: error.proof,
      ...error.details,
      failed: error.failed,
    })
  }
  return toMeshError(error)
}

function postBody(nb: Record<string, unknown>): string {
  const body = nb.body
  if (typeof body !== 'string' || body.length === 0) {
    throw new BadRequestError('room/post takes nb.body, a non-empty string', { reason: 'body' })
  }
  if (Buffer.byteLength(body) > ROOM_LIMITS.maxBodyBytes) {
    throw new TooLargeError(`body is over ${ROOM_LIMITS.maxBodyBytes} bytes`, {
      max: ROOM_LIMITS.maxBodyBytes,
    })
  }
  return body
}

function readPage(nb: Record<string, unknown>): { after?: string; limit?: number } {
  const { after, limit } = nb
  if (after !== undefined && (typeof after !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(after))) {
    throw new BadRequestError('room/read nb.after is a message id', { reason: 'after' })
  }
  if (
    limit !== undefined &&
    !(Number.isInteger(limit) && (limit as number) >= 1 && (limit as number) <= MAX_PAGE)
  ) {
    throw new BadRequestError(`room/read nb.limit is an integer 1..${MAX_PAGE}`, { reason: 'limit' })
  }
  return {
    ...(after !== undefined ? { after: after as string } : {}),
    ...(limit !== undefined ? { limit: limit as number } : {}),
  }
}
