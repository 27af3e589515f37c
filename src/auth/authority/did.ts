/**
 * DID resolution for the "who you are" proof: an Ed25519 `did:key` is its own key; a
 * `did:web` is resolved over HTTPS (or plain HTTP for hosts listed in
 * `insecureHosts`, e.g. a loopback test server) to its DID document, whose `id` must
 * be the DID asked for and whose Ed25519 verification methods (controlled by that
 * DID) are its keys. Every key is handed back as the equivalent did:key, so that
 * signatures are checked by the identity module's node:crypto path whatever the method.
 *
 * A did:web names a host, port and path, and anyone can put one in a request (an
 * invoker, a proof's issuer, a credential's issuer), so a fetch is a request an
 * attacker chose. Hence:
 *
 * - the host's addresses are looked up once (all of them), every one must be public
 *   (no loopback, private, link-local, CGNAT, ULA, multicast, mapped or documentation
 *   range) unless `allowPrivate` says otherwise, and the connection is made to those
 *   checked addresses only (the lookup is pinned: a second DNS answer cannot rebind it);
 * - https only, unless the host is in `insecureHosts`; no redirects;
 * - one deadline (`timeoutMs`) for lookup, connect, headers and body together;
 * - the body is read as a stream and the connection dropped as soon as it passes
 *   `maxDocumentBytes` (a Content-Length above it is refused before reading);
 * - every answer is cached, failures too (`failureTtlMs`), in a bounded cache; one
 *   resolution per did at a time, and at most `maxConcurrent` in flight (beyond that,
 *   refused at once and not cached).
 *
 * `toResolvable()` exposes the same resolution to did-jwt / did-jwt-vc (`Resolvable`).
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { BlockList, isIP } from 'node:net'
import type { DIDDocument, DIDResolutionResult, Resolvable } from 'did-resolver'
import { base58btc } from 'multiformats/bases/base58'
import type { MeshErrorCode } from '../../errors.ts'
import { didFromPublicKey, isDidKey } from '../../identity/index.ts'
import type { Result } from './result.ts'

/** An address a host name resolved to. */
export interface ResolvedAddress {
  address: string
  family: 4 | 6
}

export interface DidResolverInit {
  /** Hosts (`host` or `host:port`) whose did:web documents are fetched over plain HTTP; default none. */
  insecureHosts?: string[]
  /**
   * Whether did:web hosts on loopback, private, link-local, ULA and other non-public
   * addresses are fetched: `true` for any host, or a list of hosts (`host` or
   * `host:port`, as in the did); default false (refused with MESH_FORBIDDEN, nothing sent).
   */
  allowPrivate?: boolean | string[]
  /** Lookup, connect, headers and body of one document together; default 5 000 ms. */
  timeoutMs?: number
  /** How long a resolved did:web document is kept; default 300 000 ms. */
  cacheTtlMs?: number
  /** How long a failed resolution is remembered (not retried); default 60 000 ms. */
  failureTtlMs?: number
  /** Most did:web answers (documents and failures) kept; default 1 000. */
  maxCacheEntries?: number
  /** Largest document accepted; default 64 KiB. */
  maxDocumentBytes?: number
  /** did:web resolutions in flight at once; more are refused at once (MESH_UNAVAILABLE); default 8. */
  maxConcurrent?: number
  /** Host name → addresses; default `dns.lookup` with `all: true`. */
  lookup?: (hostname: string) => Promise<ResolvedAddress[]>
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

// Every range a did:web must not reach unless allowed: not the public internet. Two
// lists: a BlockList matches IPv4 addresses against IPv4-mapped IPv6 rules.
const NON_PUBLIC_V4 = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  NON_PUBLIC_V4.addSubnet(net, prefix, 'ipv4')
}
const NON_PUBLIC_V6 = new BlockList()
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['::ffff:0:0', 96], // IPv4-mapped: a public host has no reason to answer with one
  ['64:ff9b::', 96], // NAT64
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 32], // Teredo
  ['2001:db8::', 32],
  ['2002::', 16], // 6to4
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10],
  ['ff00::', 8], // multicast
] as const) {
  NON_PUBLIC_V6.addSubnet(net, prefix, 'ipv6')
}

