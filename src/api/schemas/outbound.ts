import { DID_KEY, strictObject, UCAN } from './common.ts'

/**
 * Outbound invocation (SPEC §8): a member's invocation carried by this node to a
 * connected peer mesh over `/mesh/invoke/1.0.0`.
 */

/** `POST /api/outbound/invoke`: the peer mesh (its identity or a key) and the invocation addressed to it. */
export const outboundInvokeBodySchema = strictObject({ mesh: DID_KEY, ucan: UCAN }, ['mesh', 'ucan'])

/** The peer mesh, and what its `POST /api/invoke` answered, as it answered it. */
export const outboundInvokeResultSchema = strictObject(
  {
    mesh: DID_KEY,
    // additionalProperties: the answer goes out whole, as the peer gave it
    answer: { type: 'object', additionalProperties: true },
  },
  ['mesh', 'answer'],
)
