import { type InvocationHandler, Invocations } from '../agents/index.ts'
import { INVOCABLE_CAPABILITIES } from './invocable.ts'
import type { NodeWiring } from './parts.ts'

/**
 * The one invocation dispatcher (agents/invocations.ts) that `POST /api/invoke` and
 * `/mesh/invoke/1.0.0` both call: `agent/invoke` → this mesh's agents, `room/read` and
 * `room/post` → foreign access (rooms under a chain). Its abilities are exactly the rows
 * of the manifest's invocation table (invocable.ts): a row without a handler, or a
 * handler without a row, fails the node's start.
 */
export function startInvocations({ parts }: NodeWiring): Invocations {
  const rooms: InvocationHandler = (request) => parts.get('foreignAccess').invoke(request)
  const handlers: Record<string, InvocationHandler> = {
    'agent/invoke': (request, options) => parts.get('agents').invoke(request, options),
    'room/post': rooms,
    'room/read': rooms,
    // the model proxy (SPEC §13): a foreign principal's chat completion under a chain
    'model/invoke': (request, options) => parts.get('model').invoke(request, options),
  }
  const listed = [...INVOCABLE_CAPABILITIES].sort().join(' ')
  if (Object.keys(handlers).sort().join(' ') !== listed) {
    throw new Error(`the invocation dispatcher serves ${Object.keys(handlers)}, the manifest lists ${listed}`)
  }
  return parts.set('invocations', new Invocations({ authority: () => parts.get('authority'), handlers }))
}
