/**
 * Files in rooms (issue 18, SPEC §14): a file fetched over `/mesh/files/1.0.0` against a raw
 * libp2p stream carrying the same number of bytes the same way on the same connection. The
 * serving end is a process of its own (bench/files-server.ts), as a peer mesh would be; the
 * fetching end is a mesh libp2p host in this process.
 *
 * - files.transfer_mib_s: 16 MiB fetched (read from the server's blob store, hashed on
 *   arrival, written to a partial) until the fetch returns: the whole file hashed to its CID
 *   and readable from the fetcher's store — what `GET /api/files/:cid` waits for before its
 *   first byte. The sync, the rename under the CID and the cache index finish after that
 *   (awaited between rounds, out of the timing; their median is printed as "stored") vs the
 *   raw stream (the server writes the bytes, the fetcher reads them). Median of 7
 *   interleaved rounds, after 4 untimed rounds of each. Aim: files ≥ 0.8× raw.
 * - files.transfer_64mib_mib_s: the same with 64 MiB (a fetcher whose file cap allows it):
 *   the fixed costs a fetch pays and the raw stream does not (the request's round trip, the
 *   final sync and rename) weigh a quarter as much.
 *
 * The raw stream is the ceiling, not a like-for-like: it never leaves memory (no disk read
 * on the server, no hash, no disk write or sync on the fetcher) and has no request to wait
 * for. /work/notes/files18b.md has the phases.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process'
import { once } from 'node:events'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import type { Connection } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { BlobStore, FILES_PROTOCOL, fetchFromPeer } from '../../src/files/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { createMeshLibp2p } from '../../src/p2p/index.ts'
import type { NodePool } from './nodes.ts'
import { emit, median, note, type ResultName } from './report.ts'

const SOURCE = '/mesh-bench/source/1.0.0'
const MIB = 1024 * 1024
const ROUNDS = 7
/** Untimed rounds of each before the timed ones. */
const WARM_UP_ROUNDS = 4
const ROOM = 'bench-room-0001'
export const SERVER = new URL('./files-server.ts', import.meta.url).pathname
/** The server process's CPU so far (µs), asked by the probe (bench/files-probe.ts). */
export const CPU_PROTOCOL = '/mesh-bench/cpu/1.0.0'

/** The rows: the file's size each measures. */
const SIZES = [
  { name: 'files.transfer_mib_s', bytes: 16 * MIB },
  // files18b (issue 18): the same at 64 MiB, where fixed costs weigh less
  { name: 'files.transfer_64mib_mib_s', bytes: 64 * MIB },
] as const

export const FILES_NAMES: ResultName[] = SIZES.map(({ name }) => ({ name, unit: 'MiB/s', better: 'higher' }))

/** Reads `bytes` off a new SOURCE stream; returns the milliseconds. */
async function rawRound(connection: Connection, bytes: number): Promise<number> {
  const t0 = performance.now()
  const stream = await connection.newStream(SOURCE)
  let read = 0
  for await (const chunk of stream) {
    read += chunk.byteLength
    if (read >= bytes) break
  }
  await stream.close().catch(() => {})
  if (read < bytes) throw new Error(`raw stream ended after ${read} bytes`)
  return performance.now() - t0
}

/** The CID the server process (bench/files-server.ts) holds and the address it listens on, once it is ready. */
export async function serverReady(
  server: ChildProcessByStdio<null, Readable, null>,
): Promise<{ cid: string; listen: string }> {
  const lines = createInterface({ input: server.stdout })
  const [ready] = (await once(lines, 'line')) as [string]
  return {
    cid: /cid=(\S+)/.exec(ready)?.[1] as string,
    listen: /listen=(\S+)/.exec(ready)?.[1] as string,
  }
}

export async function benchFiles(pool: NodePool): Promise<void> {
  for (const { name, bytes } of SIZES) {
    const { viaFiles, stored, raw } = await transfer(pool, bytes)
    note(
      `files ${bytes / MIB} MiB: /mesh/files ${viaFiles.toFixed(1)} MiB/s (stored for good: ${stored.toFixed(1)}), raw stream ${raw.toFixed(1)} MiB/s`,
    )
    emit(name, viaFiles, 'MiB/s', raw, 0.8, 'higher')
  }
}

/**
 * Medians (MiB/s) of `bytes` fetched over /mesh/files (until readable; `stored`: until synced
 * and renamed) and over the raw stream, interleaved.
 */
async function transfer(
  pool: NodePool,
  bytes: number,
): Promise<{ viaFiles: number; stored: number; raw: number }> {
  const root = await pool.dir('mesh-bench-files-')
  const server = spawn(process.execPath, [SERVER, String(bytes), join(root, 'server')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const fetcher = await createMeshLibp2p({ key: Ed25519KeyPair.generate() })
  try {
    const { cid, listen } = await serverReady(server)
    const into = new BlobStore({ dir: join(root, 'fetcher'), cacheBytes: 4 * bytes, maxFileBytes: bytes })
    await into.start()
    const connection = await fetcher.dial(multiaddr(listen))
    const mib = bytes / MIB
    const storedRuns: number[] = []
    const fetch = async (): Promise<number> => {
      await rm(join(into.dir, cid), { force: true })
      const t0 = performance.now()
      const { stored } = await fetchFromPeer(
        { store: into, dial: async () => connection.newStream(FILES_PROTOCOL) },
        'bench',
        { room: ROOM, cid },
        AbortSignal.timeout(120_000),
      )
      const readable = performance.now() - t0
      await stored
      storedRuns.push(mib / ((performance.now() - t0) / 1000))
      return readable
    }
    // Warm up both paths: in a fresh process both keep getting faster for 4–7 rounds (files18f).
    for (let round = 0; round < WARM_UP_ROUNDS; round++) {
      await rawRound(connection, bytes)
      await fetch()
    }
    storedRuns.length = 0
    const fileRuns: number[] = []
    const rawRuns: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      fileRuns.push(mib / ((await fetch()) / 1000))
      rawRuns.push(mib / ((await rawRound(connection, bytes)) / 1000))
    }
    return { viaFiles: median(fileRuns), stored: median(storedRuns), raw: median(rawRuns) }
  } finally {
    await fetcher.stop()
    server.kill('SIGTERM')
    if (server.exitCode === null) await once(server, 'exit')
  }
}
