import type { AuditLog } from '../audit/index.ts'
import type { ActGate, GateAct } from '../auth/acts/index.ts'
import {
  BadRequestError,
  ConflictError,
  ForbiddenError,
  MeshError,
  NotFoundError,
  PolicyRejectedError,
} from '../errors.ts'
import { type Ed25519KeyPair, isDidKey } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { MeshStore } from '../store/index.ts'
import type { AcceptedPeers } from './accepted-peers.ts'
import type { Link } from './link.ts'
import type { MeshKeys } from './mesh-keys.ts'
import type { Refuse } from './refusals.ts'
import type { Room } from './room.ts'
import { ROOM_LIMITS } from './room-entries.ts'
import type { RoomManager } from './room-manager.ts'
import {
  isOpen,
  type ShareBook,
  type ShareEnd,
  type ShareRecord,
  type ShareStatus,
  shareResource,
  signShare,
  verifyShare,
} from './share.ts'
import { ROOM_SYNC_LIMITS } from './sync-protocol.ts'

export interface ShareView {
  room: string
  peer: string
  direction: 'out' | 'in'
  createdAt: string
  dm?: string
  // room lifecycle (SPEC §9)
  /** The receiver's answer to the invitation. */
  status: ShareStatus
  /** Whether the room crosses the link now: accepted and not ended. */
  shared: boolean
  endedAt?: string
  endedBy?: ShareEnd
}

export type ShareActGate = Pick<ActGate, 'local' | 'peer' | 'peek' | 'release' | 'withAct' | 'peerHumanAct'>

export interface ShareActsComponents {
  /** The mesh key: it signs shares (a function: key rotation changes it). */
  key: () => Ed25519KeyPair
  /** This mesh's identity: how rooms and peers name it. */
  identity: () => string
  keys: () => MeshKeys
  store: MeshStore
  rooms: Pick<RoomManager, 'record' | 'load' | 'loaded' | 'create' | 'adopt' | 'principal'>
  acts: ShareActGate
  audit?: AuditLog
  shares: ShareBook
  peers: AcceptedPeers
  policy: () => Promise<{ maxForeignParticipantsPerRoom: number; autoAcceptRooms?: boolean }>
  refuse: Refuse
  /** The peer's identity became known from a share's chains: its link is filed under it. */
  rekey: (link: Link, identity: string) => void
  /** A share was decided here: tell the peer. */
  announce: (share: ShareRecord) => void
  logger: Logger
  now: () => number
  /** This mesh's architect: a local principal joins a room shared with this mesh (unless a DM names another). */
  architectDid: string
}

/**
 * The share decisions, both ways: a human of this mesh shares a room (or opens a DM)
 * with a peer mesh by a signed act; a peer's share arrives with its human's act,
 * checked as a foreign act, and the room is adopted. Each is written with its audit
 * row and the act's spend in one batch.
 */
export class ShareActs {
  readonly #c: ShareActsComponents

  constructor(components: ShareActsComponents) {
    this.#c = components
  }

