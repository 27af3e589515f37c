import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { BadRequestError, ConflictError } from '../errors.ts'
import { type KeyFile, MESH_KEY_FILE, readKeyFile, writeKeyFile } from './key-file.ts'
import { Ed25519KeyPair } from './keys.ts'
import { createRotationRecord, type RotationRecord, verifyRotationChain } from './rotation.ts'

/**
 * A mesh's key history in its data dir, next to `mesh-key.json` (always the current key):
 *
 * ```
 * mesh-keys/<did>.json   every key the mesh has held (key files, mode 0600; dir 0700)
 * key-history.json       {v:1, identity, records:[RotationRecord]}   (mode 0600)
 * ```
 *
 * A rotation writes, each step atomic (temp file, fsync, rename): the new key's file,
 * then the history with the new record, then `mesh-key.json`. A crash between the last
 * two leaves a history one key ahead of `mesh-key.json`; `loadKeyHistory` finishes the
 * rotation from the key file, so the mesh never runs a key its history does not name.
 */
export const MESH_KEYS_DIR = 'mesh-keys'
export const KEY_HISTORY_FILE = 'key-history.json'

export interface KeyHistoryFile {
  v: 1
  identity: string
  records: RotationRecord[]
}

/** A mesh's keys as loaded: the identity (genesis did), the chain, and the current key. */
export interface MeshKeyHistory {
  identity: string
  records: RotationRecord[]
  /** Every key did, oldest first; the last is `current.did`. */
  keys: string[]
  current: Ed25519KeyPair
}

/**
 * Loads the current key and its history; a data dir from before key rotation (no history
 * file) is a history of one key whose identity is that key. Finishes a rotation a crash
 * interrupted (see above); MESH_BAD_REQUEST when key and history disagree otherwise.
 */
export async function loadKeyHistory(dataDir: string): Promise<MeshKeyHistory> {
  const file = await readHistoryFile(dataDir)
  let current = await readKeyFile(join(dataDir, MESH_KEY_FILE))
  if (file === undefined) {
    return { identity: current.did, records: [], keys: [current.did], current }
  }
  const chain = verifyRotationChain(file.records, { identity: file.identity, now: Number.MAX_SAFE_INTEGER })
  const last = chain.keys.at(-1) as string
  if (current.did !== last) {
    if (chain.keys.at(-2) !== current.did) {
      throw new BadRequestError(`${MESH_KEY_FILE} is not the key ${KEY_HISTORY_FILE} names as current`, {
        key: current.did,
        history: last,
      })
    }
    current = await readKeyFile(keyPath(dataDir, last))
    await writeMeshKey(dataDir, current, 'recovered')
  }
  return { identity: chain.identity, records: chain.records, keys: chain.keys, current }
}

/**
 * Makes a new key for the mesh and records the hand-over from `history.current`; returns
 * the history as it now stands. The caller then restarts whatever runs on the key.
 */
export async function rotateMeshKey(
  dataDir: string,
  history: MeshKeyHistory,
  options: { next?: Ed25519KeyPair; now?: number } = {},
): Promise<{ history: MeshKeyHistory; record: RotationRecord }> {
  const onDisk = await loadKeyHistory(dataDir)
  if (onDisk.current.did !== history.current.did) {
    throw new ConflictError('the mesh key changed on disk since it was loaded', {
      current: onDisk.current.did,
    })
  }
  const next = options.next ?? Ed25519KeyPair.generate()
  const record = createRotationRecord(history.current, next, {
    identity: history.identity,
    seq: history.records.length + 1,
    ...(options.now !== undefined ? { ts: options.now } : {}),
  })
  const dir = join(dataDir, MESH_KEYS_DIR)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
  // The outgoing key is kept too: its file goes first, in case this is the first rotation.
  await writeKeyIfMissing(dataDir, history.current, 'retired')
  await writeKeyIfMissing(dataDir, next, 'current')
  const records = [...history.records, record]
  await writeJsonAtomic(join(dataDir, KEY_HISTORY_FILE), {
    v: 1,
    identity: history.identity,
    records,
  } satisfies KeyHistoryFile)
  await writeMeshKey(dataDir, next, 'rotated')
  return {
    record,
    history: { identity: history.identity, records, keys: [...history.keys, next.did], current: next },
  }
}

/** A retired key of this mesh, from `mesh-keys/` (to sign its "moved" DHT record). */
export async function readRetiredKey(dataDir: string, did: string): Promise<Ed25519KeyPair> {
  return readKeyFile(keyPath(dataDir, did))
}

function keyPath(dataDir: string, did: string): string {
  // A did:key is base58 after the prefix: safe as a file name once the colons go.
  return join(dataDir, MESH_KEYS_DIR, `${did.replaceAll(':', '_')}.json`)
}

function keyFile(key: Ed25519KeyPair, name: string): KeyFile {
  return {
    version: 1,
    type: 'Ed25519',
    role: 'mesh',
    name,
    seed: Buffer.from(key.seed).toString('base64url'),
    did: key.did,
    createdAt: new Date().toISOString(),
  }
}

async function writeKeyIfMissing(dataDir: string, key: Ed25519KeyPair, name: string): Promise<void> {
  const path = keyPath(dataDir, key.did)
  try {
    await stat(path)
    return
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await writeKeyFile(path, keyFile(key, name))
}

async function writeMeshKey(dataDir: string, key: Ed25519KeyPair, name: string): Promise<void> {
  await writeKeyFile(join(dataDir, MESH_KEY_FILE), keyFile(key, name))
}

async function readHistoryFile(dataDir: string): Promise<KeyHistoryFile | undefined> {
  const path = join(dataDir, KEY_HISTORY_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  let file: KeyHistoryFile
  try {
    file = JSON.parse(text) as KeyHistoryFile
  } catch {
    throw new BadRequestError(`${path} is not JSON`, { path })
  }
  if (file?.v !== 1 || typeof file.identity !== 'string' || !Array.isArray(file.records)) {
    throw new BadRequestError(`${path} has an unknown format`, { path })
  }
  return file
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(`${JSON.stringify(value, null, 2)}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, path)
}
