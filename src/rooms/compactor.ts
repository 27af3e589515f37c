import { Worker } from 'node:worker_threads'
import type { MergeAnswer, MergeJob } from './compact-worker.ts'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use

/**
 * Issue 15 (p99 post-to-visible): the merges of room-log compaction run on one worker
 * thread shared by every room of the process, not on the event loop — a compaction
 * merging a large segment took 30–70 ms of the main thread, and every post, frame and
 * reader behind it waited that long. The worker starts on the first compaction (a node
 * that compacts nothing never starts it) and holds the process open only while a merge
 * is under way. Should the worker fail to start or die, the merges it had and every
 * later one run here, on the main thread, as before: a compaction never fails for it.
 */
export interface Compactor {
  /** `Y.mergeUpdates(parts)`, computed off the main thread. */
  merge(parts: Uint8Array[]): Promise<Uint8Array>
}

interface Pending {
  parts: Uint8Array[]
  resolve: (update: Uint8Array) => void
  reject: (err: unknown) => void
}

class WorkerCompactor implements Compactor {
  readonly #script: URL
  #worker: Worker | undefined
  #broken = false
  #next = 0
  readonly #pending = new Map<number, Pending>()

  constructor(script: URL) {
    this.#script = script
  }

  merge(parts: Uint8Array[]): Promise<Uint8Array> {
    const worker = this.#broken ? undefined : this.#start()
    if (worker === undefined) return inline(parts)
    return new Promise<Uint8Array>((resolve, reject) => {
      const id = this.#next++
      this.#pending.set(id, { parts, resolve, reject })
      if (this.#pending.size === 1) worker.ref()
      worker.postMessage({ id, parts } satisfies MergeJob)
    })
  }

  #start(): Worker | undefined {
    if (this.#worker !== undefined) return this.#worker
    let worker: Worker
    try {
      worker = new Worker(this.#script)
    } catch {
      this.#broken = true
      return undefined
    }
    worker.unref()
    worker.on('message', (answer: MergeAnswer) => {
      const job = this.#pending.get(answer.id)
      if (job === undefined) return
      this.#pending.delete(answer.id)
      if (this.#pending.size === 0) worker.unref()
      if ('update' in answer) job.resolve(answer.update)
      else job.reject(new Error(`room log merge failed: ${answer.error}`))
    })
    const lost = (): void => {
      if (this.#worker !== worker) return
      this.#worker = undefined
      this.#broken = true
      // What the worker had not answered is merged here.
      for (const [id, job] of this.#pending) {
        this.#pending.delete(id)
        inline(job.parts).then(job.resolve, job.reject)
      }
    }
    worker.on('error', lost)
    worker.on('exit', lost)
    this.#worker = worker
    return worker
  }
}

function inline(parts: Uint8Array[]): Promise<Uint8Array> {
  try {
    return Promise.resolve(Y.mergeUpdates(parts))
  } catch (err) {
    return Promise.reject(err)
  }
}

const WORKER_SCRIPT = new URL('./compact-worker.ts', import.meta.url)

/** A compactor with its own worker running `script` (tests: a script that fails). */
export function workerCompactor(script: URL = WORKER_SCRIPT): Compactor {
  return new WorkerCompactor(script)
}

let shared: Compactor | undefined

/** The process's compactor (one worker for every room's log). */
export function sharedCompactor(): Compactor {
  shared ??= workerCompactor()
  return shared
}

/** Merges on the calling thread (tests, and a log told not to use the worker). */
export const inlineCompactor: Compactor = { merge: inline }
