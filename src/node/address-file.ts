import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
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
