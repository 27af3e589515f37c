/**
 * Seal checks on the catch-up path (issue 15): every seal of a large catch-up chunk is
 * verified, a forged one among hundreds is refused with nothing unverified applied, and
 * the faster seal payload and content id write exactly the bytes the generic JCS does.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it, type TestContext } from 'node:test'
import * as Y from 'yjs'
import { canonicalBytes, Ed25519KeyPair, verifyBytes, verifyCanonical } from '../../src/identity/index.ts'
import {
  contentId,
  type MessageEntry,
  type Room,
  refusalOf,
  type Seal,
  sealKey,
  splitDiff,
} from '../../src/rooms/index.ts'
import { makeSeal, sealPayload, sealPayloadBytes, verifySeal } from '../../src/rooms/room-entries.ts'
import { alice, meshA, meshC, sharedRoom } from './helpers.ts'

const fromA = { kind: 'peer', meshDid: meshA.did } as const
const fromC = { kind: 'peer', meshDid: meshC.did } as const

/** alice's `n` messages at A, each its own sealed write in its own turn (a seal each, not a batch record). */
async function fillA(room: Room, n: number): Promise<MessageEntry[]> {
  const out: MessageEntry[] = []
  const ts = Date.now()
  for (let done = 0; done < n; done += 100) {
    const batch = Array.from({ length: Math.min(100, n - done) }, (_, j) => {
      const value: MessageEntry = {
        v: 1,
        room: room.id,
        author: alice.did,
        authorMesh: meshA.did,
        body: `message ${done + j}`,
        mentions: [],
        ts: ts + done + j,
      }
      return value
    })
    for (const value of batch) await room.write([{ map: 'messages', key: contentId(value), value }])
    out.push(...batch)
  }
  return out
}

/** `chunk` with one character of `seal`'s signature changed (the update still decodes). */
function forge(chunk: Uint8Array, seal: Seal): Uint8Array {
  const bytes = Buffer.from(chunk)
  const at = bytes.indexOf(seal.sig)
  assert.ok(at >= 0, 'the seal is in the chunk')
  const i = at + 40
  bytes[i] = bytes[i] === 0x41 ? 0x42 : 0x41 // 'A' ↔ 'B'
  return new Uint8Array(bytes)
}

/** Every message a room holds has a seal that verifies. */
function everyMessageSealed(room: Room): number {
  let n = 0
  const seals = room.doc.getMap('seals')
  for (const [key, value] of room.doc.getMap('messages')) {
    const seal = seals.get(sealKey('messages', key)) as Seal | undefined
    assert.ok(seal !== undefined && verifySeal(seal, room.id, 'messages', key, value), `seal of ${key}`)
    n++
  }
  return n
}

/** A shared room where A wrote `n` messages B missed: B's catch-up plan, and the seal of message `victim`. */
async function missed(t: TestContext, n: number, victim: number) {
  const w = await sharedRoom(t)
  const before = w.roomB.messageCount
  const sv = Y.encodeStateVector(w.roomB.doc)
  const written = await fillA(w.roomA, n)
  const plan = splitDiff(w.roomA.doc, sv, { maxEntries: 1000 })
  const victimId = contentId(written[victim] as MessageEntry)
  const seal = w.roomA.doc.getMap('seals').get(sealKey('messages', victimId)) as Seal
  return { w, before, plan, victimId, seal }
}

