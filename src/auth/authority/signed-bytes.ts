/**
 * The bytes a UCAN's issuer signed, built directly from the decoded model.
 *
 * dag-ucan signs `base64url(dag-json(header)) "." base64url(dag-json(payload))` (the
 * JWT form, even for a dag-cbor UCAN) and rebuilds it on every verification through
 * cborg's generic JSON encoder, multibase encoders and CID string caches; that was as
 * costly as the Ed25519 check itself. `signedBytes` writes the same bytes with
 * `JSON.stringify` and native base64url for the values UCANs carry here (strings,
 * safe integers, booleans, null, arrays and plain maps, CIDv1 proofs) and returns
 * `undefined` for anything else (bytes, links or floats in caveats or facts, a
 * non-EdDSA signature, a null `exp`…), for which the caller uses dag-ucan's own
 * `verifySignature`. The result is byte-for-byte dag-ucan's (test/auth/signed-bytes.test.ts).
 */
import { EDDSA_SIGNATURE_CODE } from '../../api/ucan.ts'
import { cidString } from './token.ts'

const EDDSA = EDDSA_SIGNATURE_CODE

interface Model {
  v: unknown
  iss: { did(): string }
  aud: { did(): string }
  att: unknown
  exp: unknown
  nbf?: unknown
  nnc?: unknown
  fct: unknown[]
  prf: Array<{ version: number; bytes: Uint8Array }>
  s: { code: number }
}

const headers = new Map<string, string>()

function header(version: string): string {
  let value = headers.get(version)
  if (value === undefined) {
    // dag-json sorts map keys: alg, typ, ucv
    value = Buffer.from(`{"alg":"EdDSA","typ":"JWT","ucv":${JSON.stringify(version)}}`).toString('base64url')
    if (headers.size >= 16) headers.clear()
    headers.set(version, value)
  }
  return value
}

/**
 * The signed bytes of a decoded UCAN model whose issuer and audience dids are
 * `issuer` and `audience`, or `undefined` when only dag-ucan can tell.
 */
export function signedBytes(model: Model, issuer: string, audience: string): Buffer | undefined {
  if (model.s.code !== EDDSA || typeof model.v !== 'string') return undefined
  if (!Number.isSafeInteger(model.exp)) return undefined
  const att = json(model.att)
  if (att === undefined) return undefined
  // keys in dag-json order: att, aud, exp, fct, iss, nbf, nnc, prf
  let payload = `{"att":${att},"aud":${JSON.stringify(audience)},"exp":${model.exp}`
  if (model.fct.length > 0) {
    const fct = json(model.fct)
    if (fct === undefined) return undefined
    payload += `,"fct":${fct}`
  }
  payload += `,"iss":${JSON.stringify(issuer)}`
  if (model.nbf) {
    if (!Number.isSafeInteger(model.nbf)) return undefined
    payload += `,"nbf":${model.nbf}`
  }
  if (model.nnc) {
    if (typeof model.nnc !== 'string') return undefined
    payload += `,"nnc":${JSON.stringify(model.nnc)}`
  }
  payload += ',"prf":['
  for (let i = 0; i < model.prf.length; i++) {
    const proof = model.prf[i] as { version: number; bytes: Uint8Array }
    if (proof.version !== 1) return undefined
    payload += `${i === 0 ? '' : ','}"${cidString(proof.bytes)}"`
  }
  payload += ']}'
  return Buffer.from(`${header(model.v)}.${Buffer.from(payload).toString('base64url')}`, 'latin1')
}

/** dag-json of plain data (what cborg's JSON encoder writes), or undefined for anything else. */
function json(value: unknown, depth = 0): string | undefined {
  if (depth > 32) return undefined
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'number':
      return Number.isSafeInteger(value) ? String(value) : undefined
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object': {
      if (value === null) return 'null'
      if (Array.isArray(value)) {
        let out = '['
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) return undefined
          const item = json(value[i], depth + 1)
          if (item === undefined) return undefined
          out += i === 0 ? item : `,${item}`
        }
        return `${out}]`
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return undefined
      const keys = Object.keys(value)
      if (keys.includes('/')) return undefined
      keys.sort()
      let out = '{'
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string
        const item = json((value as Record<string, unknown>)[key], depth + 1)
        if (item === undefined) return undefined
        out += `${i === 0 ? '' : ','}${JSON.stringify(key)}:${item}`
      }
      return `${out}}`
    }
    default:
      return undefined
  }
}
