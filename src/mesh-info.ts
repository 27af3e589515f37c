import { access, chmod, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { BadRequestError, ConflictError, NotFoundError } from './errors.ts'
import {
  createKeyFile,
  type Ed25519KeyPair,
  type HumanKeystore,
  isDidKey,
  loadKeyHistory,
  MESH_KEY_FILE,
  type MeshKeyHistory,
} from './identity/index.ts'
import type { Logger } from './log.ts'
import { MeshStore } from './store/index.ts'

/** What `mesh init` records about a mesh, beside its key. */
export interface MeshInfo {
  name: string
  architectDid: string
  /** Name of the architect's key in the keystore, when init created it there. */
  architectKeyName?: string
  createdAt: string
}

const MESH_INFO_KEY = 'mesh-info'
export const STORE_DIR = 'db'

export function meshKeyPath(dataDir: string): string {
  return join(dataDir, MESH_KEY_FILE)
}

/**
 * The store of the data dir, unopened. A data dir with a mesh key holds an existing mesh,
 * whose store must be there: it is opened without `createIfMissing`, so a lost or damaged
 * store is reported (MESH_STORE_DAMAGED) instead of replaced by an empty one.
 */
export async function meshStore(dataDir: string, logger?: Logger): Promise<MeshStore> {
  const exists = await access(meshKeyPath(dataDir)).then(
    () => true,
    () => false,
  )
  return new MeshStore({
    path: join(dataDir, STORE_DIR),
    createIfMissing: !exists,
    ...(logger !== undefined ? { logger } : {}),
  })
}

/** Runs `fn` on the data dir's store, opened for it and closed after (`mesh init` and other offline commands). */
export async function withMeshStore<T>(dataDir: string, fn: (store: MeshStore) => Promise<T>): Promise<T> {
  const store = await meshStore(dataDir)
  await store.open()
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

export function validateMeshName(name: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) {
    throw new BadRequestError('a mesh name is 1–63 lowercase letters, digits or dashes', { name })
  }
  return name
}

export async function readMeshInfo(store: MeshStore): Promise<MeshInfo | undefined> {
  return store.sublevel<MeshInfo>('meta').get(MESH_INFO_KEY)
}

export interface InitMeshOptions {
  store: MeshStore
  dataDir: string
  name: string
  /** Enrol an existing human key as architect; otherwise one is created in the keystore. */
  architectDid?: string
  keystore: HumanKeystore
}

/**
 * Creates a mesh: its key in the data dir and its info in the store. The architect is
 * a human, so a new architect key goes to the keystore, never into the data dir.
 */
export async function initMesh(
  options: InitMeshOptions,
): Promise<{ key: Ed25519KeyPair; info: MeshInfo; architectKeyPath?: string }> {
  const name = validateMeshName(options.name)
  if (options.architectDid !== undefined && !isDidKey(options.architectDid)) {
    throw new BadRequestError('--architect-did must be an Ed25519 did:key', { did: options.architectDid })
  }
  if ((await readMeshInfo(options.store)) !== undefined) {
    throw new ConflictError(`${options.dataDir} already holds a mesh`, { dataDir: options.dataDir })
  }
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 })
  await chmod(options.dataDir, 0o700)
  const key = await createKeyFile(meshKeyPath(options.dataDir), 'mesh', name)
  let architectDid = options.architectDid
  let architectKeyName: string | undefined
  let architectKeyPath: string | undefined
  if (architectDid === undefined) {
    architectKeyName = `${name}-architect`
    architectDid = (await options.keystore.create(architectKeyName)).did
    architectKeyPath = options.keystore.pathOf(architectKeyName)
  }
  const info: MeshInfo = { name, architectDid, createdAt: new Date().toISOString() }
  if (architectKeyName !== undefined) info.architectKeyName = architectKeyName
  await options.store.sublevel<MeshInfo>('meta').put(MESH_INFO_KEY, info)
  return architectKeyPath === undefined ? { key, info } : { key, info, architectKeyPath }
}

/**
 * The mesh key, its key history (identity and rotation chain, see identity/key-history.ts)
 * and the info of an initialised data dir; MESH_NOT_FOUND if `mesh init` never ran.
 */
export async function loadMesh(
  store: MeshStore,
  dataDir: string,
): Promise<{ key: Ed25519KeyPair; info: MeshInfo; history: MeshKeyHistory }> {
  const info = await readMeshInfo(store)
  if (info === undefined) throw new NotFoundError(`${dataDir} holds no mesh; run mesh init`, { dataDir })
  const history = await loadKeyHistory(dataDir)
  return { key: history.current, info, history }
}
