import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { decoding, encoding } from './lazy-yjs.ts' // issue 15: loaded on first use
import { ROOM_ID_RE, ROOM_LIMITS } from './room-entries.ts'

/**
 * `/mesh/rooms/1.0.0` — shared rooms between two meshes with an accepted connection;
 * `/mesh/rooms/1.1.0` the same, with the catch-up chunks deflated (sync step 3).
 *
 * One long-lived libp2p stream per pair of meshes (a "link"); either side may open
 * it. When both open one at the same time, both keep the stream opened by the mesh
 * whose did sorts first and close the other. Every message is one varint
 * length-prefixed frame of at most `ROOM_SYNC_LIMITS.maxFrameBytes`, lib0-encoded:
 *
 * ```
 * varString  roomId
 * varUint    messageType
 * payload    by type:
 *   0 sync       y-protocols sync message: varUint 0 SyncStep1 + varUint8Array state vector
 *                                          varUint 1 SyncStep2 + varUint8Array update
 *                                          varUint 2 Update    + varUint8Array update
                                          varUint 3 SyncStep2 + varUint8Array update, raw
                                                    deflated (1.1.0: the sender's catch-up chunks;
                                                    inflated to at most maxUpdateBytes)
 *   1 awareness  varUint8Array y-protocols awareness update
 *   2 share      varString JSON of a SignedShare (share.ts): the room is shared with the receiver
 *   3 backfill   varUint entries, varUint bytes, varUint chunks: announces the SyncStep2
 *                chunks that follow (progress for the receiver)
 *   4 refused    varString MESH_… code, varString reason: the sender dropped a frame of ours
 *   5 notice     varString JSON of a SignedNotice (share-notice.ts): an invitation's answer,
 *                or the end of a share (unshare, leave)
 * ```
 *
 * When the link opens, each side sends, for every room shared with the other, a
 * `share` frame for the rooms it shared itself, then SyncStep1. The answer to a
 * SyncStep1 is the state-vector diff, split into SyncStep2 chunks of at most
 * `maxBackfillEventsPerRequest` entries (backfill.ts) announced by a `backfill`
 * frame; when the diff is empty only the `backfill` frame (0 chunks) goes out, so that
 * the asker knows it is caught up. Live changes follow as Update
 * frames, batched per tick per room, never sent back to the mesh they came from.
 *
 * Everything received is checked: a frame for a room not shared with the sender is
 * refused (MESH_UPDATE_REJECTED, reason `not-shared`); updates go through
 * `Room.applyUpdate(update, {kind: 'peer', meshDid})` and a refused one is dropped
 * alone; awareness states are accepted only for Yjs client ids bound to the sending
 * mesh, at most `maxAwarenessStates` per frame and `ROOM_LIMITS.maxAwarenessBytes`
 * each. A malformed frame is dropped and counted; the link stays up. A frame over
 * the size limit closes the link (the length prefix cannot be trusted past it).
 */
export const MESH_ROOMS_PROTOCOL = '/mesh/rooms/1.0.0'

/** Protocol ids of the room sync this node speaks (newest first). */
/**
 * rooms cost (issue 15): 1.1.0 is 1.0.0 plus catch-up chunks (SyncStep2) sent deflated
 * (`SYNC_STEP.step2Deflated`), about 0.42× the missed content instead of 1.9×. Both are
 * offered, the newer first: a peer that knows only 1.0.0 gets plain chunks.
 */
export const MESH_ROOMS_PROTOCOL_DEFLATE = '/mesh/rooms/1.1.0'

export const ROOM_SYNC_PROTOCOLS: readonly string[] = [MESH_ROOMS_PROTOCOL_DEFLATE, MESH_ROOMS_PROTOCOL]

export const ROOM_MESSAGE = {
  sync: 0,
  awareness: 1,
  share: 2,
  backfill: 3,
  refused: 4,
  // room lifecycle (SPEC §9)
  notice: 5,
} as const

export const SYNC_STEP = { step1: 0, step2: 1, update: 2, step2Deflated: 3 } as const

export const ROOM_SYNC_LIMITS = {
  /** Largest frame: an update at its limit plus framing. */
  maxFrameBytes: ROOM_LIMITS.maxUpdateBytes + 4096,
  /** Awareness states per frame. */
  maxAwarenessStates: 64,
  /** Largest share frame, bytes of JSON (room for two rotation chains of 16 records). */
  maxShareBytes: 48 * 1024,
  /** Bytes waiting to be written on a link before it is closed as too slow. */
  maxQueuedBytes: 64 * 1024 * 1024,
} as const

export type RoomFrame =
  | { room: string; type: 'step1'; stateVector: Uint8Array }
  | { room: string; type: 'step2' | 'update'; update: Uint8Array; deflate?: boolean }
  | { room: string; type: 'awareness'; update: Uint8Array }
  | { room: string; type: 'share'; json: string }
  | { room: string; type: 'backfill'; entries: number; bytes: number; chunks: number }
  | { room: string; type: 'refused'; code: string; reason: string }
  | { room: string; type: 'notice'; json: string }

