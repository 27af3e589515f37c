import * as Y from 'yjs'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { contentId, makeSeal, sealKey, type TaskEntry } from '../../src/rooms/index.ts'

/** A status change of `task` to done by `author` of `authorMesh` (`extra` overrides any field). */
export function statusEntry(
  room: string,
  task: string,
  author: string,
  authorMesh: string,
  extra: Partial<Record<string, unknown>> = {},
): TaskEntry {
  return {
    v: 1,
    room,
    author,
    authorMesh,
    ts: Date.now(),
    op: 'status',
    task,
    status: 'done',
    ...extra,
  } as TaskEntry
}

/**
 * The update of a fresh client `client` of `key`'s mesh writing `entries` into a copy of
 * `doc`, bound to that mesh in the same update; each entry sealed by `sealer` (default
 * `key`) in the mesh's name — a forger's write, when `sealer` is not the mesh's key.
 */
export function sealedTaskUpdate(
  doc: Y.Doc,
  roomId: string,
  client: number,
  key: Ed25519KeyPair,
  entries: TaskEntry[],
  sealer: Ed25519KeyPair = key,
): Uint8Array {
  const copy = new Y.Doc({ gc: false })
  Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc))
  copy.clientID = client
  const before = Y.encodeStateVector(copy)
  copy.transact(() => {
    const binding = { mesh: key.did, room: roomId }
    copy.getMap('clients').set(String(client), binding)
    copy
      .getMap('seals')
      .set(sealKey('clients', String(client)), makeSeal(key, roomId, 'clients', String(client), binding))
    for (const entry of entries) {
      const id = contentId(entry)
      copy.getMap('tasks').set(id, entry)
      copy
        .getMap('seals')
        .set(sealKey('tasks', id), { ...makeSeal(sealer, roomId, 'tasks', id, entry), mesh: key.did })
    }
  })
  return Y.encodeStateAsUpdate(copy, before)
}
