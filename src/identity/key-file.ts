import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { isKnownKeyFormat, type KeyFile, keyFileOf } from '../api/key-file.ts'
import { BadRequestError, ConflictError, NotFoundError } from '../errors.ts'
import { Ed25519KeyPair } from './keys.ts'

export type { KeyFile } from '../api/key-file.ts'

export const MESH_KEY_FILE = 'mesh-key.json'

/** Writes a key file with mode 0600, via a synced temp file and a rename, so a crash never leaves half a key. */
export async function writeKeyFile(path: string, file: KeyFile): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, path)
}

export async function readKeyFile(path: string): Promise<Ed25519KeyPair> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no key file at ${path}`)
    throw err
  }
  const info = await stat(path)
  if ((info.mode & 0o077) !== 0) {
    throw new BadRequestError(`key file ${path} is readable by others; chmod 600 it`, { path })
  }
  let file: KeyFile
  try {
    file = JSON.parse(text) as KeyFile
  } catch {
    throw new BadRequestError(`key file ${path} is not JSON`, { path })
  }
  if (!isKnownKeyFormat(file)) {
    throw new BadRequestError(`key file ${path} has an unknown format`, { path })
  }
  const key = new Ed25519KeyPair(Buffer.from(file.seed, 'base64url'))
  if (key.did !== file.did) throw new BadRequestError(`key file ${path} is corrupt: did does not match seed`)
  return key
}

export async function createKeyFile(
  path: string,
  role: KeyFile['role'],
  name: string,
  key = Ed25519KeyPair.generate(),
): Promise<Ed25519KeyPair> {
  try {
    await stat(path)
    throw new ConflictError(`a key already exists at ${path}`, { path })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await writeKeyFile(path, keyFileOf(role, name, Buffer.from(key.seed).toString('base64url'), key.did))
  return key
}

/**
 * The human keystore ($MESH_KEYSTORE, default ~/.mesh-keys/): one file per human,
 * outside any data dir, so that a running node never reads a human's private key.
 */
export class HumanKeystore {
  readonly dir: string

  constructor(dir: string) {
    this.dir = dir
  }

  pathOf(name: string): string {
    if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(name) || name.startsWith('.')) {
      throw new BadRequestError('a key name is 1–64 letters, digits, dot, dash or underscore', { name })
    }
    return join(this.dir, `${name}.json`)
  }

  async create(name: string): Promise<Ed25519KeyPair> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    return createKeyFile(this.pathOf(name), 'human', name)
  }

  async load(name: string): Promise<Ed25519KeyPair> {
    return readKeyFile(this.pathOf(name))
  }
}
