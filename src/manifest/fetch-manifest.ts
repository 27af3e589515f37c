import { multiaddr } from '@multiformats/multiaddr'
import {
  BadRequestError,
  MeshError,
  SignatureMismatchError,
  TooLargeError,
  UnavailableError,
} from '../errors.ts'
import { isDidKey, peerIdFromDid } from '../identity/index.ts'
import { type MeshManifest, verifyManifest } from './mesh-manifest.ts'

/**
 * Fetching another mesh's manifest by URL (SPEC §10 "reachable by URL"): `mesh connect
 * https://host`, a peer's key refresh. The URL is the mesh's HTTP base (the manifest is
 * at `<base>/.well-known/mesh-manifest.json`) or the manifest's own URL (ending `.json`).
 *
 * Bounded: http(s) only, at most `maxRedirects` redirects (each http(s)), `timeoutMs` for
 * the whole exchange, `maxBytes` of body. Then checked: JSON of the manifest's shape,
 * `peerId` the key of `did`, and the signature by `did`'s own key.
 */

export const MANIFEST_FETCH_LIMITS = {
  maxBytes: 256 * 1024,
  timeoutMs: 10_000,
  maxRedirects: 3,
  maxUrlLength: 2048,
  maxMultiaddrs: 32,
} as const

export const MANIFEST_PATH = '/.well-known/mesh-manifest.json'

export interface FetchManifestOptions {
  signal?: AbortSignal
  timeoutMs?: number
  maxBytes?: number
  maxRedirects?: number
}

/** A verified manifest and the URL it was finally read from. */
export interface FetchedManifest {
  manifest: MeshManifest
  /** The manifest's URL, after redirects. */
  url: string
}

/** True for a target that is an http(s) URL rather than a did or a multiaddr. */
export function isHttpTarget(target: string): boolean {
  return /^https?:\/\//i.test(target)
}

/** The manifest URL for `url`: itself when it names a `.json`, else `<url>/.well-known/mesh-manifest.json`. */
export function manifestUrlOf(url: string): URL {
  let target: URL
  if (url.length > MANIFEST_FETCH_LIMITS.maxUrlLength) {
    throw new BadRequestError('the manifest URL is too long', { length: url.length })
  }
  try {
    target = new URL(url)
  } catch {
    throw new BadRequestError('not a URL', { url: url.slice(0, 256) })
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new BadRequestError('a manifest URL is http or https', { url: url.slice(0, 256) })
  }
  if (target.username !== '' || target.password !== '') {
    throw new BadRequestError('a manifest URL carries no credentials', { host: target.host })
  }
  target.hash = ''
  if (!target.pathname.endsWith('.json')) {
    target.search = ''
    target.pathname = `${target.pathname.replace(/\/+$/, '')}${MANIFEST_PATH}`
  }
  return target
}

/** Fetches, bounds and verifies the manifest at `url` (see the module comment); each failure its code. */
export async function fetchManifest(
  url: string,
  options: FetchManifestOptions = {},
): Promise<FetchedManifest> {
  let target = manifestUrlOf(url)
  const maxRedirects = options.maxRedirects ?? MANIFEST_FETCH_LIMITS.maxRedirects
  const signal = AbortSignal.any([
    AbortSignal.timeout(options.timeoutMs ?? MANIFEST_FETCH_LIMITS.timeoutMs),
    ...(options.signal !== undefined ? [options.signal] : []),
  ])
  const where = () => ({ url: target.toString() })
  let res: Response
  for (let hops = 0; ; hops++) {
    try {
      res = await fetch(target, { signal, redirect: 'manual', headers: { accept: 'application/json' } })
    } catch (err) {
      throw new UnavailableError(`cannot fetch the manifest: ${(err as Error).message}`, where())
    }
    if (res.status < 300 || res.status >= 400) break
    await res.body?.cancel().catch(() => {})
    const location = res.headers.get('location')
    if (location === null)
      throw new UnavailableError(`the manifest URL answered ${res.status} without a location`, where())
    if (hops >= maxRedirects) throw new UnavailableError(`more than ${maxRedirects} redirects`, where())
    const next = new URL(location, target)
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new BadRequestError('a manifest redirect leads out of http(s)', {
        location: location.slice(0, 256),
      })
    }
    target = next
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {})
    throw new UnavailableError(`the manifest URL answered HTTP ${res.status}`, {
      ...where(),
      status: res.status,
    })
  }
  const text = await readBounded(res, options.maxBytes ?? MANIFEST_FETCH_LIMITS.maxBytes, where())
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new BadRequestError('the manifest is not JSON', where())
  }
  return { manifest: checkManifest(value, where()), url: target.toString() }
}

