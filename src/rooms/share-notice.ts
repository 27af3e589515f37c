import { createHash } from 'node:crypto'
import { BadRequestError, ForbiddenError, MeshError, SignatureMismatchError } from '../errors.ts'
import { type Ed25519KeyPair, signCanonical, verifyCanonical } from '../identity/index.ts'
import { ROOM_ID_RE } from './room-entries.ts'

/**
 * Room lifecycle (SPEC §9) on the wire: the `notice` frame of `/mesh/rooms/1.0.0`
 * (sync-protocol.ts), a message signed by the sending mesh's current key that tells the
 * peer what this mesh decided about one shared room:
 *
 * ```
 * {v: 1, kind: accept|decline|unshare|leave, room, from, to, at, sig}
 * ```
 *
 * `accept`/`decline`: the receiving mesh's answer to an invitation (a share it got);
 * `unshare`: the home (sharing) mesh ends the share; `leave`: the receiving mesh ends
 * it. `from` is the sender's current key (it must be the link's authenticated key), `to`
 * the receiver (its identity or one of its keys), `at` when it was decided (ms), `sig`
 * `from`'s Ed25519 signature over the RFC 8785 canonical JSON of every other field. The
 * human act that decided it stays with the deciding mesh (its audit log): the other
 * mesh needs no proof to stop sending a room, only to know who says so.
 */
export const NOTICE_KINDS = ['accept', 'decline', 'unshare', 'leave'] as const
export type NoticeKind = (typeof NOTICE_KINDS)[number]

export interface NoticeFields {
  v: 1
  kind: NoticeKind
  room: string
  from: string
  to: string
  at: number
}

export interface SignedNotice extends NoticeFields {
  sig: string
}

/** The largest notice accepted, bytes of JSON. */
export const MAX_NOTICE_BYTES = 2048
const SKEW_MS = 60_000

export function signNotice(key: Ed25519KeyPair, fields: Omit<NoticeFields, 'v' | 'from'>): SignedNotice {
  const body: NoticeFields = {
    v: 1,
    kind: fields.kind,
    room: fields.room,
    from: key.did,
    to: fields.to,
    at: fields.at,
  }
  return { ...body, sig: signCanonical(key, body) }
}

/**
 * Checks a notice from the link's key `remote` to this mesh (`selfDids`) about `room`:
 * shape, sender, target, signature, not from the future. Throws the MeshError to report.
 */
export function verifyNotice(
  json: string,
  options: { remote: string; selfDids: readonly string[]; room: string; now: number },
): SignedNotice {
  if (json.length > MAX_NOTICE_BYTES) throw new MeshError('MESH_TOO_LARGE', 'notice too large')
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    throw new BadRequestError('notice is not JSON')
  }
  const n = value as SignedNotice
  const keys = ['v', 'kind', 'room', 'from', 'to', 'at', 'sig']
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    Object.keys(value).length !== keys.length ||
    Object.keys(value).some((k) => !keys.includes(k)) ||
    n.v !== 1 ||
    !(NOTICE_KINDS as readonly string[]).includes(n.kind) ||
    typeof n.room !== 'string' ||
    !ROOM_ID_RE.test(n.room) ||
    typeof n.from !== 'string' ||
    typeof n.to !== 'string' ||
    !Number.isSafeInteger(n.at) ||
    typeof n.sig !== 'string'
  ) {
    throw new BadRequestError('malformed notice')
  }
  if (n.room !== options.room) throw new BadRequestError('notice names another room than its frame')
  if (n.from !== options.remote) throw new ForbiddenError('notice from another mesh than the sender')
  if (!options.selfDids.includes(n.to)) throw new ForbiddenError('notice addressed to another mesh')
  const { sig, ...fields } = n
  if (!verifyCanonical(n.from, fields, sig))
    throw new SignatureMismatchError('notice signature does not verify')
  if (n.at > options.now + SKEW_MS) throw new MeshError('MESH_CLOCK_SKEW', 'notice decided in the future')
  return n
}

/** Whether a notice dated `at` can answer or end a share recorded at `since` (ISO): not older than it. */
export function noticeFits(at: number, since: string): boolean {
  return at >= Date.parse(since) - SKEW_MS
}

/**
 * The id of the invitation of `room` from `peer` (stable: a re-sent share is the same
 * invitation). Hex, like room ids: a base64url id may begin with `-`, which a command
 * line takes for an option (`mesh invitation accept -HW16…`).
 */
export function invitationId(room: string, peer: string): string {
  return createHash('sha256').update(`mesh-invitation\0${room}\0${peer}`).digest('hex').slice(0, 32)
}
