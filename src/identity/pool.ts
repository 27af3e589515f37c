/**
 * Our share of libuv's thread pool (issue 15, verify15): node:crypto's Ed25519 sign and
 * verify with a callback run there. The pool is shared with the file system and LevelDB
 * (classic-level's reads, writes and fsyncs run there too): at most `MAX_IN_POOL` of
 * our jobs are queued in it at once, the rest wait here in order, so a catch-up chunk of
 * a thousand seals never stands between the store and its next write for longer than a
 * few verifications.
 */
const MAX_IN_POOL = 8

let inPool = 0
const waiting: Array<() => void> = []

/** Starts `job` in its turn; `job` calls `done` once, when its pool work has answered. */
export function onPool(job: (done: () => void) => void): void {
  const run = () => {
    inPool++
    let settled = false
    job(() => {
      if (settled) return
      settled = true
      inPool--
      waiting.shift()?.()
    })
  }
  if (inPool < MAX_IN_POOL) run()
  else waiting.push(run)
}