/** The manifest's shape as far as connecting needs it, its key and its signature. */
export function checkManifest(value: unknown, details: Record<string, unknown> = {}): MeshManifest {
  const m = value as Partial<MeshManifest> | null
  const bad = (why: string): never => {
    throw new BadRequestError(`the manifest ${why}`, details)
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) bad('is not a JSON object')
  const manifest = m as MeshManifest
  if (!isDidKey(manifest.did)) bad('did is not an Ed25519 did:key')
  if (typeof manifest.name !== 'string' || manifest.name.length > 256) bad('name is not a short string')
  const libp2p = manifest.endpoints?.libp2p
  if (
    !Array.isArray(libp2p) ||
    libp2p.length > MANIFEST_FETCH_LIMITS.maxMultiaddrs ||
    !libp2p.every((a) => typeof a === 'string' && a.length <= 512)
  ) {
    bad('endpoints.libp2p is not a short list of addresses')
  }
  if (!Array.isArray(manifest.keyHistory)) bad('has no keyHistory')
  if (typeof manifest.signature !== 'object' || manifest.signature === null) bad('is not signed')
  if (manifest.peerId !== peerIdFromDid(manifest.did).toString()) {
    throw new SignatureMismatchError('the manifest peerId is not the key of its did', {
      ...details,
      did: manifest.did,
    })
  }
  if (manifest.signature.keyId !== manifest.did) {
    throw new SignatureMismatchError('the manifest is signed by another key than its did', {
      ...details,
      did: manifest.did,
      keyId: String(manifest.signature.keyId).slice(0, 128),
    })
  }
  let verified = false
  try {
    verified = verifyManifest(manifest)
  } catch {
    verified = false
  }
  if (!verified) {
    throw new SignatureMismatchError('the manifest signature does not verify with its did', {
      ...details,
      did: manifest.did,
    })
  }
  return manifest
}

/**
 * The manifest's libp2p addresses that lead to its own key: each ends in `/p2p/<its peer
 * id>` (added when missing); those naming another peer or not parsing are dropped.
 */
export function dialableAddresses(manifest: MeshManifest): string[] {
  const peerId = manifest.peerId
  const out: string[] = []
  for (const address of manifest.endpoints.libp2p) {
    try {
      const ma = multiaddr(address)
      const p2p = ma.getComponents().filter((c) => c.name === 'p2p')
      if (p2p.some((c) => c.value !== peerId)) continue
      const full = p2p.length === 0 ? `${ma.toString()}/p2p/${peerId}` : ma.toString()
      if (!out.includes(full)) out.push(full)
    } catch {}
  }
  return out
}

async function readBounded(
  res: Response,
  maxBytes: number,
  details: Record<string, unknown>,
): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN)
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {})
    throw new TooLargeError(`the manifest is ${declared} bytes, limit ${maxBytes}`, details)
  }
  if (res.body === null) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = res.body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > maxBytes) {
        await reader.cancel().catch(() => {})
        throw new TooLargeError(`the manifest is over ${maxBytes} bytes`, details)
      }
      chunks.push(value)
    }
  } catch (err) {
    if (err instanceof MeshError) throw err
    throw new UnavailableError(`reading the manifest failed: ${(err as Error).message}`, details)
  }
  return Buffer.concat(chunks).toString('utf8')
}
