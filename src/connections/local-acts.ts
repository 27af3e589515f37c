import type { AuditEntryInput, AuditLog } from '../audit/index.ts'
import { type ActGate, type GateAct, HUMAN_ACTS } from '../auth/acts/index.ts'
import { BadRequestError, ConflictError } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import {
  CONNECT_MESSAGE,
  type ConnectAnswerBody,
  type ConnectCommandType,
  type ConnectDisconnectBody,
  type ConnectRequestBody,
} from './connect-protocol.ts'
import {
  type ConnectionBook,
  type ConnectionRecord,
  type ConnectionView,
  iso,
  newConnectionId,
  randomId,
  transition,
} from './connection-book.ts'
import type { Outbox } from './outbox.ts'
import { newPeerRecord, type PeerBook, type PeerRecord } from './peers.ts'
import type { PolicyService } from './policy.ts'
import type { Refusals } from './refusals.ts'
import { type ConnectTarget, resolveConnectTarget, withTargetAddresses } from './url-target.ts'

/** The local human's signed act, as the HTTP API receives it (`ucan`), and who asked. */
export interface ActInput {
  ucan: string
  /** The session's did. */
  actor: string
}

export interface ConnectInput extends ActInput {
  /** A did:key, a multiaddr ending in /p2p/<peer id>, or a mesh's http(s) URL (its manifest is fetched). */
  target: string
  note?: string
}

export interface LocalActsComponents {
  book: ConnectionBook
  peers: Pick<PeerBook, 'get' | 'identityOf' | 'put'>
  policy: Pick<PolicyService, 'evaluate'>
  acts: Pick<ActGate, 'local' | 'withAct'>
  audit: Pick<AuditLog, 'append'>
  outbox: Pick<Outbox, 'enqueueOperations' | 'kick'>
  refusals: Pick<Refusals, 'httpAct'>
  /** The mesh key (a function: key rotation will change it). */
  key: () => Ed25519KeyPair
}

export interface LocalActsInit {
  /** This mesh's name, sent in requests. */
  name: string
  /** This mesh's architect, declared in every message. */
  architectDid: string
  multiaddrs: () => string[]
  protocolVersions: () => string[]
  now?: () => number
  // phase-1 HTTP federation (SPEC §12): this mesh's HTTP base, sent in requests
  httpUrl?: () => string | undefined
}

/** One local step: the act it needs, the checks before it, and the transition it makes. */
interface LocalStep {
  /** For the refusal record: `http.<kind>`. */
  kind: 'connect' | 'accept' | 'decline' | 'disconnect' | 'pause' | 'resume'
  act: string
  /** The act's subject (connect: the peer did, known once `check` ran; else the connection id). */
  subject: () => string | null
  /** Checks that need no act (they refuse before the act is spent). */
  check?: () => Promise<void>
  /** Runs in the book's queue: the new record, the message for the peer and the audit row. */
  apply: (act: GateAct, now: number) => Promise<LocalTransition>
}

interface LocalTransition {
  record: ConnectionRecord
  /** The peer as shown in the view; written too when `putPeer`. */
  peer: PeerRecord | undefined
  putPeer: boolean
  /** For the peer; none for a local-only step (pause, resume). */
  message?: { type: ConnectCommandType; body: ConnectRequestBody | ConnectAnswerBody | ConnectDisconnectBody }
  entry: AuditEntryInput
}

/**
 * The architect's acts from the HTTP API — request, accept, decline, disconnect —
 * each a checked human act, then one transition written in one batch with its audit
 * row, the act's spend and the message queued for the peer.
 */
export class LocalActs {
  readonly #c: LocalActsComponents
  readonly #init: LocalActsInit

  constructor(components: LocalActsComponents, init: LocalActsInit) {
    this.#c = components
    this.#init = init
  }

