import type { AbortOptions } from '@libp2p/interface'
import type { AuditLog } from '../audit/index.ts'
import { MeshError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { DeliveryError } from './connect-protocol.ts'
import type { Outbox, OutboxItem } from './outbox.ts'

/**
 * Store and forward (SPEC §10), the outbox's side: a message for a peer that cannot be
 * reached (no address, every dial refused, timed out) is left in the mailbox of a relay the
 * peer names (its circuit addresses), sealed to the peer and signed by this mesh
 * (src/mailbox). Parked counts as delivered: the outbox item is removed in the same batch
 * as its audit row (`federation.mailbox.parked`), and the peer's answer comes back later as
 * a message of its own (an accept, a decline). The mailbox itself is injected (the root wires
 * src/mailbox/client.ts): Connections does not import it.
 */
export interface MailboxPark {
  /** The relays a peer is reached through (from the addresses it gave and the peer store). */
  relaysOf(peerDid: string, known: readonly string[]): Promise<string[]>
  park(
    recipient: string,
    relays: readonly string[],
    plaintext: Uint8Array,
    options: AbortOptions,
  ): Promise<{ relay: string; seq: number; id: string }>
}

/** How old an envelope taken from a mailbox may be (a relay keeps items 7 days by default): 30 days. */
export const MAILBOX_ENVELOPE_MAX_AGE_MS = 30 * 24 * 3600_000

const PARKABLE = new Set(['no-address', 'connect-refused', 'timeout', 'network'])

export interface ParkComponents {
  mailbox: MailboxPark
  outbox: Pick<Outbox, 'removeOperations'>
  audit: Pick<AuditLog, 'append'>
  logger: Logger
}

/**
 * After `failure` delivering `item` to the key `keyDid` (its second attempt or later): parks
 * `envelope` at a relay the peer names. True when parked (the item is gone from the outbox); false when the failure is not
 * one a relay helps with or the peer names no relay; throws a transient DeliveryError with
 * the relay's code when every relay refused (MESH_QUOTA_EXCEEDED: its mailbox is full).
 */
export async function parkAtRelay(
  c: ParkComponents,
  item: OutboxItem,
  peer: { did: string; multiaddrs: string[] },
  keyDid: string,
  envelope: Uint8Array,
  failure: DeliveryError,
  options: AbortOptions & { timeoutMs: number },
): Promise<boolean> {
  // A first failure is retried directly (a blip, a redial): the mailbox is for a peer that stays away.
  if (!PARKABLE.has(failure.kind) || item.attempts < 1) return false
  const relays = await c.mailbox.relaysOf(keyDid, peer.multiaddrs)
  if (relays.length === 0) return false
  const signal = AbortSignal.any([
    AbortSignal.timeout(options.timeoutMs),
    ...(options.signal ? [options.signal] : []),
  ])
  let parked: { relay: string; seq: number; id: string }
  try {
    parked = await c.mailbox.park(keyDid, relays, envelope, { signal })
  } catch (err) {
    const e = err instanceof MeshError ? err : new MeshError('MESH_UNAVAILABLE', String(err))
    c.logger.info(
      { event: 'federation.mailbox.park_failed', peer: item.peer, relays, code: e.code },
      `the peer's relay did not take the message: ${e.message}`,
    )
    if (e.code === 'MESH_UNAVAILABLE' || e.code === 'MESH_NOT_FOUND') return false
    // Still the peer's unreachability, retried as such; the relay's code says why it waits.
    throw new DeliveryError(
      'connect-refused',
      e.code,
      `${failure.message}; its relay refused: ${e.message}`,
      {
        ...e.details,
        reason: 'mailbox',
      },
    )
  }
  await c.audit.append(
    {
      action: 'federation.mailbox.parked',
      actor: item.peer,
      subject: item.connectionId,
      details: {
        peer: item.peer,
        type: item.type,
        envelopeId: item.envelopeId,
        relay: parked.relay,
        item: parked.id,
      },
    },
    { with: [...c.outbox.removeOperations(item)] },
  )
  c.logger.info(
    {
      event: 'federation.send.parked',
      peer: item.peer,
      type: item.type,
      relay: parked.relay,
      seq: parked.seq,
    },
    'federation message left at the peer’s relay',
  )
  return true
}
