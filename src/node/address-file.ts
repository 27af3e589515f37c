import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConflictError, type MeshError } from '../errors.ts'
import type { NodeWiring } from './parts.ts'

/** The file in the data dir where a running node says where its API is, for `mesh <command>` clients. */
export const NODE_ADDRESS_FILE = 'node.json'

/** Owner-only: it tells whoever reads it which process to talk to. Written again after a key rotation. */
export async function writeAddressFile({ parts, init }: NodeWiring): Promise<void> {
  const did = parts.get('key').did
  const info = parts.get('info')
  const address = {
    http: parts.get('httpUrl'),
    did,
    identity: parts.find('history')?.identity ?? did,
    peerId: parts.get('libp2p').peerId.toString(),
    pid: process.pid,
    architectDid: info.architectDid,
    architectKeyName: info.architectKeyName ?? null,
  }
  await writeFile(join(init.dataDir, NODE_ADDRESS_FILE), `${JSON.stringify(address)}\n`, { mode: 0o600 })
}

export async function removeAddressFile(dataDir: string): Promise<void> {
  await rm(join(dataDir, NODE_ADDRESS_FILE), { force: true })
}

// issue 14: a data dir held by a running node is named by that node's pid and URL
/** What the address file of a data dir says, when the process it names is still alive. */
export async function runningNode(dataDir: string): Promise<{ pid: number; http: string } | undefined> {
  let address: { pid?: unknown; http?: unknown }
  try {
    address = JSON.parse(await readFile(join(dataDir, NODE_ADDRESS_FILE), 'utf8')) as typeof address
  } catch {
    return undefined
  }
  const { pid, http } = address
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || typeof http !== 'string')
    return undefined
  if (pid === process.pid) return { pid, http }
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: alive, but another user's.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined
  }
  return { pid, http }
}

/** MESH_CONFLICT for a data dir in use: by the running node its address file names, or by some process. */
export async function dataDirHeldError(dataDir: string): Promise<MeshError> {
  const running = await runningNode(dataDir)
  return running === undefined
    ? new ConflictError(`${dataDir} is in use by another process (its store is locked)`, { dataDir })
    : new ConflictError(`${dataDir} is held by a running node: pid ${running.pid}, ${running.http}`, {
        dataDir,
        ...running,
      })
}
