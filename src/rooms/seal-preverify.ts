import { type SharedCheck, type SharedChecks, shareChecks } from '../identity/index.ts'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import {
  contentAddressed,
  isSeal,
  SEALED_MAPS,
  type Seal,
  type SealedMapName,
  sealFact,
  sealKey,
  sealPayloadText,
  sealSignedText,
  sealSigner,
  type VerifiedSeals,
} from './room-entries.ts'
import {
  BATCH_PREFIX,
  batchSignedText,
  batchSigner,
  isBatchKey,
  isSealBatch,
  type SealBatch,
} from './seal-batch.ts' // b6peer
import { type DecodedUpdate, decodeUpdate, noteMeta } from './update-structs.ts'

/**
 * Issue 15 (verify15): a peer update's seals shared with a verifying thread
 * (identity/verify-thread.ts) from the moment the update arrives, so that the thread
 * verifies seals of the frames the main thread has not reached yet (from the last back,
 * while the main thread goes from the first on).
 *
 * This decides nothing. It only answers, for a signature the synchronous validation
 * (validate-update.ts) is about to verify, whether the thread verified it already — for
 * exactly the signer and payload text it was checked over: the validation checks the
 * update whole as for any update — shapes, keys, each entry's content id against its
 * seal's hash, the signer against its mesh's key history, the room's rules — and takes a
 * seal as verified only when the same signature is known good for the same signer and
 * payload. A seal the thread did not reach, found bad, or never saw (malformed, not the
 * seal of an entry of the same update) is verified there as before, and refused there
 * if it does not verify.
 */
export interface PreverifiedUpdate {
  /** The bytes these seals were read from (the validation uses `decoded` only for these). */
  update: Uint8Array
  /** The update decoded (undefined: it could not be; the validation refuses it). */
  decoded: DecodedUpdate | undefined
  verified: VerifiedSeals
  /** Resolves when the verifying thread has nothing of these seals left to do (tests, benches). */
  settled: () => Promise<void>
}

/**
 * Signatures found good: those verified during this validation (a `Map`, as any
 * `VerifiedSeals`), and, on first asking, those the verifying thread found good.
 */
class SharedVerified extends Map<string, string> {
  readonly #shared: SharedChecks
  readonly #at: Map<string, Given>

  constructor(shared: SharedChecks, at: Map<string, Given>) {
    super()
    this.#shared = shared
    this.#at = at
  }

  override get(sig: string): string | undefined {
    const known = super.get(sig)
    if (known !== undefined) return known
    const given = this.#at.get(sig)
    if (given === undefined) return undefined
    this.#at.delete(sig) // asked once: from now on this map's own
    if (!this.#shared.take(given.i)) return undefined
    const fact = given.fact()
    if (fact === undefined) return undefined
    super.set(sig, fact)
    return fact
  }
}

/** A check given to the thread: its index, and the fact it stands for (made when asked). */
interface Given {
  i: number
  fact: () => string | undefined
}

/**
 * `did`'s signature `sig` over the text `text()` makes (undefined: none): as a shared check (its bytes
 * made only if the check goes to the thread), and the fact it stands for. The text is
 * made at most once; a text that cannot be made is a check that is never good.
 */
function check(
  did: string,
  sig: string,
  text: () => string | undefined,
): { check: SharedCheck; fact: () => string | undefined } {
  let made: string | undefined
  let tried = false
  const once = (): string | undefined => {
    if (!tried) {
      tried = true
      try {
        made = text()
      } catch {
        made = undefined
      }
    }
    return made
  }
  return {
    check: {
      did,
      build: () => {
        const t = once()
        return t === undefined
          ? undefined
          : { data: Buffer.from(t, 'utf8'), signature: Buffer.from(sig, 'base64url') }
      },
    },
    fact: () => {
      const t = once()
      return t === undefined ? undefined : sealFact(did, t)
    },
  }
}

const SEALED = new Set<string>(SEALED_MAPS)

/** Shares the seals of `update`'s entries (room `room`) with the verifying thread. */
export function preverifySeals(room: string, update: Uint8Array): PreverifiedUpdate {
  let decoded: DecodedUpdate
  try {
    decoded = decodeUpdate(update)
  } catch {
    return { update, decoded: undefined, verified: new Map(), settled: async () => {} }
  }
  noteMeta(update, decoded) // for the link's progress once it applied (progress.ts)
  // The entries this update writes, by the key of their seal; then their seals.
  const entries = new Map<string, { map: SealedMapName; key: string }>()
  const seals: Array<{ at: string; seal: Seal }> = []
  const records: Array<{ id: string; record: SealBatch }> = [] // batch records (batch15), one signature for many entries (b6peer)
  for (const struct of decoded.structs) {
    if (!(struct instanceof Y.Item) || struct.length !== 1 || !(struct.content instanceof Y.ContentAny))
      continue
    const parent = struct.parent
    const key = struct.parentSub
    if (typeof parent !== 'string' || typeof key !== 'string') continue
    if (parent === 'seals') {
      const seal = struct.content.arr[0]
      if (isSeal(seal)) seals.push({ at: key, seal })
      else if (isBatchKey(key) && isSealBatch(seal))
        records.push({ id: key.slice(BATCH_PREFIX.length), record: seal })
    } else if (SEALED.has(parent)) {
      entries.set(sealKey(parent as SealedMapName, key), { map: parent as SealedMapName, key })
    }
  }
  const checks: SharedCheck[] = []
  const at = new Map<string, Given>()
  const give = (did: string, sig: string, text: () => string | undefined) => {
    const c = check(did, sig, text)
    at.set(sig, { i: checks.length, fact: c.fact })
    checks.push(c.check)
  }
  for (const { at: sk, seal } of seals) {
    const entry = entries.get(sk)
    if (entry === undefined) continue // an orphan seal: refused there, unverified
    // A content-addressed entry's seal covers its key (validation checks both): a mismatch is refused there.
    if (contentAddressed(entry.map) && seal.hash !== entry.key) continue
    const mesh = seal.key === undefined ? undefined : seal.mesh
    // posts15: a seal in a tree signs its root
    give(sealSigner(seal), seal.sig, () =>
      sealSignedText(seal, sealPayloadText(room, entry.map, entry.key, seal.hash, mesh)),
    )
  }
  // A record none of whose entries the update writes is refused there (orphan-seal), unverified.
  for (const { id, record } of records) {
    if (!record.entries.some(([map, key]) => entries.has(`${map}/${key}`))) continue
    // Its own payload, or its tree's root (posts15); a record not named by what it lists: refused there.
    give(batchSigner(record), record.sig, () => batchSignedText(record, id, room))
  }
  if (checks.length === 0) return { update, decoded, verified: new Map(), settled: async () => {} }
  const shared = shareChecks(checks)
  return { update, decoded, verified: new SharedVerified(shared, at), settled: () => shared.settled() }
}
