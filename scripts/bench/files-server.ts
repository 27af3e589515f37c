/**
 * The serving end of the files benchmark (bench/files.ts), a process of its own as a peer
 * mesh would be: a mesh libp2p host holding one file of `argv[2]` bytes in a blob store under
 * `argv[3]`, answering `/mesh/files/1.0.0` (FileServer) and a raw source protocol that
 * writes the same number of bytes. Prints `ready cid=… listen=…`; stops on SIGTERM.
 */
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import type { Stream } from '@libp2p/interface'
import { BlobStore, FILES_PROTOCOL, FileServer } from '../../src/files/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { createMeshLibp2p } from '../../src/p2p/index.ts'
import { CPU_PROTOCOL } from './files.ts'

export const SOURCE_PROTOCOL = '/mesh-bench/source/1.0.0'
const CHUNK = 256 * 1024

const bytes = Number(process.argv[2])
const dir = process.argv[3] as string
const store = new BlobStore({ dir, maxFileBytes: bytes })
await store.start()
const { cid } = await store.put(Readable.from([randomBytes(bytes)]))
const host = await createMeshLibp2p({ key: Ed25519KeyPair.generate() })
const files = new FileServer({
  store,
  admit: async () => ({ peer: 'bench' }),
  servesTo: async () => true,
  logger: silentLogger(),
})
await host.handle(FILES_PROTOCOL, (stream, connection) => files.serve(stream, connection))
const chunk = randomBytes(CHUNK)
await host.handle(SOURCE_PROTOCOL, async (stream: Stream) => {
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    if (!stream.send(chunk.subarray(0, Math.min(CHUNK, bytes - sent)))) await stream.onDrain()
  }
  await stream.close()
})
// files18d (issue 18): this process's CPU so far (µs), for the probe's per-transfer server CPU
await host.handle(CPU_PROTOCOL, async (stream: Stream) => {
  await new Promise((resolve) => stream.addEventListener('message', resolve, { once: true }))
  const { user, system } = process.cpuUsage()
  stream.send(new TextEncoder().encode(String(user + system)))
  await stream.close()
})
process.stdout.write(`ready cid=${cid} listen=${host.getMultiaddrs()[0]?.toString()}\n`)
process.on('SIGTERM', () => {
  void Promise.resolve(host.stop()).then(() => process.exit(0))
})