  /** The architect asks to connect to `target`. Returns the new connection (outbound pending). */
  request(input: ConnectInput): Promise<ConnectionView> {
    let target: ConnectTarget | undefined
    return this.commitTransition(input, {
      kind: 'connect',
      act: HUMAN_ACTS.connect,
      subject: () => target?.did ?? null,
      check: async () => {
        target = await resolveConnectTarget(input.target) // reachable by URL (SPEC §10)
        if (target.did === this.#c.key().did)
          throw new BadRequestError('a mesh cannot connect to itself', { target: input.target })
        const decision = await this.#c.policy.evaluate(target.did)
        if (!decision.ok) throw decision.error
      },
      apply: async (act, now) => {
        const did = (target as ConnectTarget).did
        const identity = (await this.#c.peers.identityOf(did)) ?? did
        // A pending request from the peer (crossing requests, issue 13) is answered, not crossed.
        const open = (await this.#c.book.connectionsWith(identity)).find(
          (c) => c.status === 'accepted' || c.status === 'pending',
        )
        if (open !== undefined) {
          throw new ConflictError(`there is already a ${open.status} connection with this mesh`, {
            reason:
              open.status === 'accepted'
                ? 'already-connected'
                : open.direction === 'outbound'
                  ? 'request-pending'
                  : 'request-received',
            connectionId: open.id,
          })
        }
        const peer = withTargetAddresses(
          (await this.#c.peers.get(identity)) ?? newPeerRecord(identity, now),
          target as ConnectTarget,
        )
        const record: ConnectionRecord = {
          id: newConnectionId(),
          peerDid: identity,
          peerName: peer.name,
          peerArchitectDid: peer.architectDid,
          direction: 'outbound',
          status: 'pending',
          agreementVersion: peer.agreementVersion + 1,
          requestNonce: randomId(),
          note: input.note ?? null,
          createdAt: iso(now),
          updatedAt: iso(now),
          decidedBy: act.issuer,
          lastError: null,
        }
        const body: ConnectRequestBody = {
          connectionId: record.id,
          nonce: record.requestNonce,
          name: this.#init.name,
          architectDid: this.#init.architectDid,
          multiaddrs: this.#init.multiaddrs().slice(0, 32),
          protocolVersions: this.#init.protocolVersions().slice(0, 32),
          agreementVersion: record.agreementVersion,
          decidedAt: now,
          ...(input.note !== undefined ? { note: input.note } : {}),
        }
        // phase-1 HTTP federation (SPEC §12)
        const http = this.#init.httpUrl?.()
        if (http !== undefined) body.http = http
        return {
          record,
          peer,
          putPeer: true,
          message: { type: CONNECT_MESSAGE.request, body },
          entry: {
            action: 'federation.connection.requested',
            actor: act.issuer,
            subject: record.id,
            details: { peer: identity, direction: 'outbound', agreementVersion: record.agreementVersion },
          },
        }
      },
    })
  }

  /** The architect accepts an inbound pending request. */
  accept(id: string, input: ActInput): Promise<ConnectionView> {
    return this.#answer(id, input, 'accept')
  }

  /** The architect declines an inbound pending request. */
  decline(id: string, input: ActInput): Promise<ConnectionView> {
    return this.#answer(id, input, 'decline')
  }

  /** The architect ends a connection (accepted, or pending in either direction). */
  disconnect(id: string, input: ActInput): Promise<ConnectionView> {
    return this.commitTransition(input, {
      kind: 'disconnect',
      act: HUMAN_ACTS.disconnect,
      subject: () => id,
      apply: async (act, now) => {
        const record = await this.#c.book.required(id)
        if (record.status !== 'pending' && record.status !== 'accepted') {
          throw new ConflictError(`cannot disconnect a ${record.status} connection`, {
            status: record.status,
          })
        }
        const body: ConnectDisconnectBody = {
          connectionId: id,
          agreementVersion: record.agreementVersion,
          architectDid: this.#init.architectDid,
          decidedAt: now,
        }
        return {
          record: transition(record, 'disconnected', act.issuer, now),
          peer: await this.#c.peers.get(record.peerDid),
          putPeer: false,
          message: { type: CONNECT_MESSAGE.disconnect, body },
          entry: {
            action: 'federation.connection.disconnected',
            actor: act.issuer,
            subject: id,
            details: { peer: record.peerDid, by: 'local', agreementVersion: record.agreementVersion },
          },
        }
      },
    })
  }

  // paused links (issue 13)
  /**
   * A human pauses an accepted connection, or resumes a paused one: local only (the
   * peer is not told; its links and invocations are refused meanwhile, MESH_NOT_CONNECTED
   * with reason `paused`), audited, and while paused this mesh's outbox for the peer holds.
   */
  setPaused(id: string, input: ActInput, pause: boolean): Promise<ConnectionView> {
    return this.commitTransition(input, {
      kind: pause ? 'pause' : 'resume',
      act: pause ? HUMAN_ACTS.pause : HUMAN_ACTS.resume,
      subject: () => id,
      apply: async (act, now) => {
        const record = await this.#c.book.required(id)
        const paused = record.paused != null
        if (record.status !== 'accepted' || paused === pause) {
          throw new ConflictError(
            pause
              ? 'only an accepted, running connection can be paused'
              : 'only a paused connection can be resumed',
            { status: record.status, paused },
          )
        }
        const next: ConnectionRecord = {
          ...record,
          paused: pause ? { by: act.issuer, at: iso(now) } : null,
          decidedBy: act.issuer,
          updatedAt: iso(now),
        }
        return {
          record: next,
          peer: await this.#c.peers.get(record.peerDid),
          putPeer: false,
          entry: {
            action: `federation.connection.${pause ? 'paused' : 'resumed'}`,
            actor: act.issuer,
            subject: id,
            details: { peer: record.peerDid, agreementVersion: record.agreementVersion },
          },
        }
      },
    })
  }

  #answer(id: string, input: ActInput, what: 'accept' | 'decline'): Promise<ConnectionView> {
    return this.commitTransition(input, {
      kind: what,
      act: what === 'accept' ? HUMAN_ACTS.accept : HUMAN_ACTS.decline,
      subject: () => id,
      apply: async (act, now) => {
        const record = await this.#c.book.required(id)
        if (record.direction !== 'inbound' || record.status !== 'pending') {
          throw new ConflictError(`only an inbound pending request can be ${what}ed`, {
            direction: record.direction,
            status: record.status,
          })
        }
        const status = what === 'accept' ? 'accepted' : 'declined'
        const next = transition(record, status, act.issuer, now)
        const peer = (await this.#c.peers.get(record.peerDid)) ?? newPeerRecord(record.peerDid, now)
        if (status === 'accepted')
          peer.agreementVersion = Math.max(peer.agreementVersion, next.agreementVersion)
        const body: ConnectAnswerBody = {
          connectionId: id,
          requestNonce: record.requestNonce,
          agreementVersion: next.agreementVersion,
          architectDid: this.#init.architectDid,
          decidedAt: now,
        }
        return {
          record: next,
          peer,
          putPeer: true,
          message: { type: what === 'accept' ? CONNECT_MESSAGE.accept : CONNECT_MESSAGE.decline, body },
          entry: {
            action: `federation.connection.${status}`,
            actor: act.issuer,
            subject: id,
            details: { peer: record.peerDid, direction: 'inbound', agreementVersion: next.agreementVersion },
          },
        }
      },
    })
  }

  /**
   * The one shape of a local act: checks, the human act (a refusal is recorded), then
   * in the book's queue the transition, written in one batch with its audit row, the
   * message for the peer and the act's spend; the act is released when any of it fails.
   */
  async commitTransition(input: ActInput, step: LocalStep): Promise<ConnectionView> {
    return this.#c.refusals.httpAct(step.kind, input.actor, step.subject, async () => {
      await step.check?.()
      const act = await this.#c.acts.local(input.ucan, {
        audience: this.#c.key().did,
        act: step.act,
        subject: step.subject() as string,
      })
      return this.#c.acts.withAct(act, () =>
        this.#c.book.serial(async () => {
          const t = await step.apply(act, (this.#init.now ?? Date.now)())
          const operations =
            t.message === undefined
              ? []
              : this.#c.outbox.enqueueOperations({
                  peer: t.record.peerDid,
                  connectionId: t.record.id,
                  type: t.message.type,
                  body: t.message.body,
                  proofs: act.forward,
                  envelopeId: randomId(),
                }).operations
          const peerOps = t.putPeer && t.peer !== undefined ? this.#c.peers.put(t.peer) : []
          await this.#c.audit.append(t.entry, {
            with: [this.#c.book.putRecord(t.record), ...peerOps, ...operations, ...act.operations],
          })
          // A resume releases what the outbox held; every other step sends its message.
          this.#c.outbox.kick(t.record.peerDid, { now: true })
          return this.#c.book.view(t.record, t.peer)
        }),
      )
    })
  }
}