/** Whether `address` (an IP literal) is outside the public internet. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 4) return NON_PUBLIC_V4.check(address, 'ipv4')
  if (family === 6) return NON_PUBLIC_V6.check(address, 'ipv6')
  return true
}

type CacheEntry = { until: number; result: DidResult }

export class DidResolver {
  readonly #insecure: Set<string>
  readonly #allowPrivate: true | Set<string>
  readonly #timeoutMs: number
  readonly #ttl: number
  readonly #failureTtl: number
  readonly #max: number
  readonly #maxBytes: number
  readonly #maxConcurrent: number
  readonly #lookup: (hostname: string) => Promise<ResolvedAddress[]>
  readonly #now: () => number
  readonly #cache = new Map<string, CacheEntry>()
  readonly #inflight = new Map<string, Promise<DidResult>>()
  /** Documents actually requested over the network (for tests and metrics). */
  fetches = 0

  constructor(init: DidResolverInit = {}) {
    this.#insecure = new Set(init.insecureHosts ?? [])
    this.#allowPrivate =
      init.allowPrivate === true ? true : new Set(Array.isArray(init.allowPrivate) ? init.allowPrivate : [])
    this.#timeoutMs = init.timeoutMs ?? 5_000
    this.#ttl = init.cacheTtlMs ?? 300_000
    this.#failureTtl = init.failureTtlMs ?? 60_000
    this.#max = Math.max(1, init.maxCacheEntries ?? 1_000)
    this.#maxBytes = init.maxDocumentBytes ?? 64 * 1024
    this.#maxConcurrent = Math.max(1, init.maxConcurrent ?? 8)
    this.#lookup = init.lookup ?? defaultLookup
    this.#now = init.now ?? Date.now
  }

  /** Resolves a did:key (locally) or a did:web (over HTTP(S), cached); never throws. */
  async resolve(did: string): Promise<DidResult> {
    if (isDidKey(did)) return { ok: didKeyDocument(did) }
    if (typeof did === 'string' && (did as string).startsWith('did:web:')) {
      const hit = this.#cache.get(did)
      if (hit !== undefined) {
        if (this.#now() < hit.until) return hit.result
        this.#cache.delete(did)
      }
      const running = this.#inflight.get(did)
      if (running !== undefined) return running
      if (this.#inflight.size >= this.#maxConcurrent) {
        // Our load, not the DID's fault: not cached.
        return fail('MESH_UNAVAILABLE', 'too many did:web resolutions in progress; retry later', {
          did: (did as string).slice(0, 256),
          reason: 'busy',
        })
      }
      const run = this.#resolveWeb(did)
        .catch((err: unknown) =>
          fail('MESH_UNAVAILABLE', 'did:web document could not be fetched', {
            did,
            cause: (err as Error).message,
          }),
        )
        .then((result) => {
          this.#remember(did, result)
          return result
        })
        .finally(() => this.#inflight.delete(did))
      this.#inflight.set(did, run)
      return run
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
    return this.#target(did)?.url
  }

  #target(did: string): { url: string; host: string; hostname: string } | undefined {
    const match = DID_WEB_PATTERN.exec(did)
    if (match === null) return undefined
    let host: string
    let path: string[]
    try {
      host = decodeURIComponent(match[1] as string)
      path = (match[2] as string)
        .split(':')
        .filter((s) => s !== '')
        .map((s) => decodeURIComponent(s))
    } catch {
      return undefined
    }
    // A decoded segment must stay one path segment.
    if (path.some((s) => s === '.' || s === '..' || /[/?#\\]/.test(s))) return undefined
    const hostname = host.split(':')[0] as string
    const scheme = this.#insecure.has(host) ? 'http' : 'https'
    const url =
      path.length === 0
        ? `${scheme}://${host}/.well-known/did.json`
        : `${scheme}://${host}/${path.map((s) => encodeURIComponent(s)).join('/')}/did.json`
    return { url, host, hostname }
  }

  #remember(did: string, result: DidResult): void {
    const ttl = result.ok !== undefined ? this.#ttl : this.#failureTtl
    if (ttl <= 0) return
    this.#cache.delete(did)
    while (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value as string)
    this.#cache.set(did, { until: this.#now() + ttl, result })
  }

  #privateAllowed(host: string, hostname: string): boolean {
    return this.#allowPrivate === true || this.#allowPrivate.has(host) || this.#allowPrivate.has(hostname)
  }

  async #resolveWeb(did: string): Promise<DidResult> {
    const target = this.#target(did)
    if (target === undefined) return fail('MESH_BAD_REQUEST', 'malformed did:web', { did })
    const { url, host, hostname } = target
    const signal = AbortSignal.timeout(this.#timeoutMs)
    let addresses: ResolvedAddress[]
    const family = isIP(hostname)
    if (family !== 0) {
      addresses = [{ address: hostname, family: family as 4 | 6 }]
    } else {
      try {
        addresses = await abortable(this.#lookup(hostname), signal)
      } catch (err) {
        return fail('MESH_UNAVAILABLE', 'did:web host could not be resolved', {
          did,
          host,
          cause: (err as Error).message,
        })
      }
      if (addresses.length === 0) {
        return fail('MESH_UNAVAILABLE', 'did:web host has no address', { did, host })
      }
    }
    if (!this.#privateAllowed(host, hostname)) {
      // The address itself is not told: the answer goes to whoever named the host.
      if (addresses.some((a) => isNonPublicAddress(a.address))) {
        return fail('MESH_FORBIDDEN', 'did:web host is not on a public address; not fetched', {
          did,
          host,
          reason: 'non-public',
        })
      }
    }
    this.fetches++
    const got = await fetchCapped(url, addresses, { signal, maxBytes: this.#maxBytes })
    if (got.error !== undefined) {
      if (got.error.tooLarge) {
        return fail('MESH_SIGNATURE_MISMATCH', 'did:web document is too large', {
          did,
          bytes: got.error.bytes,
          maxBytes: this.#maxBytes,
        })
      }
      return fail('MESH_UNAVAILABLE', got.error.message, {
        did,
        url,
        ...(got.error.status === undefined ? {} : { status: got.error.status }),
      })
    }
    let document: DIDDocument
    try {
      document = JSON.parse(got.ok) as DIDDocument
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

async function defaultLookup(hostname: string): Promise<ResolvedAddress[]> {
  const found = await dnsLookup(hostname, { all: true, verbatim: true })
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

type Fetched = Result<string, { message: string; status?: number; tooLarge?: boolean; bytes?: number }>

/**
 * GET `url` from exactly `addresses` (the lookup is pinned, so the connection goes to
 * the addresses that were checked), reading at most `maxBytes` of body: the connection
 * is destroyed the moment the body passes it. Never throws.
 */
function fetchCapped(
  url: string,
  addresses: ResolvedAddress[],
  options: { signal: AbortSignal; maxBytes: number },
): Promise<Fetched> {
  return new Promise<Fetched>((resolve) => {
    let settled = false
    const settle = (result: Fetched) => {
      if (settled) return
      settled = true
      resolve(result)
    }
    const request = url.startsWith('https:') ? httpsRequest : httpRequest
    const req = request(
      url,
      {
        method: 'GET',
        agent: false,
        signal: options.signal,
        headers: { accept: 'application/did+json, application/json' },
        lookup: ((_hostname: string, opts: { all?: boolean }, callback: (...args: unknown[]) => void) => {
          if (opts.all === true) callback(null, addresses)
          else
            callback(
              null,
              (addresses[0] as ResolvedAddress).address,
              (addresses[0] as ResolvedAddress).family,
            )
        }) as never,
      },
      (res) => {
        const status = res.statusCode ?? 0
        if (status !== 200) {
          req.destroy()
          settle({
            error: { message: `did:web document fetch failed with HTTP ${status}`, status },
          })
          return
        }
        const declared = Number(res.headers['content-length'])
        if (Number.isFinite(declared) && declared > options.maxBytes) {
          req.destroy()
          settle({ error: { message: 'did:web document is too large', tooLarge: true, bytes: declared } })
          return
        }
        const chunks: Buffer[] = []
        let bytes = 0
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length
          if (bytes > options.maxBytes) {
            req.destroy()
            settle({ error: { message: 'did:web document is too large', tooLarge: true, bytes } })
            return
          }
          chunks.push(chunk)
        })
        res.on('end', () => settle({ ok: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', (err) =>
          settle({ error: { message: `did:web document could not be read: ${err.message}` } }),
        )
        res.on('close', () => settle({ error: { message: 'did:web document fetch was cut short' } }))
      },
    )
    req.on('error', (err) => {
      const timedOut = options.signal.aborted
      settle({
        error: {
          message: timedOut
            ? 'did:web document fetch timed out'
            : `did:web document could not be fetched: ${err.message}`,
        },
      })
    })
    req.end()
  })
}

function fail(code: MeshErrorCode, message: string, details: Record<string, unknown>): DidResult {
  return { error: { code, message, details } }
}