/** Thrown by `decodeFrame` for anything that is not a well-formed frame. */
export class MalformedFrameError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MalformedFrameError'
  }
}

/** The message type each frame travels as. */
const MESSAGE_OF: Record<RoomFrame['type'], number> = {
  step1: ROOM_MESSAGE.sync,
  step2: ROOM_MESSAGE.sync,
  update: ROOM_MESSAGE.sync,
  awareness: ROOM_MESSAGE.awareness,
  share: ROOM_MESSAGE.share,
  backfill: ROOM_MESSAGE.backfill,
  refused: ROOM_MESSAGE.refused,
  notice: ROOM_MESSAGE.notice,
}

export function encodeFrame(frame: RoomFrame): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarString(e, frame.room)
  encoding.writeVarUint(e, MESSAGE_OF[frame.type])
  switch (frame.type) {
    case 'step1':
      encoding.writeVarUint(e, SYNC_STEP.step1)
      encoding.writeVarUint8Array(e, frame.stateVector)
      break
    case 'step2':
    case 'update':
      if (frame.type === 'step2' && frame.deflate === true) {
        encoding.writeVarUint(e, SYNC_STEP.step2Deflated)
        encoding.writeVarUint8Array(e, deflateRawSync(frame.update))
        break
      }
      encoding.writeVarUint(e, SYNC_STEP[frame.type])
      encoding.writeVarUint8Array(e, frame.update)
      break
    case 'awareness':
      encoding.writeVarUint8Array(e, frame.update)
      break
    case 'share':
    case 'notice':
      encoding.writeVarString(e, frame.json)
      break
    case 'backfill':
      for (const n of [frame.entries, frame.bytes, frame.chunks]) encoding.writeVarUint(e, n)
      break
    case 'refused':
      encoding.writeVarString(e, frame.code)
      encoding.writeVarString(e, frame.reason)
      break
  }
  return encoding.toUint8Array(e)
}

/**
 * Decodes one frame; MalformedFrameError for anything else (unknown type, bad room
 * id, truncated or trailing bytes). The room id is returned when it could be read,
 * so that a refusal can name it.
 */
/** A deflated chunk, inflated to at most an update's limit (a deflate bomb is a malformed frame). */
function inflated(payload: Uint8Array): Uint8Array {
  try {
    return new Uint8Array(inflateRawSync(payload, { maxOutputLength: ROOM_LIMITS.maxUpdateBytes }))
  } catch {
    throw new MalformedFrameError('deflated chunk does not inflate within the update limit')
  }
}

export function decodeFrame(bytes: Uint8Array): RoomFrame {
  if (bytes.byteLength > ROOM_SYNC_LIMITS.maxFrameBytes) throw new MalformedFrameError('frame too large')
  // A copy with a buffer of its own: a length read from the frame can never reach past it.
  const d = decoding.createDecoder(bytes.slice())
  let frame: RoomFrame
  try {
    const room = decoding.readVarString(d)
    if (!ROOM_ID_RE.test(room)) throw new MalformedFrameError('bad room id')
    const type = decoding.readVarUint(d)
    switch (type) {
      case ROOM_MESSAGE.sync: {
        const step = decoding.readVarUint(d)
        const payload = decoding.readVarUint8Array(d)
        if (step === SYNC_STEP.step1) frame = { room, type: 'step1', stateVector: payload }
        else if (step === SYNC_STEP.step2) frame = { room, type: 'step2', update: payload }
        else if (step === SYNC_STEP.update) frame = { room, type: 'update', update: payload }
        else if (step === SYNC_STEP.step2Deflated) frame = { room, type: 'step2', update: inflated(payload) }
        else throw new MalformedFrameError('unknown sync step')
        break
      }
      case ROOM_MESSAGE.awareness:
        frame = { room, type: 'awareness', update: decoding.readVarUint8Array(d) }
        break
      case ROOM_MESSAGE.share:
        frame = { room, type: 'share', json: decoding.readVarString(d) }
        break
      case ROOM_MESSAGE.notice:
        frame = { room, type: 'notice', json: decoding.readVarString(d) }
        break
      case ROOM_MESSAGE.backfill:
        frame = {
          room,
          type: 'backfill',
          entries: decoding.readVarUint(d),
          bytes: decoding.readVarUint(d),
          chunks: decoding.readVarUint(d),
        }
        break
      case ROOM_MESSAGE.refused:
        frame = { room, type: 'refused', code: decoding.readVarString(d), reason: decoding.readVarString(d) }
        break
      default:
        throw new MalformedFrameError('unknown message type')
    }
  } catch (err) {
    if (err instanceof MalformedFrameError) throw err
    throw new MalformedFrameError('truncated frame')
  }
  if (d.pos !== d.arr.length) throw new MalformedFrameError('trailing bytes')
  return frame
}
