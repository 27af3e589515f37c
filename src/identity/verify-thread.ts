import type { KeyObject } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import { publicKeyObject } from './keys.ts'

/**
 * Ed25519 verification shared with a thread of its own (issue 15, verify15).
 *
 * The checks given in one turn of the event loop (the seals of the frames that arrived)
 * go to one worker as one message, with a shared array of their states. The worker
 * verifies them from the last one back; whoever needs an answer (the main thread, going
 * through the frames in order) takes the others from the first one on: a check is done
 * by one thread only, claimed with an atomic compare-and-exchange, and the two meet in
 * the middle (the one check the worker may be verifying then is verified by both). No one
 * waits for the worker, and nothing the worker did not find good counts: `take` answers
 * true only for a signature the worker verified.
 *
 * Without a worker (it could not start, or ended), `take` answers false: the caller
 * verifies everything itself, as before.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { verify } = require('node:crypto')
parentPort.on('message', ({ state, keys, checks }) => {
  const st = new Int32Array(state)
  for (let i = checks.length - 1; i >= 0; i--) {
    if (Atomics.compareExchange(st, i, 0, 2) !== 0) continue
    const c = checks[i]
    let ok = false
    try {
      ok = verify(null, c.data, keys[c.key], c.signature)
    } catch {}
    Atomics.store(st, i, ok ? 3 : 4)
    Atomics.notify(st, i)
  }
})
`

/** States of a check in the shared array. */
const OPEN = 0
const TAKEN = 1
const VERIFYING = 2
const GOOD = 3 // (4: found bad)

/**
 * One signature to check: `did`'s Ed25519 signature over `data`. Built only when the
 * check goes to the worker (issue 15, beta15): a turn of few checks (live traffic) stays
 * the main thread's, and its payloads, signatures and keys were made for nothing.
 */
export interface SharedCheck {
  did: string
  /** The signed bytes and the signature (undefined: not a check that can be good). */
  build(): { data: Uint8Array; signature: Uint8Array } | undefined
}

/** What became of the checks given to `shareChecks`. */
export interface SharedChecks {
  /**
   * true: check `i` was verified good by the worker. false: verify it yourself (it is
   * yours now; the worker did not start it, or found it bad, or there is no worker).
   */
  take(i: number): boolean
  /** Resolves when no check is left to the worker (each verified by it, or taken): for tests. */
  settled(): Promise<void>
}

let worker: Worker | undefined
let broken = false

function theWorker(): Worker | undefined {
  if (worker !== undefined || broken) return worker
  try {
    const w = new Worker(WORKER_SOURCE, { eval: true, name: 'mesh-verify' })
    const gone = () => {
      broken = true
      worker = undefined
    }
    w.on('error', gone)
    w.on('exit', gone)
    w.unref() // never what keeps the process alive: nobody awaits it
    worker = w
  } catch {
    broken = true
  }
  return worker
}

interface Batch {
  /** Whether the batch went to the worker (false: its checks stay the main thread's). */
  sent: Promise<boolean>
  post: (sent: boolean) => void
  state: SharedArrayBuffer
  checks: SharedCheck[]
}

/** The checks of this turn of the event loop, posted at its end. */
let batch: Batch | undefined
const BATCH_MAX = 1024
/**
 * Fewer checks than this in a turn stay the main thread's. Measured on this 2-core
 * machine (shared, load 3–4): a message to the worker costs ≈ 200 µs of CPU, and a turn
 * of 17 one-seal frames (the durable bench) shared with it ran at 0.8× the rate for 1.2×
 * the CPU (the worker takes its core from the main thread); catch-up chunks (≈ 280 seals
 * each) gain: the main thread −35 %, wall −23 %, CPU ≈ the same.
 */
const BATCH_MIN = 32
/** A check's state when it could not be built (a malformed did or signature): never good. */
const BAD = 4

function post(): void {
  const b = batch
  batch = undefined
  if (b === undefined) return
  const w = b.checks.length < BATCH_MIN ? undefined : theWorker()
  if (w === undefined) {
    b.post(false) // every check stays OPEN, its taker verifies it; none was built
    return
  }
  try {
    const state = new Int32Array(b.state)
    const keys: KeyObject[] = []
    const keyIndex = new Map<string, number>()
    const built = b.checks.map((check, slot) => {
      const made = check.build()
      let k = keyIndex.get(check.did)
      if (k === undefined && made?.signature.byteLength === 64) {
        try {
          keys.push(publicKeyObject(check.did))
          k = keys.length - 1
          keyIndex.set(check.did, k)
        } catch {
          // a malformed did: never good
        }
      }
      if (made === undefined || k === undefined || made.signature.byteLength !== 64) {
        // Unless taken meanwhile (the taker verifies it): never the worker's, never good.
        Atomics.compareExchange(state, slot, OPEN, BAD)
        return null
      }
      return { key: k, data: made.data, signature: made.signature }
    })
    w.postMessage({ state: b.state, keys, checks: built })
    b.post(true)
  } catch {
    b.post(false) // not posted: every check not marked BAD stays OPEN, its taker verifies it
  }
}

// Atomics.waitAsync (ES2024; Node ≥ 16): the project's lib does not type it yet.
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number): { value: Promise<string> | string }
  }
).waitAsync

const NOBODY: SharedChecks = { take: () => false, settled: async () => {} }

/** Gives `checks` to the worker (with the others of this turn); see SharedChecks. */
export function shareChecks(checks: readonly SharedCheck[]): SharedChecks {
  if (checks.length === 0 || broken) return NOBODY
  if (batch === undefined || batch.checks.length + checks.length > BATCH_MAX) {
    post()
    let decide: (sent: boolean) => void = () => {}
    const sent = new Promise<boolean>((resolve) => {
      decide = resolve
    })
    batch = {
      sent,
      post: decide,
      state: new SharedArrayBuffer(4 * Math.max(BATCH_MAX, checks.length)),
      checks: [],
    }
    setImmediate(post)
  }
  const b = batch
  const state = new Int32Array(b.state)
  const first = b.checks.length
  b.checks.push(...checks)
  return {
    take(i) {
      if (i < 0 || i >= checks.length) return false
      // One the worker is verifying right now is verified here too rather than waited for: the
      // worker may be off its core (a busy machine), and the main thread never waits for it.
      return Atomics.compareExchange(state, first + i, OPEN, TAKEN) === GOOD
    },
    async settled() {
      if (!(await b.sent)) return
      for (let slot = first; slot < first + checks.length; slot++) {
        let s = Atomics.load(state, slot)
        while (s === OPEN || s === VERIFYING) {
          await waitAsync(state, slot, s).value
          s = Atomics.load(state, slot)
        }
      }
    },
  }
}
