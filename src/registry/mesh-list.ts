import type { AbortOptions } from '@libp2p/interface'
import { MESH_LIST_SORTS, MESH_STATUSES } from '../api/schemas/registry.ts'
import type { MeshProfile } from '../api/types.ts'
import { BadRequestError } from '../errors.ts'

/**
 * The public list of meshes (`GET /api/meshes/public`), as served by a registry from
 * heartbeats and by any node from what it discovered. Paging is pure so that both
 * sources page, search and filter the same way.
 */

// The statuses and orders are the contract's (src/api): the route and pageMeshes take the same ones.
export { MESH_LIST_SORTS, MESH_STATUSES }
export type MeshStatus = (typeof MESH_STATUSES)[number]

/** One item of the public list (SPEC §3), with what the mesh says of itself (SPEC §10) when it does. */
export interface PublicMesh extends MeshProfile {
  did: string
  name: string
  peerId: string
  multiaddrs: string[]
  status: MeshStatus
  members: number
  bots: number
  rooms: number
  version: string
  protocolVersions: string[]
  /** ISO 8601 time the source last heard from the mesh. */
  lastHeartbeat: string
  /** ISO 8601 time the source first heard of the mesh; the key of `sort=age`. */
  firstSeen?: string
}

/** Anything that can list meshes: the registry, or a node's own discoveries. */
export interface PublicMeshSource {
  /** Every mesh known, in any order, with its current status. */
  list(options?: AbortOptions): Promise<PublicMesh[]>
}

/**
 * Orders of the list: `name` (case-folded name, then did; the default) for people
 * browsing; `age` (first seen, oldest first, then did) for a node choosing whom to dial,
 * where a flood of fresh entries — whatever their names — comes last.
 */
export type MeshListSort = (typeof MESH_LIST_SORTS)[number]

export interface MeshListQuery {
  /** Case-insensitive substring of the name or the did. */
  q?: string
  status?: MeshStatus
  /** Default 'name'. */
  sort?: MeshListSort
  /** Page size, 1–100; default 50. */
  limit?: number
  /** `nextCursor` of the previous page. */
  cursor?: string
  /** reachable by URL (SPEC §10): only meshes whose `capabilities` list this one. */
  capability?: string
}

export interface MeshPage {
  meshes: PublicMesh[]
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null
}

export const MESH_LIST_LIMITS = {
  defaultLimit: 50,
  maxLimit: 100,
  maxQueryLength: 128,
  maxCursorLength: 512,
} as const

// The sort key: case-folded name (or, for 'age', the ISO first-seen time, which sorts
// as it reads), then did (unique), so the order is total and stable across pages even
// while meshes come and go. Compared by code units, not locale, so that a cursor means
// the same on every machine. An item without firstSeen counts as the newest.
type SortKey = readonly [primary: string, did: string]

const sortKey = (mesh: PublicMesh, sort: MeshListSort): SortKey => [
  sort === 'age' ? (mesh.firstSeen ?? '\uffff') : mesh.name.toLowerCase(),
  mesh.did,
]

function compareKeys(a: SortKey, b: SortKey): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1
  return 0
}

// A name cursor is `[name, did]` as it always was; an age cursor is tagged, so that a
// cursor from one order is refused by the other instead of skipping items.
function encodeCursor(key: SortKey, sort: MeshListSort): string {
  return Buffer.from(JSON.stringify(sort === 'name' ? key : [sort, ...key])).toString('base64url')
}

function decodeCursor(cursor: string, sort: MeshListSort): SortKey {
  const bad = () => new BadRequestError('invalid cursor', { cursor })
  if (
    cursor.length === 0 ||
    cursor.length > MESH_LIST_LIMITS.maxCursorLength ||
    !/^[A-Za-z0-9_-]+$/.test(cursor)
  ) {
    throw bad()
  }
  let key: unknown
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw bad()
  }
  if (!Array.isArray(key)) throw bad()
  if (sort !== 'name') {
    if (key[0] !== sort) throw bad()
    key = key.slice(1)
  }
  if (!Array.isArray(key) || key.length !== 2 || typeof key[0] !== 'string' || typeof key[1] !== 'string') {
    throw bad()
  }
  return [key[0], key[1]]
}

/** Checks a query's values; MESH_BAD_REQUEST names the first one that is wrong. */
function checkQuery(query: MeshListQuery): {
  q?: string
  status?: MeshStatus
  sort: MeshListSort
  limit: number
  after?: SortKey
} {
  const { q, status, cursor } = query
  const sort = query.sort ?? 'name'
  const limit = query.limit ?? MESH_LIST_LIMITS.defaultLimit
  if (q !== undefined && (typeof q !== 'string' || q.length > MESH_LIST_LIMITS.maxQueryLength)) {
    throw new BadRequestError(`q is a string of at most ${MESH_LIST_LIMITS.maxQueryLength} characters`)
  }
  if (status !== undefined && !MESH_STATUSES.includes(status)) {
    throw new BadRequestError(`status is one of ${MESH_STATUSES.join(', ')}`, { status })
  }
  if (!MESH_LIST_SORTS.includes(sort)) {
    throw new BadRequestError(`sort is one of ${MESH_LIST_SORTS.join(', ')}`, { sort })
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > MESH_LIST_LIMITS.maxLimit) {
    throw new BadRequestError(`limit is an integer from 1 to ${MESH_LIST_LIMITS.maxLimit}`, { limit })
  }
  return { q, status, sort, limit, after: cursor === undefined ? undefined : decodeCursor(cursor, sort) }
}

/**
 * One page of `items`: those matching `q` and `status`, in a stable order (`sort`),
 * starting after `cursor`. Throws MESH_BAD_REQUEST for a bad limit, status, sort or
 * cursor. Does not modify `items`.
 */
export function pageMeshes(items: readonly PublicMesh[], query: MeshListQuery = {}): MeshPage {
  const { q, status, sort, limit, after } = checkQuery(query)
  const { capability } = query // reachable by URL (SPEC §10)
  if (capability !== undefined && (typeof capability !== 'string' || capability.length > 128)) {
    throw new BadRequestError('capability is a string of at most 128 characters')
  }
  const needle = q?.toLowerCase()
  const matching = items
    .filter(
      (mesh) =>
        (status === undefined || mesh.status === status) &&
        (needle === undefined ||
          mesh.name.toLowerCase().includes(needle) ||
          mesh.did.toLowerCase().includes(needle)) &&
        (capability === undefined || (mesh.capabilities ?? []).includes(capability)),
    )
    .map((mesh) => ({ mesh, key: sortKey(mesh, sort) }))
    .filter(({ key }) => after === undefined || compareKeys(key, after) > 0)
    .sort((a, b) => compareKeys(a.key, b.key))
  const page = matching.slice(0, limit)
  const last = page.at(-1)
  return {
    meshes: page.map(({ mesh }) => mesh),
    nextCursor: matching.length > limit && last !== undefined ? encodeCursor(last.key, sort) : null,
  }
}