  /** This mesh's current key: acts are addressed to it. */
  get #self(): string {
    return this.#c.key().did
  }

  /** Whether a room travels to any peer mesh (or came from one). */
  isFederated(room: string, homeMesh?: string): boolean {
    return (
      (homeMesh !== undefined && !this.#c.peers.isOwn(homeMesh)) || this.#c.shares.peersOf(room).length > 0
    )
  }

  view(share: ShareRecord): ShareView {
    return shareView(share)
  }

  /** Every share of the room, in any state (room lifecycle: pending, declined, ended ones too). */
  views(room: string): ShareView[] {
    return this.#c.shares.recordsOf(room).map(shareView)
  }

  /**
   * A human shares a room this mesh holds with a peer mesh (`POST
   * /api/rooms/:id/share`): `ucan` is a human-signed chain invoking `room/share` on
   * `<this mesh's key>/rooms/<room>` with `nb.peer` = the peer as named, rooted in
   * this mesh's root delegation (the Authority checks tiers and the human in the
   * chain); an accepted connection with the peer (MESH_NOT_CONNECTED otherwise), and
   * room for one more foreign participant (MESH_POLICY_REJECTED). The chain's spend is
   * written with the share. Idempotent.
   */
  async share(input: { room: string; peer: string; ucan: string; actor: string }): Promise<ShareView> {
    const record = await this.#c.rooms.record(input.room)
    if (!isDidKey(input.peer)) throw new BadRequestError('mesh must be a did:key', { mesh: input.peer })
    if (this.#c.peers.isOwn(input.peer)) throw new BadRequestError('a room is not shared with its own mesh')
    // The act names the peer as the architect knew it; the share is filed under its identity.
    const peer = this.#c.keys().identityOf(input.peer)
    // A share that still stands is answered as it is; a declined or ended one is shared anew.
    const existing = this.#c.shares.record(input.room, peer)
    if (existing !== undefined && isOpen(existing)) return shareView(existing)
    await this.#c.peers.require(peer)
    const act = await this.#c.acts.local(input.ucan, {
      audience: this.#self,
      act: 'room/share',
      subject: input.peer,
      resource: shareResource(this.#self, input.room),
    })
    return this.#c.acts.withAct(act, async () => {
      const room = await this.#c.rooms.load(input.room)
      await this.#checkForeignRoom(room)
      const meta = room.meta()
      const share: ShareRecord = {
        room: input.room,
        peer,
        ...(peer !== input.peer ? { to: input.peer } : {}),
        direction: 'out',
        homeMesh: record.homeMesh,
        name: meta?.name ?? record.name,
        topic: meta?.topic ?? record.topic,
        ...this.#decided(input.ucan, act),
        // room lifecycle (SPEC §9): an invitation until the peer answers
        status: 'pending',
      }
      await this.#persist(share, 'rooms.shared', act.issuer, act.operations)
      this.#c.announce(share)
      return shareView(share)
    })
  }

  /**
   * A federated DM (`POST /api/me/federated-dms`): a room owned by `actor` with one
   * foreign participant, `with`, at `mesh` (found among the members of shared rooms
   * when not given). `ucan` is `actor`'s chain invoking `room/share` on this mesh's
   * key with `nb.peer` = `with` (MESH_FORBIDDEN when another principal invoked it). On
   * the other mesh, `with` joins the room (tier 4) when it arrives.
   */
  async openDm(input: {
    actor: string
    with: string
    mesh?: string
    ucan: string
  }): Promise<ShareView & { name: string }> {
    if (!isDidKey(input.with)) throw new BadRequestError('with must be a did:key')
    const named = input.mesh ?? this.#meshOf(input.with)
    if (named === undefined)
      throw new BadRequestError('the principal’s mesh is not known here; pass mesh', { with: input.with })
    if (this.#c.peers.isOwn(named))
      throw new BadRequestError('a federated DM is with a principal of another mesh')
    const mesh = this.#c.keys().identityOf(named)
    await this.#c.peers.require(mesh)
    const act = await this.#c.acts.local(input.ucan, {
      audience: this.#self,
      act: 'room/share',
      subject: input.with,
      resource: shareResource(this.#self, '', input.with),
    })
    return this.#c.acts.withAct(act, async () => {
      if (act.issuer !== input.actor)
        throw new ForbiddenError('a federated DM is opened by its owner’s own chain', {
          issuer: act.issuer,
          actor: input.actor,
        })
      const peerName = this.#c.peers.get(mesh)?.name ?? mesh.slice(-8)
      const name = `dm ${input.with.slice(-8)}@${peerName}`.slice(0, ROOM_LIMITS.maxNameLength)
      const record = await this.#c.rooms.create({
        name,
        topic: 'direct message',
        creator: input.actor,
        dm: true,
      })
      const share: ShareRecord = {
        room: record.id,
        peer: mesh,
        direction: 'out',
        homeMesh: this.#c.identity(),
        name,
        topic: record.topic,
        ...this.#decided(input.ucan, act),
        dm: input.with,
      }
      await this.#persist(share, 'rooms.dm.opened', act.issuer, act.operations)
      this.#c.announce(share)
      return { ...shareView(share), name }
    })
  }

  /** The `share` frame of one of our shares: signed, with the key histories the peer needs. */
  frame(share: ShareRecord): { room: string; type: 'share'; json: string } {
    const keys = this.#c.keys()
    const identity = this.#c.identity()
    // Our chain, and the home mesh's: the peer needs them for seals by rotated keys.
    const chains = [keys.chainOf(identity)]
    if (!this.#c.peers.isOwn(share.homeMesh)) chains.push(keys.chainOf(share.homeMesh))
    const carried = chains.filter((c) => c.length > 0)
    const signed = signShare(this.#c.key(), {
      room: share.room,
      homeMesh: share.homeMesh,
      name: share.name,
      topic: share.topic,
      to: share.to ?? share.peer,
      act: share.act,
      ...(share.credentials !== undefined ? { credentials: share.credentials } : {}),
      decidedAt: share.decidedAt,
      ...(share.dm !== undefined ? { join: share.dm } : {}),
      ...(carried.length > 0 ? { chains: carried } : {}),
    })
    return { room: share.room, type: 'share', json: JSON.stringify(signed) }
  }

  /**
   * A share from the peer on `link`: verified, its act checked, and written as an
   * invitation (`pending`: nothing of the room is stored) — or, with policy
   * `autoAcceptRooms` or for a federated DM, accepted at once and the room adopted.
   * Returns the record and whether it is new (the caller greets the room or, for a
   * share known already, answers it again), or undefined when refused (the peer is told).
   */
  async receive(
    link: Link,
    roomId: string,
    json: string,
  ): Promise<{ record: ShareRecord; fresh: boolean } | undefined> {
    let peer = link.peer
    if (json.length > ROOM_SYNC_LIMITS.maxShareBytes) {
      this.#c.refuse(peer, roomId, 'MESH_TOO_LARGE', 'share-too-large', 'share too large', link)
      return undefined
    }
    const keys = this.#c.keys()
    const accepted = this.#c.peers.get(peer)
    try {
      const selfDids = [this.#c.identity(), ...keys.ownDids()]
      const { share, chains, senderDids } = verifyShare(json, {
        remote: link.key,
        remoteDids: this.#c.peers.didsOf(peer),
        selfDids,
        room: roomId,
        now: this.#c.now(),
      })
      // Key histories first: the sender's may tell its identity (a peer met on a later key).
      for (const chain of chains) await keys.learn(chain.records, { now: this.#c.now() })
      const identity = keys.identityOf(link.key)
      if (identity !== link.peer) {
        this.#c.rekey(link, identity)
        if (accepted !== undefined) this.#c.peers.alias(identity, accepted)
        peer = identity
      }
      // A share re-sent (every time the link opens) is the same invitation: answered as it
      // stands. One decided later is a new share (the sharer ended the last): a new invitation.
      const known = this.#c.shares.record(roomId, peer)
      if (known !== undefined && known.decidedAt >= share.decidedAt) return { record: known, fresh: false }
      const act = await checkPeerShareAct(this.#c.acts, share, {
        senderDids,
        selfDids,
        architect: accepted?.architectDid ?? null,
      })
      return await this.#c.acts.withAct(act, async () => {
        const held = await this.#c.rooms.record(roomId).catch(() => undefined)
        if (held !== undefined && keys.identityOf(held.homeMesh) !== keys.identityOf(share.homeMesh))
          throw new ConflictError('this mesh holds that room with another home mesh', { room: roomId })
        const join = share.join ?? this.#c.architectDid
        if (share.join !== undefined && (await this.#c.rooms.principal(share.join)) === undefined)
          throw new NotFoundError('no such principal on this mesh', { did: share.join })
        // room lifecycle (SPEC §9): a DM is its principal's; a room waits for a human, or the policy
        const auto = share.join !== undefined || (await this.#c.policy()).autoAcceptRooms === true
        const now = new Date(this.#c.now()).toISOString()
        if (auto)
          await this.#c.rooms.adopt({
            id: roomId,
            homeMesh: share.homeMesh,
            name: share.name,
            topic: share.topic,
            admits: join,
            dm: share.join !== undefined,
          })
        const record: ShareRecord = {
          room: roomId,
          peer,
          direction: 'in',
          homeMesh: share.homeMesh,
          name: share.name,
          topic: share.topic,
          act: share.act,
          by: peer,
          decidedAt: share.decidedAt,
          join,
          ...(share.join !== undefined ? { dm: share.join } : {}),
          createdAt: now,
          ...(auto
            ? { status: 'accepted' as const, answeredAt: now, answeredBy: share.join ?? 'policy' }
            : { status: 'pending' as const }),
        }
        await this.#persist(record, 'rooms.share.received', peer, act.operations, act.human)
        return { record, fresh: true }
      })
    } catch (err) {
      const e = err instanceof MeshError ? err : new MeshError('MESH_INTERNAL', 'share could not be applied')
      if (!(err instanceof MeshError))
        this.#c.logger.error({ event: 'rooms.sync.share_failed', peer, room: roomId, err }, 'share failed')
      this.#c.refuse(peer, roomId, e.code, 'share-refused', e.message, link)
      return undefined
    }
  }

  /** The fields of a share decided here by `act`. */
  #decided(ucan: string, act: GateAct) {
    const credentials = act.forward.slice(1)
    return {
      act: ucan,
      ...(credentials.length > 0 ? { credentials } : {}),
      by: act.issuer,
      decidedAt: this.#c.now(),
      createdAt: new Date(this.#c.now()).toISOString(),
    }
  }

  /** MESH_POLICY_REJECTED when one more foreign participant would exceed the policy. */
  async #checkForeignRoom(room: Room): Promise<void> {
    const { maxForeignParticipantsPerRoom: max } = await this.#c.policy()
    let foreign = 0
    for (const m of room.members().values()) if (m.mesh !== room.homeMesh) foreign++
    if (foreign + 1 > max) {
      throw new PolicyRejectedError('the room has its maximum of foreign participants', {
        reason: 'foreign-limit',
        max,
        foreign,
      })
    }
  }

  #meshOf(did: string): string | undefined {
    for (const room of this.#c.rooms.loaded()) {
      const m = room.member(did)
      if (m !== undefined && !this.#c.peers.isOwn(m.mesh)) return m.mesh
    }
    return undefined
  }

  #persist(
    share: ShareRecord,
    action: string,
    actor: string,
    extra: GateAct['operations'],
    human?: string,
  ): Promise<void> {
    return writeShare(this.#c, share, { action, actor, extra, ...(human !== undefined ? { human } : {}) })
  }
}

