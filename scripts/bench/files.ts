/**
 * Files in rooms (issue 18, SPEC §14): a file fetched over `/mesh/files/1.0.0` against a raw
 * libp2p stream carrying the same number of bytes the same way on the same connection,
 * between two mesh libp2p hosts (createMeshLibp2p) on loopback in this process.
 *
 * - files.transfer_mib_s: 16 MiB fetched (read from the server's blob store, framed, hashed
 *   on arrival, written to a partial, synced, renamed into the fetcher's store) vs the raw
 *   stream (the server writes the bytes, the fetcher reads them). Median of 5 interleaved
 *   rounds. Aim: files ≥ 0.8× raw.
 */
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { Connection, Stream } from '@libp2p/interface'
import { BlobStore, FILES_PROTOCOL, FileServer, fetchFromPeer } from '../../src/files/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/p2p/index.ts'
import type { NodePool } from './nodes.ts'
import { emit, median, note, type ResultName } from './report.ts'

const SOURCE = '/mesh-bench/source/1.0.0'
const BYTES = 16 * 1024 * 1024
const ROUNDS = 5
const CHUNK = 256 * 1024
const ROOM = 'bench-room-0001'

export const FILES_NAMES: ResultName[] = [{ name: 'files.transfer_mib_s', unit: 'MiB/s', better: 'higher' }]

/** Writes BYTES (in CHUNK pieces) to every stream opened to it, then closes. */
async function serveSource(libp2p: MeshLibp2p): Promise<void> {
  const chunk = randomBytes(CHUNK)
  await libp2p.handle(SOURCE, async (stream: Stream) => {
    for (let sent = 0; sent < BYTES; sent += CHUNK) {
      if (!stream.send(chunk.subarray(0, Math.min(CHUNK, BYTES - sent)))) await stream.onDrain()
    }
    await stream.close()
  })
}

/** Reads BYTES off a new SOURCE stream; returns the milliseconds. */
async function rawRound(connection: Connection): Promise<number> {
  const t0 = performance.now()
  const stream = await connection.newStream(SOURCE)
  let read = 0
  for await (const chunk of stream) {
    read += chunk.byteLength
    if (read >= BYTES) break
  }
  await stream.close().catch(() => {})
  if (read < BYTES) throw new Error(`raw stream ended after ${read} bytes`)
  return performance.now() - t0
}

export async function benchFiles(pool: NodePool): Promise<void> {
  const root = await pool.dir('mesh-bench-files-')
  const hosts: MeshLibp2p[] = []
  try {
    const server = await createMeshLibp2p({ key: Ed25519KeyPair.generate() })
    hosts.push(server)
    const fetcher = await createMeshLibp2p({ key: Ed25519KeyPair.generate() })
    hosts.push(fetcher)
    const held = new BlobStore({ dir: join(root, 'server') })
    await held.start()
    const { cid } = await held.put(Readable.from([randomBytes(BYTES)]))
    const files = new FileServer({
      store: held,
      admit: async () => ({ peer: 'bench' }),
      servesTo: async () => true,
      logger: silentLogger(),
    })
    await server.handle(FILES_PROTOCOL, (stream, connection) => files.serve(stream, connection))
    await serveSource(server)
    const into = new BlobStore({ dir: join(root, 'fetcher'), cacheBytes: 4 * BYTES })
    await into.start()
    const connection = await fetcher.dial(server.getMultiaddrs()[0] as Parameters<MeshLibp2p['dial']>[0])
    const fetch = async (): Promise<number> => {
      await rm(join(into.dir, cid), { force: true })
      const t0 = performance.now()
      await fetchFromPeer(
        { store: into, dial: async () => connection.newStream(FILES_PROTOCOL) },
        'bench',
        { room: ROOM, cid },
        AbortSignal.timeout(120_000),
      )
      return performance.now() - t0
    }
    await rawRound(connection) // warm up both paths
    await fetch()
    const mib = BYTES / (1024 * 1024)
    const fileRuns: number[] = []
    const rawRuns: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      fileRuns.push(mib / ((await fetch()) / 1000))
      rawRuns.push(mib / ((await rawRound(connection)) / 1000))
    }
    const viaFiles = median(fileRuns)
    const raw = median(rawRuns)
    note(`files: /mesh/files ${viaFiles.toFixed(1)} MiB/s, raw stream ${raw.toFixed(1)} MiB/s`)
    emit('files.transfer_mib_s', viaFiles, 'MiB/s', raw, 0.8, 'higher')
  } finally {
    await Promise.all(hosts.map(async (h) => h.stop()))
  }
}
