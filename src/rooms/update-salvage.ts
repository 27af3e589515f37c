import type * as Y from 'yjs'
import { type ClientBinding, COMMITTED_CLIENT_MIN, type SealedMapName, sealKey } from './room-entries.ts'
import { batchRecordsOf, isBatchKey } from './seal-batch.ts' // issue 15, batch15
import { FINAL_REASONS, Refusal, refuse } from './update-refusal.ts'
import type { Hole, RawWrite, ReadUpdate } from './update-structs.ts'
import type { UpdateSender, ValidationTarget } from './validate-update.ts'

/**
 * What is left of an update when some of its entries are refused.
 *
 * A peer's update is often many entries (a catch-up, a batch of a tick), and one of
 * them may be refused where the others are fine: a replica that missed a removal wrote
 * the removed member's post before the sentinel that follows it. Refusing the whole
 * update would lose the others, and refusing only the post would leave its client's
 * clock with a gap no later write can cross (update-structs.ts). So the update is cut
 * into groups (an entry with its seal), each group is checked against the room plus
 * the groups accepted before it, and a refused group keeps its place as a hole — when
 * it is refused for good (FINAL_REASONS) and the sender answers for the client that
 * wrote it. A sender answers for its own
 * client ids (bound to it); the room's home mesh answers for every client of its room,
 * as it already decides who is a member. A client id the sender does not answer for
 * gets no hole, nor does an entry refused only for now: what that client wrote from
 * there on is dropped, and this replica takes it in a later sync (or from a mesh that
 * answers for the client).
 */

export interface SalvageChecks {
  /** Checks `group` against the room plus `prior` (already accepted); throws a Refusal. */
  check(group: RawWrite[], prior: Accepted): void
  /** Whether the sender answers for a client id (with the bindings accepted so far). */
  answersFor(client: number, prior: Accepted): boolean
}

export interface Accepted {
  writes: RawWrite[]
}

export interface Salvage {
  /** The structs to apply, per client, in clock order: accepted items and holes. */
  byClient: Map<number, Array<Y.Item | Hole>>
  accepted: RawWrite[]
  /** The first refusal, and how many groups were refused. */
  refused: Refusal | undefined
  refusedGroups: number
  /** Clients given a new hole for a refused entry. */
  holed: number[]
}

/** Entries are checked in this order, so that what an entry relies on comes first. */
const ORDER: Record<string, number> = {
  clients: 0,
  meta: 1,
  members: 2,
  messages: 3,
  reactions: 4,
  redactions: 5,
  seals: 6,
}

export function salvage(read: ReadUpdate, checks: SalvageChecks): Salvage {
  const groups = groupWrites(read.writes)
  const refusedWrites = new Set<RawWrite>()
  /** Refused for a reason a later state may lift: no hole, the client is cut there. */
  const waiting = new Set<RawWrite>()
  let refused: Refusal | undefined
  let refusedGroups = 0
  const prior: Accepted = { writes: [] }
  for (const group of groups) {
    try {
      checks.check(group, prior)
      prior.writes.push(...group)
    } catch (err) {
      if (!(err instanceof Refusal)) throw err
      refused ??= err
      refusedGroups++
      for (const w of group) {
        refusedWrites.add(w)
        // A batch record not here yet (batch15) may come in a later update: not final.
        if (!FINAL_REASONS.has(err.reason) || err.info.awaitsBatch === true) waiting.add(w)
      }
    }
  }
  dropUnusedBatches(read.writes, prior, refusedWrites, waiting)

  // Cut each client's structs where a refused struct has no hole; a group that lost a
  // struct that way is refused too, which may cut further: repeat until nothing moves.
  const writeAt = new Map<string, RawWrite>()
  for (const w of read.writes) writeAt.set(`${w.client}:${w.clock}`, w)
  for (;;) {
    const dropped = new Set<RawWrite>()
    const byClient = new Map<number, Array<Y.Item | Hole>>()
    const holed: number[] = []
    for (const [client, structs] of read.byClient) {
      const kept: Array<Y.Item | Hole> = []
      let cut = false
      for (const struct of structs) {
        const write = isHole(struct) ? undefined : writeAt.get(`${client}:${struct.id.clock}`)
        if (cut) {
          if (write !== undefined && !refusedWrites.has(write)) dropped.add(write)
          continue
        }
        if (write !== undefined && !refusedWrites.has(write)) {
          kept.push(struct)
          continue
        }
        if ((write !== undefined && waiting.has(write)) || !checks.answersFor(client, prior)) {
          cut = true
          continue
        }
        const length = isHole(struct) ? struct.length : (struct as Y.Item).length
        const clock = isHole(struct) ? struct.clock : (struct as Y.Item).id.clock
        kept.push({ client, clock, length })
        if (write !== undefined && !holed.includes(client)) holed.push(client)
      }
      if (kept.length > 0) byClient.set(client, kept)
    }
    if (dropped.size === 0) {
      return {
        byClient,
        accepted: prior.writes,
        refused,
        refusedGroups,
        holed,
      }
    }
    for (const group of groups) {
      if (!group.some((w) => dropped.has(w))) continue
      for (const w of group) {
        refusedWrites.add(w)
        waiting.add(w)
      }
    }
    prior.writes = prior.writes.filter((w) => !refusedWrites.has(w))
  }
}

