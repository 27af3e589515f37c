import { fromBase64url, toBase64url } from '../../../api/base64url.ts'
import type { ApiSigner } from '../../../api/client.ts'
import { didFromPublicKey, pkcs8FromSeed } from '../../../api/did-key.ts'
import { isKnownKeyFormat, type KeyFile, keyFileOf } from '../../../api/key-file.ts'

/**
 * The human's Ed25519 key, held in this browser (WebCrypto). The private key is
 * imported non-extractable: once stored, not even this page can read it back.
 */
export interface HumanKey {
  /** The keystore name, e.g. `alpha-architect`. */
  name: string
  did: string
  privateKey: CryptoKey
}

/** Imports a 32-byte Ed25519 seed; the private key stays non-extractable. */
export async function keyFromSeed(seed: Uint8Array, name: string): Promise<HumanKey> {
  if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes')
  const pkcs8 = pkcs8FromSeed(seed)
  // Imported once extractable, only to learn the public key (the JWK's `x`).
  const probe = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign'])
  const jwk = await crypto.subtle.exportKey('jwk', probe)
  if (typeof jwk.x !== 'string') throw new Error('this browser did not give the Ed25519 public key')
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign'])
  return { name, did: didFromPublicKey(fromBase64url(jwk.x)), privateKey }
}

/** Reads a keystore file's text; refuses anything that is not a matching Ed25519 human key. */
export async function keyFromKeyFile(text: string): Promise<HumanKey> {
  let file: Partial<KeyFile>
  try {
    file = JSON.parse(text) as Partial<KeyFile>
  } catch {
    throw new Error('the key file is not JSON')
  }
  if (!isKnownKeyFormat(file)) {
    throw new Error('the key file has an unknown format (expected version 1, type Ed25519)')
  }
  if (file.role === 'mesh') throw new Error('this is a mesh key, not a human key: sign in with your own key')
  const key = await keyFromSeed(fromBase64url(file.seed), file.name ?? 'imported')
  if (file.did !== undefined && key.did !== file.did) {
    throw new Error('the key file is corrupt: its did does not match its seed')
  }
  return key
}

/** A new key, and the key file to save (the only moment the seed is visible). */
export async function generateKey(name: string): Promise<{ key: HumanKey; file: KeyFile }> {
  const seed = crypto.getRandomValues(new Uint8Array(32))
  const key = await keyFromSeed(seed, name)
  const file = keyFileOf('human', name, toBase64url(seed), key.did)
  seed.fill(0)
  return { key, file }
}

/** Ed25519 over `bytes` with the key held in this browser: the raw 64-byte signature. */
export async function signBytes(key: HumanKey, bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key.privateKey, bytes as BufferSource))
}

/** The same signature, base64url, as the API's fields carry it. */
export async function sign(key: HumanKey, bytes: Uint8Array): Promise<string> {
  return toBase64url(await signBytes(key, bytes))
}

/** The key as the typed client's session signer (`ApiClient.signIn`). */
export function apiSigner(key: HumanKey): ApiSigner {
  return { did: key.did, sign: (bytes) => signBytes(key, bytes) }
}

/** True when this browser's WebCrypto signs with Ed25519. */
export async function ed25519Supported(): Promise<boolean> {
  try {
    await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])
    return true
  } catch {
    return false
  }
}

// ---- storage: IndexedDB keeps the CryptoKey object itself (structured clone) ----

const DB = 'mesh-console'
const STORE = 'keys'
const SLOT = 'current'

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1)
    request.onupgradeneeded = () => request.result.createObjectStore(STORE)
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

async function withStore<T>(
  mode: IDBTransactionMode,
  run: (store: IDBObjectStore) => IDBRequest<T>,
): Promise<T> {
  const db = await openDb()
  try {
    return await new Promise<T>((resolve, reject) => {
      const request = run(db.transaction(STORE, mode).objectStore(STORE))
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
  } finally {
    db.close()
  }
}

export async function storeKey(key: HumanKey): Promise<void> {
  await withStore('readwrite', (s) => s.put(key, SLOT))
}

export async function loadStoredKey(): Promise<HumanKey | undefined> {
  return (await withStore<HumanKey | undefined>('readonly', (s) => s.get(SLOT))) ?? undefined
}

export async function forgetKey(): Promise<void> {
  await withStore('readwrite', (s) => s.delete(SLOT))
}
