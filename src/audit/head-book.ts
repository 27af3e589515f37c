/**
 * The tree heads this mesh holds of other meshes' logs, and the equivocations it found
 * or was shown (SPEC §11). Kept in the audit sublevel as watch records:
 *
 * ```
 * watch/v1/head/<mesh>        the latest head of <mesh> known to extend every one held before
 * watch/v1/defection/<mesh>   {proof, at, source}: an equivocation proof of <mesh>
 * watch/v1/chain/<mesh>       the rotation chain that joined a held head's key to <mesh>,
 *                             for a mesh this node has no peer record of (passed on with it)
 * ```
 *
 * `take` is given a head (from the mesh itself or passed on by a peer): one of the same
 * size with another root is an equivocation at once; one of another size is checked
 * against the mesh's own current tree (`ask`, when connected to it): the mesh answers a
 * consistency proof from the head's size to its signed head now, and a proof that holds
 * but starts from another root is an equivocation whose proof it wrote itself. A mesh
 * that cannot be asked leaves the head unverified (not held, tried again next time).
 * `takeProof` checks a proof a peer forwards (`verifyEquivocation`): one that does not
 * verify is refused with its code (the caller charges the accuser). A defection is
 * written with its `federation.defection` audit row in one batch, once per mesh.
 */

import type { RotationRecord } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { AuditLog } from './audit-log.ts'
import { type EquivocationProof, keysOfMesh, orderHeads, verifyEquivocation } from './equivocation.ts'
import { verifyConsistency } from './merkle.ts'
import {
  type ConsistencyProof,
  compareTreeHeads,
  isSignedTreeHead,
  parseTreeHead,
  type SignedTreeHead,
} from './tree-head.ts'

const HEAD_PREFIX = 'watch/v1/head/'
const DEFECTION_PREFIX = 'watch/v1/defection/'
const CHAIN_PREFIX = 'watch/v1/chain/'

export interface DefectionRecord {
  mesh: string
  proof: EquivocationProof
  /** When this node learned it. */
  at: string
  /** `found` (this node) or `peer:<did>` (forwarded). */
  source: string
}

export type TakeResult = 'held' | 'same' | 'older' | 'unverified' | 'defection' | 'ignored'

export interface HeadBookComponents {
  audit: Pick<AuditLog, 'mesh' | 'keepWatchRecord' | 'watchRecord' | 'watchRecords'>
  logger: Logger
  now?: () => number
  /** The keys of `mesh` this node knows (identity first) and its rotation chain; undefined when it knows none. */
  keysOf: (mesh: string) => Promise<{ keys: string[]; rotation: RotationRecord[] } | undefined>
  /**
   * Asks `mesh` itself for a consistency proof from `from` to its head now; undefined when
   * it cannot be asked (not connected, unreachable, it refused).
   */
  ask: (mesh: string, from: number) => Promise<ConsistencyProof | undefined>
  /** Told of each new defection (after it is written): forward it, demote the mesh. Must not throw. */
  onDefection?: (record: DefectionRecord) => void
}

export class HeadBook {
  readonly #c: HeadBookComponents
  readonly #now: () => number
  #queue: Promise<unknown> = Promise.resolve()

  constructor(components: HeadBookComponents) {
    this.#c = components
    this.#now = components.now ?? Date.now
  }