/**
 * Issue 15 (batch15): a batch record kept while none of the entries it lists is kept
 * would stand alone (an orphan, refused): it goes with them, waiting if one of them
 * waits (it will be needed when that entry comes again).
 */
function dropUnusedBatches(
  writes: RawWrite[],
  prior: Accepted,
  refused: Set<RawWrite>,
  waiting: Set<RawWrite>,
) {
  const at = new Map<string, RawWrite>()
  for (const w of writes) if (w.map !== 'seals') at.set(`${w.map}/${w.key}`, w)
  for (const [, { record }] of batchRecordsOf(prior.writes)) {
    const listed = record.entries.flatMap(([map, key]) => at.get(`${map}/${key}`) ?? [])
    if (listed.some((w) => !refused.has(w))) continue
    const w = prior.writes.find((p) => p.value === record) as RawWrite
    refused.add(w)
    if (listed.some((e) => waiting.has(e))) waiting.add(w)
  }
  prior.writes = prior.writes.filter((w) => !refused.has(w))
}

function isHole(struct: Y.Item | Hole): struct is Hole {
  return !('id' in struct)
}

/** Each entry with its seal (if the update holds it); a seal without its entry alone. */
function groupWrites(writes: RawWrite[]): RawWrite[][] {
  const seals = new Map<string, RawWrite>()
  for (const w of writes) if (w.map === 'seals') seals.set(w.key, w)
  const groups: RawWrite[][] = []
  const sealed = new Set<RawWrite>()
  for (const w of writes) {
    if (w.map === 'seals') continue
    const seal = seals.get(sealKey(w.map as SealedMapName, w.key))
    if (seal !== undefined) sealed.add(seal)
    groups.push(seal === undefined ? [w] : [w, seal])
  }
  for (const seal of seals.values()) if (!sealed.has(seal)) groups.push([seal])
  // Stable: within a map, update order.
  // A batch record (batch15) first: its entries' groups (its writer's binding too) rely on it.
  const rank = (g: RawWrite[]) =>
    g[0]?.map === 'seals' && isBatchKey(g[0].key) ? -1 : (ORDER[g[0]?.map ?? ''] ?? 9)
  return groups
    .map((g, i) => ({ g, i }))
    .sort((a, b) => rank(a.g) - rank(b.g) || a.i - b.i)
    .map(({ g }) => g)
}

/**
 * Whether the sender answers for a client id, so that a refused entry of that client
 * may become a hole: a peer for the ids bound to it (the home mesh for every id of its
 * room); a client of this mesh for the ids bound to it, or not yet bound (this mesh
 * binds them to it as it applies the update).
 */
export function answering(
  room: ValidationTarget,
  sender: UpdateSender,
): (client: number, bindings: Map<string, ClientBinding>) => boolean {
  return (client, bindings) => {
    const bound =
      (room.doc.getMap('clients').get(String(client)) as ClientBinding | undefined) ??
      bindings.get(String(client))
    if (sender.kind === 'peer') return sender.meshDid === room.homeMesh || bound?.mesh === sender.meshDid
    if (bound === undefined) return client < COMMITTED_CLIENT_MIN
    return bound.mesh === sender.mesh && bound.did === sender.did && bound.nonce === undefined
  }
}

export function bindingsOf(writes: RawWrite[]): Map<string, ClientBinding> {
  const bindings = new Map<string, ClientBinding>()
  for (const w of writes) if (w.map === 'clients') bindings.set(w.key, w.value as ClientBinding)
  return bindings
}

/** Every hole an update carries must be one its sender answers for. */
export function checkHoles(room: ValidationTarget, read: ReadUpdate, sender: UpdateSender): void {
  if (read.holes.length === 0) return
  const answersFor = answering(room, sender)
  const bindings = bindingsOf(read.writes)
  for (const hole of read.holes)
    if (!answersFor(hole.client, bindings))
      refuse('unvouched-hole', 'a hole for a client id its sender does not answer for', {
        client: hole.client,
      })
}
