/**
 * DID resolution for the "who you are" proof: an Ed25519 `did:key` is its own key; a
 * `did:web` is resolved over HTTPS (or plain HTTP for hosts listed in
 * `insecureHosts`, e.g. a loopback test server) to its DID document, whose `id` must
 * be the DID asked for and whose Ed25519 verification methods (controlled by that
 * DID) are its keys. Every key is handed back as the equivalent did:key, so that
 * signatures are checked by the identity module's node:crypto path whatever the method.
 *
 * `toResolvable()` exposes the same resolution to did-jwt / did-jwt-vc (`Resolvable`).
 */
import type { DIDDocument, DIDResolutionResult, Resolvable } from 'did-resolver'
import { base58btc } from 'multiformats/bases/base58'
import type { MeshErrorCode } from '../../errors.ts'
import { didFromPublicKey, isDidKey } from '../../identity/index.ts'
import type { Result } from './result.ts'

export interface DidResolverInit {
  /** default global `fetch` */
  fetch?: typeof fetch
  /** Hosts (`host` or `host:port`) whose did:web documents are fetched over plain HTTP; default none. */
  insecureHosts?: string[]
  /** Per document fetch; default 5 000 ms. */
  timeoutMs?: number
  /** How long a resolved did:web document is kept; default 300 000 ms. */
  cacheTtlMs?: number
  /** Most did:web documents kept; default 1 000. */
  maxCacheEntries?: number
  /** Largest document accepted; default 64 KiB. */
  maxDocumentBytes?: number
  /** default `Date.now` */
  now?: () => number
}

export interface ResolvedDid {
  did: string
  /** The DID's Ed25519 keys, each as a did:key, with the verification method id that names it. */
  keys: { id: string; didKey: string }[]
  document: DIDDocument
}

export interface DidFailure {
  code: MeshErrorCode
  message: string
  details: Record<string, unknown>
}

export type DidResult = Result<ResolvedDid, DidFailure>

const ED25519_TYPES = new Set([
  'Ed25519VerificationKey2018',
  'Ed25519VerificationKey2020',
  'JsonWebKey2020',
  'Multikey',
])
const DID_WEB_PATTERN = /^did:web:([A-Za-z0-9.-]+(?:%3[Aa][0-9]{1,5})?)((?::[A-Za-z0-9._~%-]+)*)$/

export class DidResolver {
  readonly #fetch: typeof fetch
  readonly #insecure: Set<string>
  readonly #timeoutMs: number
  readonly #ttl: number
  readonly #max: number
  readonly #maxBytes: number
  readonly #now: () => number
  readonly #cache = new Map<string, { at: number; result: DidResult }>()

  constructor(init: DidResolverInit = {}) {
    this.#fetch = init.fetch ?? fetch
    this.#insecure = new Set(init.insecureHosts ?? [])
    this.#timeoutMs = init.timeoutMs ?? 5_000
    this.#ttl = init.cacheTtlMs ?? 300_000
    this.#max = init.maxCacheEntries ?? 1_000
    this.#maxBytes = init.maxDocumentBytes ?? 64 * 1024
    this.#now = init.now ?? Date.now
  }

  /** Resolves a did:key (locally) or a did:web (over HTTP(S), cached); never throws. */
  async resolve(did: string): Promise<DidResult> {
    if (isDidKey(did)) return { ok: didKeyDocument(did) }
    if (typeof did === 'string' && (did as string).startsWith('did:web:')) {
      const hit = this.#cache.get(did)
      if (hit !== undefined && this.#now() - hit.at < this.#ttl) return hit.result
      const result = await this.#resolveWeb(did)
      // Only successes and "the document is wrong" are cached; an outage is retried.
      if (result.ok !== undefined || result.error.code !== 'MESH_UNAVAILABLE') {
        if (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value as string)
        this.#cache.set(did, { at: this.#now(), result })
      }
      return result
    }
    return fail('MESH_BAD_REQUEST', 'unsupported DID method (did:key Ed25519 and did:web only)', {
      did: String(did).slice(0, 128),
    })
  }

  /** Forgets a cached did:web document (e.g. after a key rotation was announced). */
  forget(did: string): void {
    this.#cache.delete(did)
  }

  /** The URL a did:web document is fetched from. */
  documentUrl(did: string): string | undefined {
    const match = DID_WEB_PATTERN.exec(did)
    if (match === null) return undefined
    const host = decodeURIComponent(match[1] as string)
    const path = (match[2] as string)
      .split(':')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s))
    const scheme = this.#insecure.has(host) ? 'http' : 'https'
    return path.length === 0
      ? `${scheme}://${host}/.well-known/did.json`
      : `${scheme}://${host}/${path.join('/')}/did.json`
  }

  async #resolveWeb(did: string): Promise<DidResult> {
    const url = this.documentUrl(did)
    if (url === undefined) return fail('MESH_BAD_REQUEST', 'malformed did:web', { did })
    let text: string
    try {
      const response = await this.#fetch(url, {
        signal: AbortSignal.timeout(this.#timeoutMs),
        headers: { accept: 'application/did+json, application/json' },
        redirect: 'error',
      })
      if (!response.ok) {
        return fail('MESH_UNAVAILABLE', `did:web document fetch failed with HTTP ${response.status}`, {
          did,
          url,
          status: response.status,
        })
      }
      text = await response.text()
    } catch (err) {
      return fail('MESH_UNAVAILABLE', 'did:web document could not be fetched', {
        did,
        url,
        cause: (err as Error).message,
      })
    }
    if (text.length > this.#maxBytes) {
      return fail('MESH_SIGNATURE_MISMATCH', 'did:web document is too large', { did, bytes: text.length })
    }
    let document: DIDDocument
    try {
      document = JSON.parse(text) as DIDDocument
    } catch {
      return fail('MESH_SIGNATURE_MISMATCH', 'did:web document is not JSON', { did })
    }
    if (typeof document !== 'object' || document === null || document.id !== did) {
      return fail('MESH_SIGNATURE_MISMATCH', 'did:web document is for another DID', {
        did,
        documentId: (document as { id?: unknown } | null)?.id ?? null,
      })
    }
    const keys = ed25519Keys(document, did)
    if (keys.length === 0) {
      return fail('MESH_SIGNATURE_MISMATCH', 'did:web document has no Ed25519 key controlled by the DID', {
        did,
      })
    }
    return { ok: { did, keys, document } }
  }

  /** The same resolution, as did-jwt's `Resolvable`. */
  toResolvable(): Resolvable {
    return {
      resolve: async (didUrl: string): Promise<DIDResolutionResult> => {
        const did = didUrl.split('#')[0]?.split('?')[0] ?? ''
        const result = await this.resolve(did)
        if (result.error !== undefined) {
          return {
            didResolutionMetadata: { error: 'notFound', message: result.error.message },
            didDocument: null,
            didDocumentMetadata: {},
          }
        }
        return {
          didResolutionMetadata: { contentType: 'application/did+json' },
          didDocument: result.ok.document,
          didDocumentMetadata: {},
        }
      },
    }
  }
}

