import canonicalize from 'canonicalize'
import { randomBytes, toBase64url, utf8 } from './bytes.ts'
import { type HumanKey, sign } from './human-key.ts'

/**
 * A human's signed act, made in the browser exactly as src/connections/human-act.ts
 * makes it: `{act, iss, aud, with, nonce, iat, exp}` signed (Ed25519, base64url) over
 * its RFC 8785 canonical JSON; the encoded form is the base64url of the canonical JSON
 * of the act with its `sig`. The node verifies it and never holds the key.
 */
export const HUMAN_ACTS = {
  connect: 'mesh/connect',
  accept: 'connection/accept',
  decline: 'connection/decline',
  disconnect: 'connection/disconnect',
  roomShare: 'room/share',
} as const

export const ACT_TTL_SECONDS = 600

export interface ActOptions {
  act: string
  /** The mesh that carries out the act: the signer's own mesh. */
  aud: string
  /** A peer mesh did, a connection id, or `<room id>:<peer did>`. */
  with: string
}

function canonicalBytes(value: unknown): Uint8Array<ArrayBuffer> {
  const text = canonicalize(value)
  if (text === undefined) throw new Error('value has no canonical JSON form')
  return utf8(text)
}

export async function signAct(key: HumanKey, options: ActOptions): Promise<string> {
  const iat = Math.floor(Date.now() / 1000)
  const fields = {
    act: options.act,
    iss: key.did,
    aud: options.aud,
    with: options.with,
    nonce: toBase64url(randomBytes(16)),
    iat,
    exp: iat + ACT_TTL_SECONDS,
  }
  const sig = await sign(key, canonicalBytes(fields))
  return toBase64url(canonicalBytes({ ...fields, sig }))
}
