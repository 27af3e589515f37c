import type { KeyObject } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import { publicKeyObject } from './keys.ts'
import { type PoolCheck, verifyOnPool } from './pool-verify.ts'

/**
 * Ed25519 verification on a thread of its own (issue 15, verify15): one worker, started
 * on first use, verifies a batch of signatures (a frame's seals) with node:crypto, one
 * after the other, and answers the batch at once. The main thread only posts the batch
 * and reads the answer (≈ 1 µs a signature, against ≈ 60–90 µs to verify it); the
 * worker spends what a verification on the main thread would have (no job and wake-up
 * a signature, as with libuv's pool: +10 µs on each side a signature, measured).
 *
 * The same answers as `verifySignature`. Should the worker fail, what it had not
 * answered is answered false (the caller verifies it itself) and later batches go to
 * libuv's pool (pool-verify.ts).
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { verify } = require('node:crypto')
parentPort.on('message', ({ id, keys, checks }) => {
  const ok = new Uint8Array(checks.length)
  for (let i = 0; i < checks.length; i++) {
    const c = checks[i]
    try {
      ok[i] = verify(null, c.data, keys[c.key], c.signature) ? 1 : 0
    } catch {
      ok[i] = 0
    }
  }
  parentPort.postMessage({ id, ok }, [ok.buffer])
})
`

let worker: Worker | undefined
let broken = false
let nextId = 0
const pending = new Map<number, (ok: Uint8Array | undefined) => void>()

function failAll(): void {
  for (const answer of pending.values()) answer(undefined)
  pending.clear()
}

function theWorker(): Worker | undefined {
  if (worker !== undefined || broken) return worker
  try {
    const w = new Worker(WORKER_SOURCE, { eval: true, name: 'mesh-verify' })
    w.on('message', ({ id, ok }: { id: number; ok: Uint8Array }) => {
      const answer = pending.get(id)
      pending.delete(id)
      if (pending.size === 0) w.unref() // idle: never what keeps the process alive
      answer?.(ok)
    })
    const gone = () => {
      broken = true
      worker = undefined
      failAll()
    }
    w.on('error', gone)
    w.on('exit', gone)
    w.unref()
    worker = w
  } catch {
    broken = true
  }
  return worker
}

/** The checks of one turn of the event loop: posted to the worker together, at the end of the turn. */
interface Batch {
  keys: KeyObject[]
  keyIndex: Map<string, number>
  checks: Array<{ key: number; data: Uint8Array; signature: Uint8Array }>
  /** Each caller's answers: where its checks are in `checks`. */
  callers: Array<{ answers: boolean[]; at: number[]; from: number; resolve: (answers: boolean[]) => void }>
}

let batch: Batch | undefined

/**
 * `verifySignature` of each check, answered off the main thread, in the order given; never
 * rejects. The checks given in one turn of the event loop (a flood of one-seal frames)
 * go to the worker as one message: its cost is a message's, not a signature's.
 */
export function verifyOffThread(checks: readonly PoolCheck[]): Promise<boolean[]> {
  if (checks.length === 0) return Promise.resolve([])
  if (theWorker() === undefined) return verifyOnPool(checks)
  if (batch === undefined) {
    batch = { keys: [], keyIndex: new Map(), checks: [], callers: [] }
    setImmediate(post)
  }
  const b = batch
  const answers = new Array<boolean>(checks.length).fill(false)
  const from = b.checks.length
  const at: number[] = []
  checks.forEach((check, i) => {
    if (check.signature.byteLength !== 64) return // not an Ed25519 signature: false
    let k = b.keyIndex.get(check.did)
    if (k === undefined) {
      try {
        b.keys.push(publicKeyObject(check.did))
      } catch {
        return // a malformed did: false
      }
      k = b.keys.length - 1
      b.keyIndex.set(check.did, k)
    }
    b.checks.push({ key: k, data: check.data, signature: check.signature })
    at.push(i)
  })
  return new Promise((resolve) => b.callers.push({ answers, at, from, resolve }))
}

function post(): void {
  const b = batch
  batch = undefined
  if (b === undefined) return
  const answer = (ok: Uint8Array | undefined) => {
    for (const caller of b.callers) {
      if (ok !== undefined)
        caller.at.forEach((i, j) => {
          caller.answers[i] = ok[caller.from + j] === 1
        })
      caller.resolve(caller.answers)
    }
  }
  const w = theWorker()
  if (b.checks.length === 0 || w === undefined) {
    answer(undefined)
    return
  }
  const id = nextId++
  pending.set(id, answer)
  w.ref()
  try {
    w.postMessage({ id, keys: b.keys, checks: b.checks })
  } catch {
    pending.delete(id)
    answer(undefined)
  }
}
