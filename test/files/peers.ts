import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { BlobStore, FILES_PROTOCOL, FileServer } from '../../src/files/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/p2p/index.ts'
import { tempDir } from '../fixtures/principals.ts'

/** Two hosts on loopback: `server` answers /mesh/files with `serve`; `dial` opens a stream to it. */
export async function pair(t: TestContext, serve: (stream: Stream) => Promise<void>) {
  const hosts: MeshLibp2p[] = []
  for (let i = 0; i < 2; i++) hosts.push(await createMeshLibp2p({ key: Ed25519KeyPair.generate() }))
  t.after(() => Promise.all(hosts.map(async (h) => h.stop())))
  const [server, client] = hosts as [MeshLibp2p, MeshLibp2p]
  await server.handle(FILES_PROTOCOL, (stream) => serve(stream))
  const addr = multiaddr(server.getMultiaddrs()[0]?.toString() as string)
  return { dial: async () => client.dialProtocol(addr, FILES_PROTOCOL) }
}

/** A started blob store in a temp dir. */
export async function store(
  t: TestContext,
  name: string,
  init: { maxFileBytes?: number } = {},
): Promise<BlobStore> {
  const s = new BlobStore({ dir: join(await tempDir(t), name), ...init })
  await s.start()
  return s
}

/** A peer holding `files` that serves them to anyone: the `dial` to it. */
export async function honestPeer(t: TestContext, files: Buffer[]) {
  const held = await store(t, 'server')
  const cids: string[] = []
  for (const bytes of files) cids.push((await held.put(Readable.from([bytes]))).cid)
  const server = new FileServer({
    store: held,
    admit: async () => ({ peer: 'x' }),
    servesTo: async () => true,
    logger: silentLogger(),
  })
  const { dial } = await pair(t, (s) => server.serve(s, {} as never))
  return { dial, cids }
}
