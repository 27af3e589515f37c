import { type PoolCheck, verifyOffThread } from '../identity/index.ts'
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
  sealSigner,
  type VerifiedSeals,
} from './room-entries.ts'
import { type DecodedUpdate, decodeUpdate } from './update-structs.ts'

/**
 * Issue 15 (verify15): a peer update's seals verified on libuv's thread pool before
 * the update's turn comes (Room.applyPeerUpdate), so that while the main thread applies
 * one frame the pool verifies the next frame's seals.
 *
 * This decides nothing. It only fills a `VerifiedSeals` with the signatures found good,
 * each for exactly the signer and payload text it was checked over; the synchronous
 * validation (validate-update.ts) then checks the update whole, as for any update —
 * shapes, keys, each entry's content id against its seal's hash, the signer against its
 * mesh's key history, the room's rules — and takes a seal as verified only when the
 * same signature is there for the same signer and payload. A seal that failed here, or
 * was not looked at (malformed, not the seal of an entry of the same update), is
 * verified there as before, and refused there if it does not verify.
 */
export interface PreverifiedUpdate {
  /** The bytes these seals were read from (the validation uses `decoded` only for these). */
  update: Uint8Array
  /** The update decoded (undefined: it could not be; the validation refuses it). */
  decoded: DecodedUpdate | undefined
  verified: VerifiedSeals
}

const SEALED = new Set<string>(SEALED_MAPS)

/** Verifies the seals of `update`'s entries (room `room`) on the pool; never rejects. */
export async function preverifySeals(room: string, update: Uint8Array): Promise<PreverifiedUpdate> {
  const verified: VerifiedSeals = new Map()
  let decoded: DecodedUpdate
  try {
    decoded = decodeUpdate(update)
  } catch {
    return { update, decoded: undefined, verified }
  }
  // The entries this update writes, by the key of their seal; then their seals.
  const entries = new Map<string, { map: SealedMapName; key: string }>()
  const seals: Array<{ at: string; seal: Seal }> = []
  for (const struct of decoded.structs) {
    if (!(struct instanceof Y.Item) || struct.length !== 1 || !(struct.content instanceof Y.ContentAny))
      continue
    const parent = struct.parent
    const key = struct.parentSub
    if (typeof parent !== 'string' || typeof key !== 'string') continue
    if (parent === 'seals') {
      const seal = struct.content.arr[0]
      if (isSeal(seal)) seals.push({ at: key, seal })
    } else if (SEALED.has(parent)) {
      entries.set(sealKey(parent as SealedMapName, key), { map: parent as SealedMapName, key })
    }
  }
  const checks: PoolCheck[] = []
  const facts: Array<{ sig: string; fact: string }> = []
  for (const { at, seal } of seals) {
    const entry = entries.get(at)
    if (entry === undefined) continue // an orphan seal: refused there, unverified
    // A content-addressed entry's seal covers its key (validation checks both): a mismatch is refused there.
    if (contentAddressed(entry.map) && seal.hash !== entry.key) continue
    let text: string
    try {
      text = sealPayloadText(
        room,
        entry.map,
        entry.key,
        seal.hash,
        seal.key === undefined ? undefined : seal.mesh,
      )
    } catch {
      continue
    }
    const did = sealSigner(seal)
    checks.push({ did, data: Buffer.from(text, 'utf8'), signature: Buffer.from(seal.sig, 'base64url') })
    facts.push({ sig: seal.sig, fact: sealFact(did, text) })
  }
  const answers = await verifyOffThread(checks)
  answers.forEach((ok, i) => {
    const found = facts[i]
    if (ok && found !== undefined) verified.set(found.sig, found.fact)
  })
  return { update, decoded, verified }
}
