/**
 * The worker thread of room-log compaction (compactor.ts, issue 15 p99): merges the
 * updates it is sent into one (`Y.mergeUpdates`) and sends the result back, so that a
 * segment of thousands of updates is never encoded on the node's event loop.
 */
import { parentPort } from 'node:worker_threads'
import { Y } from './lazy-yjs.ts'

export interface MergeJob {
  id: number
  parts: Uint8Array[]
}

export type MergeAnswer = { id: number; update: Uint8Array } | { id: number; error: string }

parentPort?.on('message', ({ id, parts }: MergeJob) => {
  let answer: MergeAnswer
  try {
    answer = { id, update: Y.mergeUpdates(parts) }
  } catch (err) {
    answer = { id, error: String((err as Error)?.stack ?? err) }
  }
  parentPort?.postMessage(answer, 'update' in answer ? [answer.update.buffer as ArrayBuffer] : [])
})