describe('seals on the catch-up path', () => {
  it('a forged seal inside a catch-up chunk of 600 messages is refused; the rest applies, each seal verified', async (t) => {
    const { w, before, plan, victimId, seal } = await missed(t, 600, 300)
    let refusal: ReturnType<typeof refusalOf>
    for (const chunk of plan.chunks) {
      const forged = Buffer.from(chunk).includes(seal.sig)
      const result = await w.roomB.applyUpdate(forged ? forge(chunk, seal) : chunk, fromA)
      if (forged) refusal = refusalOf(result)
      else assert.equal(refusalOf(result), undefined)
    }
    assert.equal(refusal?.code, 'MESH_UPDATE_REJECTED')
    assert.equal(refusal?.details.reason, 'bad-seal')
    assert.equal(w.roomB.message(victimId), undefined, 'the forged entry is not applied')
    // The home mesh answers for its own writer: the refused entry keeps its place as a hole,
    // and the 599 others apply, each with a seal that verifies.
    assert.equal(refusal?.details.refusedEntries, 1)
    assert.equal(w.roomB.messageCount, before + 599)
    assert.equal(everyMessageSealed(w.roomB), w.roomB.messageCount)
    assert.equal(w.roomB.doc.store.pendingStructs, null)
  })

  it('one of 300 relayed by a mesh that does not answer for the writer: cut at the forgery, completed by an honest sync', async (t) => {
    const { w, before, plan, victimId, seal } = await missed(t, 300, 150)
    assert.equal(plan.chunks.length, 1, 'one chunk')
    const result = await w.roomB.applyUpdate(forge(plan.chunks[0] as Uint8Array, seal), fromC)
    assert.equal(refusalOf(result)?.details.reason, 'bad-seal')
    assert.equal(w.roomB.message(victimId), undefined)
    // No hole from a relay: what the writer wrote from the forgery on waits for a mesh that answers for it.
    assert.ok(w.roomB.messageCount < before + 300, `${w.roomB.messageCount - before} applied`)
    assert.equal(everyMessageSealed(w.roomB), w.roomB.messageCount)
    // The honest catch-up from A brings the rest, the genuine entry included.
    const honest = Y.encodeStateAsUpdate(w.roomA.doc, Y.encodeStateVector(w.roomB.doc))
    const again = await w.roomB.applyUpdate(honest, fromA)
    assert.equal(refusalOf(again), undefined, refusalOf(again)?.message ?? '')
    assert.ok(w.roomB.message(victimId))
    assert.equal(w.roomB.messageCount, before + 300)
    assert.equal(everyMessageSealed(w.roomB), w.roomB.messageCount)
  })

  it('a seal payload written out is the JCS of the payload; a signature over either verifies as the other', () => {
    const key = Ed25519KeyPair.generate()
    const texts = ['plain', 'quote " and \\ backslash', 'line\nbreak\u0001', 'é€中😀', '\u2028', '']
    for (const [i, text] of texts.entries()) {
      const mesh = i % 2 === 0 ? undefined : key.did
      const args = [`room${text}`, 'messages', `k${text}`, `h${text}`, mesh] as const
      const bytes = sealPayloadBytes(...args)
      assert.deepEqual(Buffer.from(bytes), Buffer.from(canonicalBytes(sealPayload(...args))))
      const sig = Buffer.from(key.sign(bytes)).toString('base64url')
      assert.equal(verifyCanonical(key.did, sealPayload(...args), sig), true)
      assert.equal(verifyBytes(key.did, bytes, sig), true)
    }
    // JCS refuses a lone surrogate: so does the written-out payload.
    assert.throws(() => sealPayloadBytes('room\ud800', 'messages', 'k', 'h'))
    assert.equal(verifyBytes(key.did, new Uint8Array(1), 'x'.repeat(200)), false)
  })

  it('a content id hashes the UTF-8 of the JCS text, as before', () => {
    const entry = { v: 1, body: 'héllo 😀 "quoted"\n', mentions: ['a'], ts: 1, room: 'r' }
    assert.equal(contentId(entry), createHash('sha256').update(canonicalBytes(entry)).digest('base64url'))
  })

  it('a seal found good once is taken again only for the same signer and payload', () => {
    const memo = new Map<string, string>()
    const entry: MessageEntry = {
      v: 1,
      room: 'room-1234',
      author: alice.did,
      authorMesh: meshA.did,
      body: 'hi',
      mentions: [],
      ts: 1,
    }
    const id = contentId(entry)
    const seal = makeSeal(meshA, 'room-1234', 'messages', id, entry)
    assert.equal(verifySeal(seal, 'room-1234', 'messages', id, entry, id, memo), true)
    assert.equal(memo.size, 1)
    // The same signature claimed for another room, key or signer: checked again, and refused.
    assert.equal(verifySeal(seal, 'room-5678', 'messages', id, entry, id, memo), false)
    assert.equal(
      verifySeal({ ...seal, mesh: meshC.did }, 'room-1234', 'messages', id, entry, id, memo),
      false,
    )
    const other = { ...entry, body: 'not hi' }
    assert.equal(
      verifySeal(
        { ...seal, hash: contentId(other) },
        'room-1234',
        'messages',
        contentId(other),
        other,
        undefined,
        memo,
      ),
      false,
    )
    assert.equal(verifySeal(seal, 'room-1234', 'messages', id, entry, id, memo), true)
  })
})