  async held(mesh: string): Promise<SignedTreeHead | undefined> {
    return (await this.#c.audit.watchRecord(HEAD_PREFIX + mesh)) as SignedTreeHead | undefined
  }

  /** Every head held (at most `limit`), to pass on to a peer. */
  async heads(limit = 32): Promise<SignedTreeHead[]> {
    const out: SignedTreeHead[] = []
    for await (const [, value] of this.#c.audit.watchRecords(HEAD_PREFIX)) {
      if (isSignedTreeHead(value)) out.push(value)
      if (out.length >= limit) break
    }
    return out
  }

  /**
   * The rotation chain of `mesh` to pass on with its head, when the head is signed by a
   * key other than its identity: the peer book's, or the one kept when the head came in.
   */
  async chainOf(mesh: string): Promise<RotationRecord[] | undefined> {
    const known = await this.#c.keysOf(mesh)
    if (known !== undefined && known.rotation.length > 0) return known.rotation
    const kept = await this.#c.audit.watchRecord(CHAIN_PREFIX + mesh)
    return Array.isArray(kept) && kept.length > 0 ? (kept as RotationRecord[]) : undefined
  }

  async defection(mesh: string): Promise<DefectionRecord | undefined> {
    return (await this.#c.audit.watchRecord(DEFECTION_PREFIX + mesh)) as DefectionRecord | undefined
  }

  async defections(): Promise<DefectionRecord[]> {
    const out: DefectionRecord[] = []
    for await (const [, value] of this.#c.audit.watchRecords(DEFECTION_PREFIX))
      out.push(value as DefectionRecord)
    return out
  }

  /**
   * A head of another mesh (from it or passed on); throws the check's code for a head that
   * is not one (forged: MESH_BAD_REQUEST, MESH_SIGNATURE_MISMATCH). With `fresh` (the mesh
   * itself answering now), a head signed no later than the one held and not equal to it
   * is a replay: MESH_REPLAY. `chain`: the mesh's rotation chain passed on with the head,
   * used (and kept) only for a mesh this node has no peer record of.
   */
  take(value: unknown, options: { fresh?: boolean; chain?: unknown } = {}): Promise<TakeResult> {
    return this.#serialized(() => this.#take(value, options.fresh === true, options.chain))
  }

  /** An equivocation proof a peer forwards: `new` or `known`; throws the check's code when it does not verify. */
  takeProof(value: unknown, source: string): Promise<'new' | 'known'> {
    const proof = verifyEquivocation(value)
    return this.#serialized(async () =>
      (await this.#defect(proof, source)) ? ('new' as const) : ('known' as const),
    )
  }

  #serialized<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(run)
    this.#queue = next.catch(() => undefined)
    return next
  }

  async #take(value: unknown, fresh: boolean, chain: unknown): Promise<TakeResult> {
    const shaped = parseTreeHead(value)
    const mesh = shaped.mesh
    if (mesh === this.#c.audit.mesh) return 'ignored'
    const known = (await this.#c.keysOf(mesh)) ?? (await this.#chained(mesh, shaped.key, chain))
    const head = parseTreeHead(shaped, known?.keys ?? [mesh])
    if ((await this.defection(mesh)) !== undefined) return 'defection'
    const held = await this.held(mesh)
    if (held === undefined) {
      // Nothing to compare with: checked against the mesh's tree when it can be asked.
      const verdict = await this.#checkAgainstSource(head, known)
      if (verdict === 'defection') return verdict
      await this.#hold(head)
      return 'held'
    }
    if (fresh) compareTreeHeads(held, head)
    if (held.size === head.size) {
      if (held.root !== head.root) {
        await this.#defect(this.#proof(held, head, null, [], known), 'found')
        return 'defection'
      }
      return 'same'
    }
    const verdicts = [
      await this.#checkAgainstSource(held, known),
      await this.#checkAgainstSource(head, known),
    ]
    if (verdicts.includes('defection')) return 'defection'
    if (verdicts.includes('unknown')) return 'unverified'
    if (head.size > held.size) {
      await this.#hold(head)
      return 'held'
    }
    return 'older'
  }

  /** Whether `head` is a prefix of the mesh's own tree now (asked of it): consistent, a defection (written), or unknown. */
  async #checkAgainstSource(
    head: SignedTreeHead,
    known: { keys: string[]; rotation: RotationRecord[] } | undefined,
  ): Promise<'consistent' | 'defection' | 'unknown'> {
    if (head.size === 0) return 'consistent'
    const answer = await this.#c.ask(head.mesh, head.size).catch(() => undefined)
    if (answer === undefined) return 'unknown'
    let now: SignedTreeHead
    try {
      now = parseTreeHead(answer.sth, known?.keys ?? [head.mesh])
    } catch {
      return 'unknown'
    }
    if (now.mesh !== head.mesh || answer.from !== head.size || answer.to !== now.size) return 'unknown'
    if (now.size === head.size) {
      if (now.root === head.root) return 'consistent'
      await this.#defect(this.#proof(head, now, null, [], known), 'found')
      return 'defection'
    }
    const path = answer.path.map((h) => Buffer.from(h, 'hex'))
    const fromNow = verifyConsistency(
      head.size,
      now.size,
      path,
      Buffer.from(answer.fromRoot, 'hex'),
      Buffer.from(now.root, 'hex'),
    )
    // A proof that does not hold says nothing about `head`: the mesh answered badly.
    if (!fromNow) return 'unknown'
    if (answer.fromRoot === head.root) return 'consistent'
    await this.#defect(this.#proof(head, now, answer.fromRoot, answer.path, known), 'found')
    return 'defection'
  }

  #proof(
    a: SignedTreeHead,
    b: SignedTreeHead,
    prefixRoot: string | null,
    path: string[],
    known: { keys: string[]; rotation: RotationRecord[] } | undefined,
  ): EquivocationProof {
    const [older, newer] = orderHeads(a, b)
    return {
      v: 1,
      mesh: a.mesh,
      older,
      newer,
      prefixRoot,
      path,
      rotation: (known?.rotation ?? []) as unknown as EquivocationProof['rotation'],
      foundBy: this.#c.audit.mesh,
      foundAt: new Date(this.#now()).toISOString(),
    }
  }

  // The keys of a mesh with no peer record: from the chain passed on (checked, then kept
  // when it was needed), or from the one kept before; undefined when the identity key signed.
  async #chained(
    mesh: string,
    key: string,
    chain: unknown,
  ): Promise<{ keys: string[]; rotation: RotationRecord[] } | undefined> {
    if (key === mesh) return undefined
    const kept = await this.#c.audit.watchRecord(CHAIN_PREFIX + mesh)
    for (const candidate of [chain, kept]) {
      if (!Array.isArray(candidate) || candidate.length === 0) continue
      let keys: string[]
      try {
        keys = keysOfMesh(mesh, candidate)
      } catch {
        continue
      }
      if (!keys.includes(key)) continue
      if (candidate !== kept) await this.#c.audit.keepWatchRecord(CHAIN_PREFIX + mesh, candidate)
      return { keys, rotation: candidate as RotationRecord[] }
    }
    return undefined
  }

  async #hold(head: SignedTreeHead): Promise<void> {
    await this.#c.audit.keepWatchRecord(HEAD_PREFIX + head.mesh, head)
  }

  /** Writes the defection (once per mesh) with its audit row; true when it is new. */
  async #defect(proof: EquivocationProof, source: string): Promise<boolean> {
    const checked = verifyEquivocation(proof)
    if ((await this.defection(checked.mesh)) !== undefined) return false
    const record: DefectionRecord = {
      mesh: checked.mesh,
      proof: checked,
      at: new Date(this.#now()).toISOString(),
      source,
    }
    this.#c.logger.error(
      {
        event: 'federation.defection',
        mesh: checked.mesh,
        source,
        older: { size: checked.older.size, root: checked.older.root },
        newer: { size: checked.newer.size, root: checked.newer.root },
      },
      `mesh ${checked.mesh} signed two audit logs that no consistency proof joins`,
    )
    await this.#c.audit.keepWatchRecord(DEFECTION_PREFIX + checked.mesh, record, {
      action: 'federation.defection',
      subject: checked.mesh,
      details: {
        mesh: checked.mesh,
        source,
        older: { size: checked.older.size, root: checked.older.root, ts: checked.older.ts },
        newer: { size: checked.newer.size, root: checked.newer.root, ts: checked.newer.ts },
      },
    })
    this.#c.onDefection?.(record)
    return true
  }
}