/** The DID document of an Ed25519 did:key (one verification method, named by its own fingerprint). */
export function didKeyDocument(did: string): ResolvedDid {
  const id = `${did}#${did.slice('did:key:'.length)}`
  const publicKeyMultibase = did.slice('did:key:'.length)
  const document: DIDDocument = {
    '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/suites/ed25519-2020/v1'],
    id: did,
    verificationMethod: [{ id, type: 'Ed25519VerificationKey2020', controller: did, publicKeyMultibase }],
    authentication: [id],
    assertionMethod: [id],
    capabilityDelegation: [id],
    capabilityInvocation: [id],
  }
  return { did, keys: [{ id, didKey: did }], document }
}

/** A did:web document serving `keys` (for tests and for a mesh that publishes one). */
export function didWebDocument(did: string, publicKeys: Uint8Array[]): DIDDocument {
  const methods = publicKeys.map((publicKey, i) => ({
    id: `${did}#key-${i + 1}`,
    type: 'Ed25519VerificationKey2020',
    controller: did,
    publicKeyMultibase: didFromPublicKey(publicKey).slice('did:key:'.length),
  }))
  return {
    '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/suites/ed25519-2020/v1'],
    id: did,
    verificationMethod: methods,
    authentication: methods.map((m) => m.id),
    assertionMethod: methods.map((m) => m.id),
    capabilityDelegation: methods.map((m) => m.id),
  }
}

function ed25519Keys(document: DIDDocument, did: string): { id: string; didKey: string }[] {
  const keys: { id: string; didKey: string }[] = []
  const methods = Array.isArray(document.verificationMethod) ? document.verificationMethod.slice(0, 32) : []
  for (const method of methods) {
    if (typeof method !== 'object' || method === null) continue
    if (method.controller !== did || !ED25519_TYPES.has(method.type)) continue
    const raw = rawKey(method as unknown as Record<string, unknown>)
    if (raw === undefined) continue
    const id = method.id.startsWith('#') ? `${did}${method.id}` : method.id
    keys.push({ id, didKey: didFromPublicKey(raw) })
  }
  return keys
}

function rawKey(method: Record<string, unknown>): Uint8Array | undefined {
  try {
    if (typeof method.publicKeyMultibase === 'string') {
      const bytes = base58btc.decode(method.publicKeyMultibase)
      if (bytes.byteLength === 34 && bytes[0] === 0xed && bytes[1] === 0x01) return bytes.subarray(2)
      if (bytes.byteLength === 32 && method.type !== 'Multikey') return bytes
      return undefined
    }
    if (typeof method.publicKeyBase58 === 'string') {
      const bytes = base58btc.baseDecode(method.publicKeyBase58)
      return bytes.byteLength === 32 ? bytes : undefined
    }
    const jwk = method.publicKeyJwk as { kty?: string; crv?: string; x?: string } | undefined
    if (jwk?.kty === 'OKP' && jwk.crv === 'Ed25519' && typeof jwk.x === 'string') {
      const bytes = new Uint8Array(Buffer.from(jwk.x, 'base64url'))
      return bytes.byteLength === 32 ? bytes : undefined
    }
  } catch {
    return undefined
  }
  return undefined
}

function fail(code: MeshErrorCode, message: string, details: Record<string, unknown>): DidResult {
  return { error: { code, message, details } }
}
