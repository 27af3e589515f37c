import type { ConnectionView } from '../../src/connections/index.ts'
import { waitFor } from '../p2p/nodes.ts'
import { decide, requestConnection, statusAt, type TestNode } from './nodes.ts'

/** Waits until both sides show connection `id` with `status` and the same agreement version. */
export async function bothAt(
  a: TestNode,
  b: TestNode,
  id: string,
  status: string,
): Promise<[ConnectionView, ConnectionView]> {
  return waitFor(async () => {
    const [x, y] = await Promise.all([statusAt(a, id), statusAt(b, id)])
    return x?.status === status && y?.status === status && x.agreementVersion === y.agreementVersion
      ? ([x, y] as [ConnectionView, ConnectionView])
      : undefined
  }, `${id} ${status} on both sides`)
}

/** `a` requests a connection with `b`, `b` accepts; once both show it accepted: its id and both views. */
export async function acceptedConnection(
  a: TestNode,
  b: TestNode,
): Promise<{ id: string; views: [ConnectionView, ConnectionView] }> {
  const id = await requestConnection(a, b)
  await bothAt(a, b, id, 'pending')
  await decide(b, id, 'accept')
  return { id, views: await bothAt(a, b, id, 'accepted') }
}
