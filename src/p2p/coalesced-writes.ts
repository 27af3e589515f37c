import { Socket } from 'node:net'
import type { ConnectionEncrypter } from '@libp2p/interface'

/**
 * Issue 15 (relay CPU): what a connection sends within one turn of the event loop goes
 * to its TCP socket in one write. The TCP transport writes each buffer of a send on its
 * own, and Noise sends every message as two (its 2-byte length, then the ciphertext):
 * without this a yamux frame cost two write syscalls at the sender and often two reads
 * at the receiver (on loopback the receiver's stack runs inside the sender's syscall).
 * The socket is corked at the first send of a turn and uncorked at the end of it
 * (`process.nextTick`, as Node's HTTP does); bytes, their order and backpressure (the
 * socket's `write` answer) are unchanged. Connections over other transports (WebSockets,
 * relayed circuits) carry no `net.Socket` and are left as they are.
 */
export function coalescedWrites<C, E extends ConnectionEncrypter>(
  encrypter: (components: C) => E,
): (components: C) => E {
  return (components) => {
    const inner = encrypter(components)
    const wrapped = Object.create(inner) as E
    wrapped.secureInbound = ((connection: unknown, options?: unknown) => {
      corkPerTurn(connection)
      return (inner.secureInbound as (c: unknown, o?: unknown) => unknown).call(inner, connection, options)
    }) as E['secureInbound']
    wrapped.secureOutbound = ((connection: unknown, options?: unknown) => {
      corkPerTurn(connection)
      return (inner.secureOutbound as (c: unknown, o?: unknown) => unknown).call(inner, connection, options)
    }) as E['secureOutbound']
    return wrapped
  }
}

interface SocketConnection {
  socket?: unknown
  sendData?: (data: unknown) => unknown
}

/** Corks `connection`'s TCP socket from its first send in a turn of the event loop to the end of that turn. */
export function corkPerTurn(connection: unknown): void {
  const conn = connection as SocketConnection
  const socket = conn.socket
  const send = conn.sendData
  if (!(socket instanceof Socket) || typeof send !== 'function') return
  let corked = false
  const uncork = (): void => {
    corked = false
    socket.uncork()
  }
  conn.sendData = function (this: unknown, data: unknown) {
    if (!corked && !socket.destroyed) {
      corked = true
      socket.cork()
      process.nextTick(uncork)
    }
    return send.call(this, data)
  }
}
