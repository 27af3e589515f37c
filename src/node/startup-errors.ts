/**
 * Why a node could not start, said as a person's mistake when it is one (issue 14): a data
 * dir whose store another process holds, an address another process listens on. Both are
 * MESH_CONFLICT, one line, no stack; anything else is passed on unchanged.
 */
import { ConflictError, MeshError } from '../errors.ts'
import { dataDirHeldError } from './address-file.ts'

/** LevelDB's "already held by process": another process has the store open. */
export function isStoreLocked(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined
  return e?.code === 'LEVEL_LOCKED' || e?.cause?.code === 'LEVEL_LOCKED'
}

/** EADDRINUSE from a TCP listen (the HTTP server's, libp2p's), as one line naming the address. */
export function addressInUseError(err: unknown, what: string): MeshError | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number }
  const inUse = e?.code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(String(e?.message))
  if (!inUse) return undefined
  const address = e.address !== undefined && e.port !== undefined ? `${e.address}:${e.port}` : undefined
  return new ConflictError(
    `${what}${address !== undefined ? ` ${address}` : ''} is already in use by another process`,
    address !== undefined ? { address: e.address, port: e.port } : {},
  )
}

/** The error a failed start reports: a conflict when the data dir or an address is taken. */
export async function startupError(err: unknown, dataDir: string): Promise<unknown> {
  if (err instanceof MeshError) return err
  if (isStoreLocked(err)) return dataDirHeldError(dataDir)
  // The HTTP listen reports its own (http/http-app.ts listenOrConflict): what is left is libp2p's.
  return addressInUseError(err, 'a libp2p --listen address') ?? err
}
