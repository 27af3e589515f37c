import type { AuditEntryInput, AuditLog } from '../../audit/index.ts'
import { type ActGate, claimedSubject, type GateAct } from '../../auth/acts/index.ts'
import { ClockSkewError, ForbiddenError, MeshError } from '../../errors.ts'
import type { Ed25519KeyPair } from '../../identity/index.ts'
import { type Applied, ack, type ConnectionBook, type ConnectionRecord } from '../connection-book.ts'
import type { Envelope, EnvelopeVerifier } from '../envelope.ts'
import type { PeerBook, PeerRecord } from '../peers.ts'

export interface PeerActsComponents {
  acts: Pick<ActGate, 'peek' | 'peer' | 'peerHumanAct'>
  peers: Pick<PeerBook, 'identityOf' | 'put'>
  book: Pick<ConnectionBook, 'putRecord'>
  audit: Pick<AuditLog, 'append'>
  envelopes: Pick<EnvelopeVerifier, 'seenOperations'>
  key: () => Ed25519KeyPair
}

export interface PeerActsInit {
  /** This mesh's name, in every ack. */
  name: string
  /** Oldest `decidedAt` accepted: how long a message may wait in a peer's outbox; default 7 days. */
  maxDeliveryDelayMs?: number
  /** Allowed clock difference for `decidedAt`; default 60 s. */
  maxSkewMs?: number
  now?: () => number
}

/** What a peer's act must be: its ability and subject (or one of `subjects`, this mesh's other dids). */
export interface PeerActExpect {
  act: string
  subject: string
  subjects?: string[]
}

/**
 * The human act a peer forwarded with a handshake message, checked (`check`) and, with
 * the transition it made, written in one batch (`commit`).
 */
export interface PeerActs {
  check(
    env: Envelope,
    peer: PeerRecord,
    architectDid: string,
    decidedAt: number,
    expect: PeerActExpect,
  ): Promise<GateAct>
  commit(
    env: Envelope,
    record: ConnectionRecord,
    peer: PeerRecord,
    act: GateAct,
    entry: AuditEntryInput,
    also?: ConnectionRecord[],
  ): Promise<Applied>
}

export function createPeerActs(c: PeerActsComponents, init: PeerActsInit): PeerActs {
  return {
    /**
     * Checks the human act a peer forwarded (`auth.proofs`: the token, then credentials):
     * a UCAN chain rooted in the peer's key with a human the peer vouches for, passing
     * through the architect the peer declared (pinned at first sight). Never signed by a mesh key, addressed to
     * the peer mesh, about `subject`, and valid when the peer carried it out (`decidedAt`).
     */
    async check(
      env: Envelope,
      peer: PeerRecord,
      architectDid: string,
      decidedAt: number,
      expect: PeerActExpect,
    ): Promise<GateAct> {
      const proofs = env.auth?.proofs ?? []
      const token = proofs[0]
      if (token === undefined) {
        throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the message carries no human act', { type: env.type })
      }
      const peeked = c.acts.peek(token)
      const isMeshKey = async (did: string) =>
        did === env.origin ||
        did === c.key().did ||
        peer.keys.some((k) => k.did === did) ||
        (await c.peers.identityOf(did)) !== undefined
      if (await isMeshKey(peeked.issuer)) {
        throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the act is signed by a mesh key, not by a human', {
          iss: peeked.issuer,
        })
      }
      if (architectDid === env.origin) {
        throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the declared architect is the mesh key itself', {
          architectDid,
        })
      }
      if (peer.architectDid !== null && peer.architectDid !== architectDid) {
        throw new ForbiddenError('the peer declares another architect than the one it declared before', {
          known: peer.architectDid,
          declared: architectDid,
        })
      }
      const now = (init.now ?? Date.now)()
      if (decidedAt > now + (init.maxSkewMs ?? 60_000)) {
        throw new ClockSkewError('decidedAt is in the future', { decidedAt, now })
      }
      if (decidedAt < now - (init.maxDeliveryDelayMs ?? 7 * 24 * 3600_000)) {
        throw new MeshError('MESH_UCAN_INVALID', 'the act was carried out too long ago', { decidedAt, now })
      }
      // Across a key rotation: an act addressed to one of the peer's earlier keys (it
      // waited in the peer's outbox), or naming one of this mesh's keys, still counts.
      const audience = peer.keys.some((k) => k.did === peeked.audience) ? peeked.audience : env.origin
      const claimed = claimedSubject(peeked, expect.act)
      const subject =
        typeof claimed === 'string' && expect.subjects?.includes(claimed) === true ? claimed : expect.subject
      const act = await c.acts.peer(proofs, {
        audience,
        act: expect.act,
        subject,
        now: decidedAt,
      })
      return c.acts.peerHumanAct(act, { isMeshKey, architect: architectDid })
    },

    /**
     * Records a peer's act in one batch with its audit entry: the connection record,
     * the peer, the envelope as seen and the act's own writes; then acknowledges it.
     */
    async commit(
      env: Envelope,
      record: ConnectionRecord,
      peer: PeerRecord,
      act: GateAct,
      entry: AuditEntryInput,
      /** More records written in the same batch (e.g. a crossed request retired). */
      also: ConnectionRecord[] = [],
    ): Promise<Applied> {
      await c.audit.append(entry, {
        with: [
          c.book.putRecord(record),
          ...also.map((r) => c.book.putRecord(r)),
          ...c.peers.put(peer),
          ...c.envelopes.seenOperations(env),
          ...act.operations,
        ],
      })
      return { reply: ack(env.id, record, init.name) }
    },
  }
}
