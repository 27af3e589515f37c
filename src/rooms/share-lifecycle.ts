import type { GateAct } from '../auth/acts/index.ts'
import { roomResourceOf } from '../auth/authority/index.ts'
import { BadRequestError, ConflictError, ForbiddenError, MeshError, NotFoundError } from '../errors.ts'
import type { Link } from './link.ts'
import type { MemberRole } from './room-entries.ts'
import type { MemberView, RoomManager } from './room-manager.ts'
import { isOpen, type ShareEnd, type ShareRecord, type ShareStatus } from './share.ts'
import { type ShareActsComponents, writeShare } from './share-acts.ts'
import { invitationId, type NoticeKind, noticeFits, signNotice, verifyNotice } from './share-notice.ts'

/** An incoming share as the receiving mesh sees it (`GET /api/rooms/invitations`). */
export interface InvitationView {
  id: string
  room: string
  name: string
  topic: string
  homeMesh: string
  /** The mesh that shared it. */
  peer: string
  peerName: string | null
  status: ShareStatus
  receivedAt: string
  answeredAt?: string
  answeredBy?: string
  dm?: string
  endedAt?: string
  endedBy?: ShareEnd
}

export interface ShareLifecycleComponents
  extends Pick<
    ShareActsComponents,
    | 'key'
    | 'identity'
    | 'keys'
    | 'store'
    | 'acts'
    | 'audit'
    | 'shares'
    | 'peers'
    | 'refuse'
    | 'logger'
    | 'now'
  > {
  rooms: Pick<RoomManager, 'adopt' | 'record' | 'removeMember' | 'setRole'>
  architectDid: string
  /** The open link with a peer, if any. */
  link: (peer: string) => Link | undefined
  /** A share became live here: greet its room on the link (or open the link). */
  started: (share: ShareRecord) => void
}

/**
 * Room lifecycle and consent (SPEC §9), both sides of a share after it was made: the
 * receiving mesh's human accepts or declines an invitation (`room/accept`,
 * `room/decline`), the home mesh unshares (`room/unshare`), the receiving mesh leaves
 * (`room/leave`); each decision is written with its audit row and the act's spend, and
 * told to the peer by a signed `notice` frame (share-notice.ts), which is sent again
 * every time the link opens until the peer has it. A share that ended keeps its record
 * (`endedAt`, `endedBy`): what each side holds of the room stays, and nothing of it
 * crosses the link again (a frame for it is refused `not-shared`).
 */
export class ShareLifecycle {
  readonly #c: ShareLifecycleComponents

  constructor(components: ShareLifecycleComponents) {
    this.#c = components
  }

