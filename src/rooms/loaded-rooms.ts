import type { Logger } from '../log.ts'
import type { Room } from './room.ts'

/**
 * The rooms a node holds in memory (issue 15): each loaded at most once, however many
 * callers ask at the same time (one loading promise per room, as Hocuspocus does), and,
 * with `idleUnloadMs`, unloaded once nobody used it for that long — a node holding a
 * thousand rooms keeps in memory only those in use, and loads another on demand.
 *
 * A room is in use while it is `held` (a y-websocket client connected to it), while a
 * write of it is not yet durable, while presence (awareness) states of others are in
 * it, and for `idleUnloadMs` after its last load, update or write. Unloading destroys its
 * document (and awareness); a later `load` reads it again from its log. Whoever keeps a
 * Room across awaits must not keep it for longer than such a while (the HTTP routes,
 * the sync layer and the agents ask for it again each time).
 */
export interface LoadedRoomsInit {
  /** Reads a room from the store (called once per load). */
  read: (id: string) => Promise<Room>
  /** Told of every room loaded or created. */
  onLoaded: (room: Room) => void
  /** Unload rooms idle this long; 0 = never. */
  idleUnloadMs: number
  now: () => number
  logger: Logger
}

export class LoadedRooms {
  /** Counters for tests and metrics. */
  readonly stats = { unloads: 0 }
  readonly #init: LoadedRoomsInit
  readonly #rooms = new Map<string, Room>()
  readonly #loading = new Map<string, Promise<Room>>()
  #sweeper: ReturnType<typeof setInterval> | undefined

  constructor(init: LoadedRoomsInit) {
    this.#init = init
  }

  /** Starts the sweep of idle rooms (every half `idleUnloadMs`, at least each second). */
  start(): void {
    const idle = this.#init.idleUnloadMs
    if (idle <= 0 || this.#sweeper !== undefined) return
    this.#sweeper = setInterval(() => this.unloadIdle(), Math.max(1000, Math.floor(idle / 2)))
    this.#sweeper.unref()
  }

  /** Stops the sweep, waits for the loads under way and every pending write, destroys every room. */
  async stop(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper)
    this.#sweeper = undefined
    await Promise.allSettled([...this.#loading.values()])
    const rooms = [...this.#rooms.values()]
    await Promise.allSettled(rooms.map((r) => r.flush()))
    for (const room of rooms) room.doc.destroy()
    this.#rooms.clear()
  }

  /** The loaded room, if it is loaded and healthy (no load, no use recorded). */
  peek(id: string): Room | undefined {
    return this.#rooms.get(id)
  }

  /** The loaded room; loads it once however many callers ask at the same time. */
  load(id: string): Promise<Room> {
    const loaded = this.#rooms.get(id)
    if (loaded !== undefined && !loaded.failed) {
      loaded.touch()
      return Promise.resolve(loaded)
    }
    // A room that failed (its store, or an update left pending) is loaded again.
    if (loaded !== undefined) this.#rooms.delete(id)
    let loading = this.#loading.get(id)
    if (loading === undefined) {
      loading = this.#init.read(id).then((room) => {
        this.add(room)
        return room
      })
      this.#loading.set(id, loading)
      const forget = () => {
        this.#loading.delete(id)
      }
      loading.then(forget, forget)
    }
    return loading
  }

  /** Adds a room loaded or created by the caller, and tells `onLoaded`. */
  add(room: Room): void {
    room.touch()
    this.#rooms.set(room.id, room)
    this.#init.onLoaded(room)
  }

  /** Forgets `room` if it is the one loaded under its id (a failed store; a refused create). */
  forget(room: Room): void {
    if (this.#rooms.get(room.id) === room) this.#rooms.delete(room.id)
  }

  values(): IterableIterator<Room> {
    return this.#rooms.values()
  }

  get size(): number {
    return this.#rooms.size
  }

  /** Unloads every room idle for `idleUnloadMs` (or `idleMs`); returns how many. */
  unloadIdle(idleMs = this.#init.idleUnloadMs): number {
    if (idleMs <= 0) return 0
    const now = this.#init.now()
    let unloaded = 0
    for (const room of [...this.#rooms.values()]) {
      if (now - room.usedAt < idleMs || room.inUse) continue
      this.#rooms.delete(room.id)
      room.unload()
      unloaded++
    }
    if (unloaded > 0) {
      this.stats.unloads += unloaded
      this.#init.logger.debug({ event: 'rooms.unloaded', rooms: unloaded }, 'idle rooms unloaded')
    }
    return unloaded
  }
}
