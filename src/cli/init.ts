/**
 * `mesh init` and a first `mesh start`, all or nothing (issue 14): the mesh (its key, its
 * store with the root delegation and the architect's membership credential, its audit
 * checkpoint) is written into a temp dir next to the data dir and renamed into place at
 * the end, so a failed init (a bad name, an architect key that already exists, a full
 * disk) leaves no `mesh-key.json` or `db/` behind, and no architect key it created in the
 * keystore.
 */
import { randomBytes } from 'node:crypto'
import { access, chmod, mkdir, mkdtemp, readdir, rename, rm, rmdir } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { BadRequestError, ConflictError } from '../errors.ts'
import type { Ed25519KeyPair, HumanKeystore } from '../identity/index.ts'
import {
  initMesh,
  type MeshInfo,
  meshKeyPath,
  readMeshInfo,
  STORE_DIR,
  validateMeshName,
  withMeshStore,
} from '../mesh-info.ts'
import { dataDirHeldError, runningNode } from '../node/address-file.ts'
import { isStoreLocked } from '../node/startup-errors.ts'

export interface InitDataDirOptions {
  dataDir: string
  name?: string
  architectDid?: string
  keystore: HumanKeystore
}

export interface InitDataDirResult {
  key: Ed25519KeyPair
  info: MeshInfo
  architectKeyPath?: string
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  )

/** Whether the data dir holds a mesh: its key is written last, so its presence means a whole mesh. */
export function holdsMesh(dataDir: string): Promise<boolean> {
  return exists(meshKeyPath(dataDir))
}

/** A mesh name from the data dir's name (`.alpha` → `alpha`), or a random one. */
export function defaultMeshName(dataDir: string): string {
  const base = basename(dataDir)
    .replace(/^\.+/, '')
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
  return base.length > 0 && base !== 'mesh' ? base.slice(0, 40) : `mesh-${randomBytes(3).toString('hex')}`
}

/** MESH_CONFLICT unless `dataDir` is absent, empty, or holds files that are not a mesh's. */
async function assertFree(dataDir: string): Promise<void> {
  if (await holdsMesh(dataDir)) {
    if ((await runningNode(dataDir)) !== undefined) throw await dataDirHeldError(dataDir)
    // A key without its mesh: what a failed init left before inits were all or nothing.
    const info = await withMeshStore(dataDir, readMeshInfo).catch(async (err: unknown) => {
      if (isStoreLocked(err)) throw await dataDirHeldError(dataDir)
      return undefined
    })
    if (info === undefined) {
      throw new ConflictError(
        `${dataDir} holds a mesh key but no mesh (left by a failed init); remove the directory or choose another --data`,
        { dataDir },
      )
    }
    throw new ConflictError(`${dataDir} already holds a mesh`, { dataDir })
  }
  if (await exists(join(dataDir, STORE_DIR))) {
    throw new ConflictError(
      `${dataDir} holds a store (${STORE_DIR}/) but no mesh key; move it away or choose another --data`,
      { dataDir },
    )
  }
}

/** Moves what the temp dir holds into the data dir: the whole dir when it can, else entry by entry, the key last. */
async function moveInto(tmp: string, dataDir: string): Promise<void> {
  const entries = (await exists(dataDir)) ? await readdir(dataDir) : undefined
  if (entries !== undefined && entries.length === 0) await rmdir(dataDir)
  if (entries === undefined || entries.length === 0) {
    await rename(tmp, dataDir)
    return
  }
  const keyFile = basename(meshKeyPath(dataDir))
  const names = (await readdir(tmp)).sort((a, b) => Number(a === keyFile) - Number(b === keyFile))
  for (const name of names) await rename(join(tmp, name), join(dataDir, name))
  await chmod(dataDir, 0o700)
  await rmdir(tmp)
}

/** Creates a mesh in `dataDir` (see the file comment); MESH_CONFLICT when one is there already. */
export async function initDataDir(options: InitDataDirOptions): Promise<InitDataDirResult> {
  const { dataDir, keystore } = options
  const name = validateMeshName(options.name ?? defaultMeshName(dataDir))
  await assertFree(dataDir)
  const architectKey = options.architectDid === undefined ? keystore.pathOf(`${name}-architect`) : undefined
  if (architectKey !== undefined && (await exists(architectKey))) {
    throw new ConflictError(
      `an architect key for a mesh named ${name} already exists at ${architectKey}; choose another --name`,
      { path: architectKey },
    )
  }
  const tmp = await mkdir(dirname(dataDir), { recursive: true })
    .then(() => mkdtemp(join(dirname(dataDir), `.${basename(dataDir)}.init-`)))
    .catch((err: NodeJS.ErrnoException) => {
      throw new BadRequestError(`cannot create ${dataDir} (${err.message.split(',')[0]})`, { dataDir })
    })
  try {
    const created = await withMeshStore(tmp, async (store) => {
      const made = await initMesh({
        store,
        dataDir: tmp,
        name,
        keystore,
        ...(options.architectDid !== undefined ? { architectDid: options.architectDid } : {}),
      })
      // Issue 15 (cold start): the root delegation and the architect's membership
      // credential, issued here rather than by the first start (loaded for init only).
      const { issueFounding } = await import('../node/founding.ts')
      await issueFounding({ store, dataDir: tmp, key: made.key, info: made.info })
      return made
    })
    await moveInto(tmp, dataDir)
    return created
  } catch (err) {
    await rm(tmp, { recursive: true, force: true })
    if (architectKey !== undefined) await rm(architectKey, { force: true })
    throw err
  }
}

/** What an init created, for a person: the mesh, where it is, and where its architect key is. */
export function createdText(dataDir: string, created: InitDataDirResult): string {
  const { key, info, architectKeyPath } = created
  return [
    `mesh ${info.name} created in ${dataDir}`,
    `  did:           ${key.did}`,
    `  architect:     ${info.architectDid}`,
    ...(architectKeyPath !== undefined
      ? [`  architect key: ${architectKeyPath} (keep it safe: the console signs in with it)`]
      : []),
  ].join('\n')
}
