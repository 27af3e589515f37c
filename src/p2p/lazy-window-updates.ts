import type { StreamMuxerFactory } from '@libp2p/interface'

/**
 * Issue 15 (relay CPU): a yamux stream tells its peer of freed receive window once half
 * of the window is used, as the yamux spec's reference implementation does, instead of
 * after every data frame. @chainsafe/libp2p-yamux 8 answers each data frame with a
 * window-update frame: at 1,000 live updates a second the receiving mesh encrypted and
 * wrote, and the sending mesh woke up to read and decrypt, one more frame per frame.
 *
 * The sender may send up to the window it was given; it is topped up again whenever
 * what is left of it falls to half or below, so a steady sender is never held up (it
 * still has half a window, 128 KiB at first, when the update leaves). The flags of a
 * stream's first frames (its SYN/ACK), a paused stream and the window's growth are
 * yamux's own: an update is only skipped while the stream is established, more than
 * half of its window is still free and it would not grow the window. Anything else is
 * left to yamux, as it was.
 */
export function lazyWindowUpdates<C>(
  muxer: (components: C) => StreamMuxerFactory,
): (components: C) => StreamMuxerFactory {
  return (components) => {
    const inner = muxer(components)
    const wrapped = Object.create(inner) as StreamMuxerFactory
    wrapped.createStreamMuxer = (connection) => {
      const created = inner.createStreamMuxer(connection)
      const made = created as unknown as { _newStream?: (...args: unknown[]) => unknown }
      const newStream = made._newStream
      if (typeof newStream === 'function') {
        made._newStream = (...args: unknown[]) => {
          const stream = newStream.apply(created, args)
          halfWindowUpdates(stream)
          return stream
        }
      }
      return created
    }
    return wrapped
  }
}

/** yamux's StreamState.Established (@chainsafe/libp2p-yamux 8, not exported). */
const ESTABLISHED = 3

interface YamuxStreamWindow {
  state?: unknown
  recvWindow?: unknown
  recvWindowCapacity?: unknown
  maxStreamWindowSize?: unknown
  epochStart?: unknown
  getRTT?: () => unknown
  sendWindowUpdate?: () => void
}

/**
 * Whether yamux would grow the window with this update: its own test in
 * YamuxStream.sendWindowUpdate (@chainsafe/libp2p-yamux 8), the window doubles (up to
 * maxStreamWindowSize) when the stream's last update left within 4 round trips. Such an
 * update is never skipped, so a bulk stream's window grows as fast as stock yamux grows it
 * (skipping them made a raw 16 MiB stream ≈ 20 % slower). The window never shrinks, so this
 * costs a stream at most log2(16 MiB / 256 KiB) = 6 updates in its life, however its frames
 * are timed (back-to-back live frames on a busy machine count as growing, as in yamux).
 */
function grows(s: YamuxStreamWindow): boolean {
  const rtt = typeof s.getRTT === 'function' ? s.getRTT() : -1
  return (
    typeof rtt === 'number' &&
    rtt > -1 &&
    typeof s.epochStart === 'number' &&
    Date.now() - s.epochStart <= rtt * 4 &&
    typeof s.maxStreamWindowSize === 'number' &&
    (s.recvWindow as number) < s.maxStreamWindowSize
  )
}

/** Makes `stream` (a yamux stream) skip window updates while more than half its receive window is free. */
export function halfWindowUpdates(stream: unknown): void {
  const s = stream as YamuxStreamWindow
  const update = s.sendWindowUpdate
  if (
    typeof update !== 'function' ||
    typeof s.recvWindow !== 'number' ||
    typeof s.recvWindowCapacity !== 'number'
  )
    return
  s.sendWindowUpdate = function (this: unknown) {
    if (
      s.state === ESTABLISHED &&
      typeof s.recvWindow === 'number' &&
      typeof s.recvWindowCapacity === 'number' &&
      s.recvWindowCapacity * 2 > s.recvWindow &&
      !grows(s)
    )
      return
    update.call(stream)
  }
}
