import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** The file in the data dir where a running node says where its API is, for `mesh <command>` clients. */
export const NODE_ADDRESS_FILE = 'node.json'

export interface NodeAddress {
  http: string
  did: string
  identity: string
  peerId: string
  architectDid: string
  architectKeyName: string | null
}

/** Owner-only: it tells whoever reads it which process to talk to. */
export async function writeAddressFile(dataDir: string, address: NodeAddress): Promise<void> {
  const { http, did, identity, peerId, architectDid, architectKeyName } = address
  const content = { http, did, identity, peerId, pid: process.pid, architectDid, architectKeyName }
  await writeFile(join(dataDir, NODE_ADDRESS_FILE), `${JSON.stringify(content)}\n`, { mode: 0o600 })
}

export async function removeAddressFile(dataDir: string): Promise<void> {
  await rm(join(dataDir, NODE_ADDRESS_FILE), { force: true })
}
