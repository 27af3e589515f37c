/**
 * The child processes of one side of the DHT lookup benchmark (dht-worker.ts), driven
 * over IPC: node g lives in process g mod k, at index g div k.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import type { WorkerRequest } from './dht-worker.ts'

const WORKER_SCRIPT = new URL('./dht-worker.ts', import.meta.url).pathname

/** The child processes of one side, and which holds node g (process g mod k, index g div k). */
export class Workers {
  readonly #procs: ChildProcess[] = []
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  #nextId = 1

  static async start(count: number): Promise<Workers> {
    const workers = new Workers()
    await Promise.all(Array.from({ length: count }, () => workers.#spawn()))
    return workers
  }

  get size(): number {
    return this.#procs.length
  }

  async #spawn(): Promise<void> {
    // DHT_BENCH_WORKER_ARGS: extra node flags for the workers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
    const proc = fork(WORKER_SCRIPT, [], {
      execArgv: [
        ...process.execArgv,
        ...(process.env.DHT_BENCH_WORKER_ARGS?.split(' ').filter(Boolean) ?? []),
      ],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
    })
    this.#procs.push(proc)
    const up = new Promise<void>((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`dht worker exited with ${code}`)))
      proc.on('message', (msg: { id: number; ok: boolean; value?: unknown; error?: string }) => {
        if (msg.id === 0) return resolve()
        const waiter = this.#pending.get(msg.id)
        this.#pending.delete(msg.id)
        if (msg.ok) waiter?.resolve(msg.value)
        else waiter?.reject(new Error(msg.error))
      })
    })
    proc.once('exit', () => {
      for (const [id, waiter] of this.#pending) {
        this.#pending.delete(id)
        waiter.reject(new Error('dht worker exited'))
      }
    })
    await up
  }

  ask<T>(worker: number, req: WorkerRequest): Promise<T> {
    const proc = this.#procs[worker] as ChildProcess
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      proc.send({ id, ...req })
    })
  }

  /** Asks the worker that holds node g, with its local index. */
  askNode<T>(g: number, req: (index: number) => WorkerRequest): Promise<T> {
    return this.ask<T>(g % this.size, req(Math.floor(g / this.size)))
  }

  all<T>(req: WorkerRequest): Promise<T[]> {
    return Promise.all(this.#procs.map((_, i) => this.ask<T>(i, req)))
  }

  /** Stops every node and process: `exit` first, SIGKILL after 10 s. */
  async stop(): Promise<void> {
    await Promise.all(
      this.#procs.map(async (proc) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return
        const exited = once(proc, 'exit')
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
        try {
          proc.send({ id: -1, op: 'exit' })
        } catch {
          proc.kill('SIGKILL')
        }
        await exited
        clearTimeout(timer)
      }),
    )
  }
}
