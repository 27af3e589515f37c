import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromDid } from '../../src/identity/index.ts'
import type { MeshLibp2p } from '../../src/p2p/index.ts'
import type { TestNode } from './nodes.ts'

/**
 * One raw exchange on a request/answer `protocol` (`/mesh/invoke/1.0.0`, `/mesh/audit/1.0.0`)
 * from `libp2p` to `to`: writes `frames`, returns the parsed answer or the error.
 */
export async function rawExchange(
  libp2p: MeshLibp2p,
  to: TestNode,
  protocol: string,
  frames: Uint8Array[],
): Promise<unknown> {
  await libp2p.dial(multiaddr(to.addr()))
  const stream = await libp2p.dialProtocol(peerIdFromDid(to.node.did), protocol, {
    signal: AbortSignal.timeout(5000),
  })
  const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
  try {
    for (const frame of frames) await lp.write(frame, { signal: AbortSignal.timeout(5000) })
    const answer = await lp.read({ signal: AbortSignal.timeout(8000) })
    return JSON.parse(Buffer.from(answer.subarray()).toString('utf8'))
  } catch (err) {
    return err
  } finally {
    stream.abort(new Error('done'))
  }
}

/** `v` as a JSON frame. */
export const json = (v: unknown) => new Uint8Array(Buffer.from(JSON.stringify(v)))