/**
 * Writes a share record with its audit row and `extra` (an act's spend) in one batch,
 * then caches it.
 */
export async function writeShare(
  c: Pick<ShareActsComponents, 'audit' | 'store' | 'shares' | 'logger'>,
  share: ShareRecord,
  row: { action: string; actor: string; extra: GateAct['operations']; human?: string },
): Promise<void> {
  const ops = [c.shares.putOperation(share), ...row.extra]
  const entry = {
    action: row.action,
    actor: row.actor,
    subject: share.room,
    details: {
      peer: share.peer,
      direction: share.direction,
      ...(share.dm ? { dm: share.dm } : {}),
      ...(row.human !== undefined ? { human: row.human } : {}),
      ...(share.status !== undefined ? { status: share.status } : {}),
      ...(share.endedBy !== undefined ? { endedBy: share.endedBy } : {}),
    },
  }
  if (c.audit !== undefined) await c.audit.append(entry, { with: ops })
  else await c.store.batch(ops)
  c.shares.commit(share)
  c.logger.info({ event: row.action, room: share.room, peer: share.peer }, row.action)
}

/**
 * The post-check of the chain inside a share a peer forwarded, as a foreign act
 * (SPEC §4): an invocation of `room/share` addressed to a key of the sender, on that
 * key's room (or, for a DM, on the key itself) with `nb.peer` = the receiver (the DM's
 * principal), rooted in that key, valid when the share was decided, with a human the
 * sender vouches for who is no mesh key; a share (not a DM) passes through the
 * sender's architect. Claimed: the caller writes its `operations` with the share, or
 * releases it.
 */
