import { randomBytes } from 'node:crypto'
import { BadRequestError, SignatureMismatchError } from '../errors.ts'
import { type Ed25519KeyPair, isDidKey, signCanonical, verifyCanonical } from '../identity/index.ts'
import { lazyValidator } from '../schema.ts'
import { open, SEALED_OVERHEAD, seal } from './sealed.ts'

/**
 * One item of store and forward (SPEC §10):
 *
 * ```
 * {v: 1, id, origin, recipient, expiresAt, sealed, sig}
 * ```
 *
 * - `id`: 16 random bytes, base64url; the recipient takes an id from one origin once.
 * - `origin`: the depositing mesh's did:key; `recipient`: the mesh it is for.
 * - `expiresAt`: ms since the epoch; nobody keeps or takes it after that.
 * - `sealed`: base64url of a sealed box (mailbox/sealed.ts) to `recipient`: the relay cannot read it.
 * - `sig`: `origin`'s Ed25519 signature over the RFC 8785 canonical JSON of every other
 *   field (sealed bytes, recipient, id, expiry): the relay cannot forge, alter, re-address
 *   or extend an item.
 */
export const MAILBOX_ITEM_VERSION = 1

/** The largest plaintext a mailbox carries: a whole envelope (64 KiB). */
export const MAX_MAILBOX_PLAINTEXT = 64 * 1024
/** The largest item on the wire: the plaintext sealed, in base64url, with its fields. */
export const MAX_MAILBOX_ITEM_BYTES = Math.ceil(((MAX_MAILBOX_PLAINTEXT + SEALED_OVERHEAD) * 4) / 3) + 1024

export interface MailboxItem {
  v: typeof MAILBOX_ITEM_VERSION
  id: string
  origin: string
  recipient: string
  expiresAt: number
  sealed: string
  sig: string
}

const DID = { type: 'string', maxLength: 128, pattern: '^did:key:z[1-9A-HJ-NP-Za-km-z]+$' } as const

export const mailboxItemSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'id', 'origin', 'recipient', 'expiresAt', 'sealed', 'sig'],
  properties: {
    v: { const: MAILBOX_ITEM_VERSION },
    id: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' },
    origin: DID,
    recipient: DID,
    expiresAt: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    sealed: {
      type: 'string',
      minLength: Math.ceil((SEALED_OVERHEAD * 4) / 3),
      maxLength: MAX_MAILBOX_ITEM_BYTES,
      pattern: '^[A-Za-z0-9_-]+$',
    },
    sig: { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' },
  },
} as const

export const validMailboxItem = lazyValidator<MailboxItem>(mailboxItemSchema)

/** Seals `plaintext` to `recipient` and signs the item as `key` (the origin). */
export function createMailboxItem(
  key: Ed25519KeyPair,
  recipient: string,
  plaintext: Uint8Array,
  options: { expiresAt: number; id?: string },
): MailboxItem {
  if (plaintext.byteLength > MAX_MAILBOX_PLAINTEXT) {
    throw new BadRequestError('mailbox item is too large', {
      size: plaintext.byteLength,
      maxBytes: MAX_MAILBOX_PLAINTEXT,
    })
  }
  const content = {
    v: MAILBOX_ITEM_VERSION,
    id: options.id ?? randomBytes(16).toString('base64url'),
    origin: key.did,
    recipient,
    expiresAt: options.expiresAt,
    sealed: Buffer.from(seal(recipient, plaintext)).toString('base64url'),
  } as const
  return { ...content, sig: signCanonical(key, content) }
}

/**
 * Checks an item's shape and its origin's signature (what a relay checks before it keeps
 * one, and the recipient before it opens one): MESH_BAD_REQUEST, MESH_SIGNATURE_MISMATCH.
 */
export function checkMailboxItem(value: unknown): MailboxItem {
  if (!validMailboxItem(value)) {
    const first = validMailboxItem.errors?.[0]
    throw new BadRequestError(`invalid mailbox item: ${first?.instancePath || '/'} ${first?.message ?? ''}`)
  }
  if (!isDidKey(value.origin) || !isDidKey(value.recipient)) {
    throw new BadRequestError('mailbox item origin and recipient must be Ed25519 did:key')
  }
  const { sig, ...content } = value
  if (!verifyCanonical(value.origin, content, sig)) {
    throw new SignatureMismatchError('mailbox item signature does not verify against its origin', {
      origin: value.origin,
      id: value.id,
    })
  }
  return value
}

/** The plaintext of an item sealed to `key` (checked first with `checkMailboxItem`). */
export function openMailboxItem(key: Ed25519KeyPair, item: MailboxItem): Uint8Array {
  return open(key, Buffer.from(item.sealed, 'base64url'))
}

/** The item's size as the relay counts it against a quota: its JSON. */
export function mailboxItemBytes(item: MailboxItem): number {
  return Buffer.byteLength(JSON.stringify(item))
}
