import { Writable } from 'node:stream'

/**
 * stdout for `mesh start`: the contract says the ready line is the first line a
 * node prints, so log lines written while the node starts wait behind it.
 */
export class GatedStdout extends Writable {
  #held: Buffer[] = []
  #open = false

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#open) process.stdout.write(chunk, callback)
    else {
      this.#held.push(chunk)
      callback()
    }
  }

  /** Prints the ready line, then everything held, then lets lines through as they come. */
  open(readyLine: string): void {
    process.stdout.write(`${readyLine}\n`)
    for (const chunk of this.#held) process.stdout.write(chunk)
    this.#held = []
    this.#open = true
  }
}