export async function checkPeerShareAct(
  acts: ShareActGate,
  share: ReturnType<typeof verifyShare>['share'],
  from: { senderDids: Set<string>; selfDids: string[]; architect: string | null },
): Promise<GateAct> {
  const { senderDids, selfDids, architect } = from
  const peeked = acts.peek(share.act)
  if (peeked.format !== 'ucan')
    throw new MeshError('MESH_UCAN_INVALID', 'a share carries a UCAN chain', { reason: 'interim' })
  const isMeshKey = (did: string) => senderDids.has(did) || selfDids.includes(did)
  if (isMeshKey(peeked.issuer))
    throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the act is signed by a mesh key, not by a human', {
      iss: peeked.issuer,
    })
  if (!senderDids.has(peeked.audience))
    throw new MeshError('MESH_UCAN_INVALID', 'the act is addressed to another mesh than the sender', {
      aud: peeked.audience,
    })
  const act = await acts.peer([share.act, ...(share.credentials ?? [])], {
    audience: peeked.audience,
    act: 'room/share',
    subject: share.join ?? share.to,
    resource: shareResource(peeked.audience, share.room, share.join),
    now: share.decidedAt,
  })
  // A DM share is the DM principal's own act: no architect stands in its chain.
  await acts.peerHumanAct(act, { isMeshKey, architect: share.join === undefined ? architect : null })
  return act
}

export function shareView(s: ShareRecord): ShareView {
  return {
    room: s.room,
    peer: s.peer,
    direction: s.direction,
    createdAt: s.createdAt,
    ...(s.dm !== undefined ? { dm: s.dm } : {}),
    status: s.status ?? 'accepted',
    shared: (s.status ?? 'accepted') === 'accepted' && s.endedAt === undefined,
    ...(s.endedAt !== undefined ? { endedAt: s.endedAt } : {}),
    ...(s.endedBy !== undefined ? { endedBy: s.endedBy } : {}),
  }
}
