import { useEffect, useRef, useState } from 'react'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import {
  META_KEY,
  type MemberEntry,
  type MessageEntry,
  type ReactionEntry,
  type RedactionEntry,
  type RoomMeta,
} from '../../../api/room-entries.ts'

export interface ChatMessage extends MessageEntry {
  id: string
  /** `@local_id` for this mesh's people, `@local_id:mesh-name` for foreign ones. */
  name: string
  foreign: boolean
  reactions: Record<string, number>
}

export type LinkState =
  | { status: 'connecting' | 'connected' | 'disconnected' }
  | { status: 'closed'; code: number; reason: string }

export interface RoomDoc {
  link: LinkState
  synced: boolean
  messages: ChatMessage[]
  /** The dids whose clients are in the room now (awareness, stamped by the node). */
  present: string[]
  /** Connects again now, with a fresh ticket (after joining the room, say). */
  reconnect: () => void
}

/** Effective member entry per did: the home mesh's latest if any, else the latest (README "Effective membership"). */
function membersOf(doc: Y.Doc, homeMesh: string | undefined): Map<string, MemberEntry> {
  const byDid = new Map<string, { home?: MemberEntry; own?: MemberEntry }>()
  const later = (a: MemberEntry | undefined, b: MemberEntry) => a === undefined || b.ts >= a.ts
  for (const value of doc.getMap<MemberEntry>('members').values()) {
    const slot = byDid.get(value.did) ?? {}
    if (value.mesh === homeMesh) {
      if (later(slot.home, value)) slot.home = value
    } else if (later(slot.own, value)) slot.own = value
    byDid.set(value.did, slot)
  }
  const out = new Map<string, MemberEntry>()
  for (const [did, slot] of byDid) {
    const m = slot.home ?? slot.own
    if (m !== undefined) out.set(did, m)
  }
  return out
}

function read(doc: Y.Doc, ownMesh: string): ChatMessage[] {
  const homeMesh = doc.getMap<RoomMeta>('meta').get(META_KEY)?.homeMesh
  const members = membersOf(doc, homeMesh)
  const redacted = new Set<string>()
  for (const r of doc.getMap<RedactionEntry>('redactions').values()) redacted.add(r.message)
  const reactions = new Map<string, Map<string, Set<string>>>()
  for (const r of doc.getMap<ReactionEntry>('reactions').values()) {
    const perMessage = reactions.get(r.message) ?? new Map<string, Set<string>>()
    const who = perMessage.get(r.emoji) ?? new Set<string>()
    who.add(r.author)
    perMessage.set(r.emoji, who)
    reactions.set(r.message, perMessage)
  }
  const out: ChatMessage[] = []
  for (const [id, entry] of doc.getMap<MessageEntry>('messages').entries()) {
    if (redacted.has(id)) continue
    const m = members.get(entry.author)
    const foreign = entry.authorMesh !== ownMesh
    const name =
      m === undefined || m.mesh !== entry.authorMesh
        ? entry.author
        : foreign
          ? `@${m.localId}:${m.meshName}`
          : `@${m.localId}`
    const counts: Record<string, number> = {}
    for (const [emoji, who] of reactions.get(id) ?? []) counts[emoji] = who.size
    out.push({ ...entry, id, name, foreign, reactions: counts })
  }
  return out.sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : 1))
}

/**
 * A room's Yjs document, synced over the stock y-websocket provider at `/yjs`. Each
 * connection takes a fresh single-use ticket from `ticket(roomId)` (`POST
 * /api/rooms/:id/yjs-ticket`), never the session token, so the provider does not
 * reconnect by itself (it would reuse a spent ticket): after a close this hook fetches
 * another ticket and connects again, backing off. Read-only here: the console posts
 * through the HTTP API and reads what arrives, so everything shown went through the
 * node's checks.
 */
export function useRoomDoc(
  roomId: string,
  ticket: (roomId: string) => Promise<string>,
  ownMesh: string,
): RoomDoc {
  const [state, setState] = useState<Omit<RoomDoc, 'reconnect'>>({
    link: { status: 'connecting' },
    synced: false,
    messages: [],
    present: [],
  })
  const ticketRef = useRef(ticket)
  ticketRef.current = ticket
  const reconnectRef = useRef<() => void>(() => {})

  useEffect(() => {
    const doc = new Y.Doc()
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/yjs`
    const p = new WebsocketProvider(url, roomId, doc, {
      connect: false,
      disableBc: true,
      shouldReconnect: () => false,
    })
    let disposed = false
    let retry: ReturnType<typeof setTimeout> | undefined
    let failures = 0
    let forbidden = 0
    const open = () => {
      clearTimeout(retry)
      retry = undefined
      ticketRef.current(roomId).then(
        (token) => {
          if (disposed) return
          p.params = { token }
          p.connect()
        },
        (err: { status?: number; message?: string }) => {
          if (disposed) return
          const code = err.status === 403 ? 4403 : 4401
          setState((s) => ({ ...s, link: { status: 'closed', code, reason: err.message ?? '' } }))
        },
      )
    }
    const later = (ms: number) => {
      if (!disposed && retry === undefined) retry = setTimeout(open, ms)
    }
    reconnectRef.current = () => {
      failures = 0
      forbidden = 0
      open()
    }
    let frame = 0
    const refresh = () => {
      if (frame !== 0) return
      frame = requestAnimationFrame(() => {
        frame = 0
        setState((s) => ({ ...s, messages: read(doc, ownMesh) }))
      })
    }
    doc.on('update', refresh)
    p.on('status', ({ status }) => setState((s) => ({ ...s, link: { status } })))
    p.on('closed', ({ code, reason }) => {
      // 4403 (not a member) may be brief: a shared room's members arrive with its first
      // entries. Try again a few times before leaving it to the Join button.
      if (code === 4403) {
        setState((s) => ({ ...s, link: { status: 'closed', code, reason } }))
        if (forbidden++ < 10) later(2000)
        return
      }
      // A dropped link, a spent or expired ticket, an ended session (the ticket request
      // signs in again): a fresh ticket, backing off, and a closed state only at the end.
      if (failures >= 8) {
        setState((s) => ({ ...s, link: { status: 'closed', code, reason } }))
        return
      }
      setState((s) => ({ ...s, link: { status: 'connecting' } }))
      later(Math.min(30_000, 250 * 2 ** failures++))
    })
    p.on('sync', (synced) => {
      if (synced) failures = 0
      setState((s) => ({ ...s, synced }))
    })
    const onAwareness = () => {
      const dids = new Set<string>()
      for (const st of p.awareness.getStates().values()) {
        const did = (st as { did?: unknown }).did
        if (typeof did === 'string') dids.add(did)
      }
      setState((s) => ({ ...s, present: [...dids] }))
    }
    p.awareness.on('change', onAwareness)
    open()
    return () => {
      disposed = true
      if (frame !== 0) cancelAnimationFrame(frame)
      clearTimeout(retry)
      reconnectRef.current = () => {}
      p.awareness.off('change', onAwareness)
      p.destroy()
      doc.destroy()
    }
  }, [roomId, ownMesh])

  return { ...state, reconnect: () => reconnectRef.current() }
}
