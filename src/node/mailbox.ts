import { MAILBOX_ENVELOPE_MAX_AGE_MS } from '../connections/mailbox-park.ts'
import type { MeshErrorCode } from '../errors.ts'
import { MailboxClient, type MailboxDelivery, MailboxRelay, relayOf } from '../mailbox/index.ts'
import type { NodeWiring } from './parts.ts'

/**
 * Store and forward (SPEC §10), `/mesh/mailbox/1.0.0` (src/mailbox):
 *
 * - on a relay (`relay` set: `mesh start --relay`) the mailboxes it keeps for meshes that
 *   asked for one (`mailboxRelay`), its refusals in the rejected log;
 * - on every node the mailbox client (`mailbox`): the outbox parks a message for a peer it
 *   cannot reach at a relay the peer names (connections/mailbox-park.ts), and the node takes
 *   its own items from its relays (`--relay-via`, and the relays of its circuit addresses) at
 *   start, on reconnecting to one, and every poll interval. A taken item's plaintext is an
 *   envelope of `/mesh/connect/1.0.0`, handed to the connection service as if its origin had
 *   sent it (allowed to be as old as the relay may keep it); an item refused before (forged,
 *   replayed, misaddressed, expired) is written to the audit log (`federation.mailbox.refused`).
 *
 * Both follow the libp2p host across a key rotation (node/network.ts restartOnKey).
 */
export async function startMailbox({ parts, init, logger }: NodeWiring): Promise<void> {
  const { itemTtlMs, pollIntervalMs, ...relayInit } = init.mailbox ?? {}
  if (init.relay !== undefined && init.relay !== false) {
    const relay = new MailboxRelay(
      {
        libp2p: () => parts.get('libp2p'),
        store: parts.get('store'),
        logger,
        onRefused: (peer, op, err) =>
          void parts
            .find('rejected')
            ?.record({ peer, kind: `mailbox.${op}`, code: err.code, reason: err.message, details: {} })
            .catch(() => {}),
      },
      relayInit,
    )
    await parts.add('mailboxRelay', relay)
  }
  const client = new MailboxClient(
    {
      libp2p: () => parts.get('libp2p'),
      key: () => parts.get('key'),
      store: parts.get('store'),
      logger,
      relays: () => ownRelays(init.relayVia ?? [], parts.find('libp2p')?.getMultiaddrs() ?? []),
      deliver: async (plaintext, origin) => {
        const reply = await parts.get('connections').receive(plaintext, origin, {
          maxAgeMs: MAILBOX_ENVELOPE_MAX_AGE_MS,
        })
        return replyOutcome(reply)
      },
      onRefused: async ({ relay, origin, id, code, reason }) => {
        await parts.get('audit').append({
          action: 'federation.mailbox.refused',
          actor: origin,
          details: { relay, item: id, code, reason: reason.slice(0, 256) },
        })
      },
    },
    {
      ...(itemTtlMs !== undefined ? { itemTtlMs } : {}),
      ...(pollIntervalMs !== undefined ? { pollIntervalMs } : {}),
    },
  )
  await parts.add('mailbox', client)
}

/** The relays this mesh is reached through: those it was told of, and those of its circuit addresses. */
function ownRelays(relayVia: string[], addresses: Array<{ toString(): string }>): string[] {
  const relays = new Set(relayVia)
  for (const a of addresses) {
    const relay = relayOf(a.toString())
    if (relay !== undefined) relays.add(relay)
  }
  return [...relays]
}

/** Refusals that say "not now" rather than "no": the item is left at the relay and taken later. */
const TRANSIENT = new Set(['MESH_RATE_LIMITED', 'MESH_UNAVAILABLE', 'MESH_INTERNAL'])

/** What the connection service answered a mailbox message with: an ack, or an error with its code. */
function replyOutcome(reply: Uint8Array): MailboxDelivery {
  let envelope: { type?: string; body?: { code?: string; message?: string } }
  try {
    envelope = JSON.parse(Buffer.from(reply).toString('utf8')) as typeof envelope
  } catch {
    throw new Error('the connection service answered a mailbox message with nothing readable')
  }
  if (envelope.type !== 'connect.error') return { ok: true }
  const code = envelope.body?.code ?? 'MESH_INTERNAL'
  // Not a refusal of the message (a plain Error, not a MeshError): it stays at the relay.
  if (TRANSIENT.has(code)) throw new Error(`the node cannot take a mailbox message now (${code})`)
  return { ok: false, code: code as MeshErrorCode, message: envelope.body?.message ?? '' }
}