  /** Every share this mesh received, newest first, pending ones first. */
  invitations(): InvitationView[] {
    const list = this.#c.shares.all().filter((s) => s.direction === 'in')
    list.sort(
      (a, b) =>
        Number(b.status === 'pending') - Number(a.status === 'pending') ||
        b.createdAt.localeCompare(a.createdAt),
    )
    return list.map((s) => this.#invitation(s))
  }

  /** Accepts (`room/accept`) or declines (`room/decline`) a pending invitation by a human act. */
  async answer(input: {
    id: string
    answer: 'accept' | 'decline'
    ucan: string
    actor: string
  }): Promise<InvitationView> {
    const share = this.#invitationOf(input.id)
    if (share.status !== 'pending')
      throw new ConflictError('the invitation was answered already', {
        status: share.status ?? 'accepted',
      })
    const act = await this.#c.acts.local(input.ucan, {
      audience: this.#c.key().did,
      act: input.answer === 'accept' ? 'room/accept' : 'room/decline',
      subject: share.peer,
      resource: roomResourceOf(this.#c.key().did, share.room),
    })
    return this.#c.acts.withAct(act, async () => {
      const current = this.#c.shares.record(share.room, share.peer)
      if (current !== share) throw new ConflictError('the invitation changed meanwhile')
      const now = new Date(this.#c.now()).toISOString()
      if (input.answer === 'accept')
        await this.#c.rooms.adopt({
          id: share.room,
          homeMesh: share.homeMesh,
          name: share.name,
          topic: share.topic,
          admits: share.join ?? this.#c.architectDid,
        })
      const next: ShareRecord = {
        ...share,
        status: input.answer === 'accept' ? 'accepted' : 'declined',
        answeredAt: now,
        answeredBy: act.issuer,
      }
      await writeShare(this.#c, next, {
        action: input.answer === 'accept' ? 'rooms.invitation.accepted' : 'rooms.invitation.declined',
        actor: act.issuer,
        extra: act.operations,
        ...(act.human !== undefined ? { human: act.human } : {}),
      })
      this.announce(next)
      return this.#invitation(next)
    })
  }

  /** The home mesh ends its share of `room` with `peer` (`room/unshare`, nb.peer = the peer as named). */
  async unshare(input: { room: string; peer: string; ucan: string; actor: string }): Promise<ShareRecord> {
    const peer = this.#c.keys().identityOf(input.peer)
    const share = this.#c.shares.record(input.room, peer)
    if (share === undefined || share.direction !== 'out')
      throw new NotFoundError('this mesh has not shared that room with that mesh', {
        room: input.room,
        mesh: input.peer,
      })
    return this.#end(share, 'unshare', input.ucan, input.peer)
  }

  /** The receiving mesh leaves a room shared with it (`room/leave`): every incoming share of it ends. */
  async leave(input: { room: string; ucan: string; actor: string }): Promise<ShareRecord[]> {
    const shares = this.#c.shares.recordsOf(input.room).filter((s) => s.direction === 'in' && isOpen(s))
    if (shares.length === 0)
      throw new NotFoundError('no mesh shares that room with this mesh', { room: input.room })
    const act = await this.#c.acts.local(input.ucan, {
      audience: this.#c.key().did,
      act: 'room/leave',
      resource: roomResourceOf(this.#c.key().did, input.room),
    })
    return this.#c.acts.withAct(act, async () => {
      const out: ShareRecord[] = []
      let extra = act.operations
      for (const share of shares) {
        out.push(await this.#write(share, 'leave', act.issuer, extra, act.human))
        extra = []
      }
      return out
    })
  }

  /**
   * The room's owner or a moderator removes a member (`room/remove`, nb.did = the member,
   * on the room), signed by the acting principal itself; see RoomManager.removeMember.
   */
  async removeMember(input: { room: string; did: string; ucan: string; actor: string }): Promise<void> {
    await this.#memberAct('room/remove', input, () =>
      this.#c.rooms.removeMember(input.room, input.actor, input.did),
    )
  }

  /**
   * The room's owner or a moderator sets a member's role (`room/role`, nb = `{did,
   * role}`, on the room), signed by the acting principal itself; see RoomManager.setRole.
   */
  async setRole(input: {
    room: string
    did: string
    role: MemberRole
    ucan: string
    actor: string
  }): Promise<MemberView> {
    const named = this.#c.acts.peek(input.ucan).nb.role
    if (named !== input.role)
      throw new MeshError('MESH_UCAN_INVALID', 'the act names another role', { role: named ?? null })
    return this.#memberAct('room/role', input, () =>
      this.#c.rooms.setRole(input.room, input.actor, input.did, input.role),
    )
  }

  /** A room act on one member by the acting principal's own chain, written with its audit row. */
  async #memberAct<T>(
    can: 'room/remove' | 'room/role',
    input: { room: string; did: string; ucan: string; actor: string; role?: string },
    effect: () => Promise<T>,
  ): Promise<T> {
    const act = await this.#c.acts.local(input.ucan, {
      audience: this.#c.key().did,
      act: can,
      subject: input.did,
      resource: roomResourceOf(this.#c.key().did, input.room),
    })
    return this.#c.acts.withAct(act, async () => {
      if (act.issuer !== input.actor)
        throw new ForbiddenError('a room act on a member is the acting principal’s own chain', {
          issuer: act.issuer,
          actor: input.actor,
        })
      const result = await effect()
      const entry = {
        action: can === 'room/remove' ? 'rooms.member.removed' : 'rooms.member.role',
        actor: act.issuer,
        subject: input.room,
        details: { did: input.did, ...(input.role !== undefined ? { role: input.role } : {}) },
      }
      if (this.#c.audit !== undefined) await this.#c.audit.append(entry, { with: act.operations })
      else await this.#c.store.batch(act.operations)
      return result
    })
  }

  async #end(share: ShareRecord, end: ShareEnd, ucan: string, subject: string): Promise<ShareRecord> {
    if (share.endedAt !== undefined)
      throw new ConflictError('the share has ended already', {
        endedAt: share.endedAt,
        endedBy: share.endedBy,
      })
    const act = await this.#c.acts.local(ucan, {
      audience: this.#c.key().did,
      act: `room/${end}`,
      subject,
      resource: roomResourceOf(this.#c.key().did, share.room),
    })
    return this.#c.acts.withAct(act, () => this.#write(share, end, act.issuer, act.operations, act.human))
  }

  async #write(
    share: ShareRecord,
    end: ShareEnd,
    actor: string,
    extra: GateAct['operations'],
    human: string | undefined,
  ): Promise<ShareRecord> {
    const next: ShareRecord = { ...share, endedAt: new Date(this.#c.now()).toISOString(), endedBy: end }
    await writeShare(this.#c, next, {
      action: end === 'unshare' ? 'rooms.unshared' : 'rooms.left',
      actor,
      extra,
      ...(human !== undefined ? { human } : {}),
    })
    this.#stop(next)
    this.announce(next)
    return next
  }

  /**
   * Tells the peer what this side decided about a share, if there is anything to tell:
   * the answer to an invitation it got, or the end this side made. Nothing when the
   * link is down: the link's greeting says it again (`greeting`).
   */
  announce(share: ShareRecord): void {
    const kind = this.noticeOf(share)
    const link = this.#c.link(share.peer)
    if (kind === undefined || link === undefined || link.closed) return
    link.send(this.frame(share, kind))
    if (kind === 'accept') this.#c.started(share)
  }

  /** What this side has to tell the peer about a share (said again each time the link opens). */
  noticeOf(share: ShareRecord): NoticeKind | undefined {
    if (share.endedAt !== undefined) {
      const mine = share.direction === 'out' ? 'unshare' : 'leave'
      return share.endedBy === mine ? mine : undefined
    }
    if (share.direction === 'in' && share.status === 'accepted') return 'accept'
    if (share.direction === 'in' && share.status === 'declined') return 'decline'
    return undefined
  }

  frame(share: ShareRecord, kind: NoticeKind): { room: string; type: 'notice'; json: string } {
    const signed = signNotice(this.#c.key(), {
      kind,
      room: share.room,
      to: share.to ?? share.peer,
      at: Date.parse(share.endedAt ?? share.answeredAt ?? share.createdAt),
    })
    return { room: share.room, type: 'notice', json: JSON.stringify(signed) }
  }

  /**
   * A notice from the peer on `link`: an answer to our share (`accept`, `decline`), or
   * the end of a share either way (`unshare` from the home mesh, `leave` from the
   * receiver). Anything about a share the peer is not party to in that role is refused
   * (`not-shared`); a notice already applied, or older than the share, is ignored.
   */
  async receive(link: Link, roomId: string, json: string): Promise<void> {
    const peer = link.peer
    try {
      const keys = this.#c.keys()
      const notice = verifyNotice(json, {
        remote: link.key,
        selfDids: [this.#c.identity(), ...keys.ownDids()],
        room: roomId,
        now: this.#c.now(),
      })
      const share = this.#c.shares.record(roomId, peer)
      const role =
        notice.kind === 'accept' || notice.kind === 'decline' || notice.kind === 'leave' ? 'out' : 'in'
      if (share === undefined || share.direction !== role)
        throw new MeshError('MESH_UPDATE_REJECTED', 'room is not shared with this mesh', {
          reason: 'not-shared',
        })
      if (!noticeFits(notice.at, share.createdAt) || share.endedAt !== undefined) return
      if (notice.kind === 'accept' || notice.kind === 'decline') {
        if (share.status !== 'pending') return
        const next: ShareRecord = {
          ...share,
          status: notice.kind === 'accept' ? 'accepted' : 'declined',
          answeredAt: new Date(notice.at).toISOString(),
          answeredBy: peer,
        }
        await writeShare(this.#c, next, {
          action: notice.kind === 'accept' ? 'rooms.share.accepted' : 'rooms.share.declined',
          actor: peer,
          extra: [],
        })
        if (notice.kind === 'accept') this.#c.started(next)
        return
      }
      const next: ShareRecord = { ...share, endedAt: new Date(notice.at).toISOString(), endedBy: notice.kind }
      await writeShare(this.#c, next, {
        action: notice.kind === 'unshare' ? 'rooms.share.unshared' : 'rooms.share.left',
        actor: peer,
        extra: [],
      })
      this.#stop(next)
    } catch (err) {
      const e = err instanceof MeshError ? err : new MeshError('MESH_INTERNAL', 'notice could not be applied')
      if (!(err instanceof MeshError))
        this.#c.logger.error({ event: 'rooms.sync.notice_failed', peer, room: roomId, err }, 'notice failed')
      const reason = (e.details as { reason?: string } | undefined)?.reason ?? 'notice-refused'
      this.#c.refuse(peer, roomId, e.code, reason, e.message, link)
    }
  }

  /** Nothing more of the room goes on the link: no live updates, no answers to a SyncStep1. */
  #stop(share: ShareRecord): void {
    const link = this.#c.link(share.peer)
    if (link === undefined) return
    link.ready.delete(share.room)
    link.batch.delete(share.room)
  }

  #invitationOf(id: string): ShareRecord {
    if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id))
      throw new BadRequestError('malformed invitation id')
    const share = this.#c.shares
      .all()
      .find((s) => s.direction === 'in' && invitationId(s.room, s.peer) === id)
    if (share === undefined) throw new NotFoundError('no such invitation', { id })
    return share
  }

  #invitation(s: ShareRecord): InvitationView {
    return {
      id: invitationId(s.room, s.peer),
      room: s.room,
      name: s.name,
      topic: s.topic,
      homeMesh: s.homeMesh,
      peer: s.peer,
      peerName: this.#c.peers.get(s.peer)?.name ?? null,
      status: s.status ?? 'accepted',
      receivedAt: s.createdAt,
      ...(s.answeredAt !== undefined ? { answeredAt: s.answeredAt } : {}),
      ...(s.answeredBy !== undefined ? { answeredBy: s.answeredBy } : {}),
      ...(s.dm !== undefined ? { dm: s.dm } : {}),
      ...(s.endedAt !== undefined ? { endedAt: s.endedAt } : {}),
      ...(s.endedBy !== undefined ? { endedBy: s.endedBy } : {}),
    }
  }
}
