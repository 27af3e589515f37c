import { DID_KEY, STRING, strictObject } from './common.ts'
import { invokeBodySchema } from './trust.ts'

/**
 * Agents in foreign rooms under a chain (SPEC §8, way 2): `POST /api/session/ucan`
 * takes what `POST /api/invoke` takes — a `room/read` or `room/post` invocation on one
 * room of this mesh, with credentials or a presentation beside it.
 */
export const capabilitySessionBodySchema = invokeBodySchema

export const ROOM_ABILITY_NAMES = ['room/read', 'room/post'] as const

/** A capability session: a token for one room, what the chain grants there, and when it ends. */
export const capabilitySessionSchema = strictObject(
  {
    token: STRING,
    expiresAt: STRING,
    did: DID_KEY,
    room: STRING,
    can: { type: 'array', items: { type: 'string', enum: ROOM_ABILITY_NAMES }, minItems: 1, maxItems: 2 },
  },
  ['token', 'expiresAt', 'did', 'room', 'can'],
)

/** `POST /api/invoke`'s answer to a `room/post` (`result: {id}`) or `room/read` (`result`: a page of messages). */
export const roomInvokeResultSchema = strictObject(
  {
    room: STRING,
    ability: { type: 'string', enum: ROOM_ABILITY_NAMES },
    invoker: STRING,
    invocation: STRING,
    tier: { type: 'integer', minimum: 1, maximum: 4 },
    human: { type: ['string', 'null'] },
    result: {},
  },
  ['room', 'ability', 'invoker', 'invocation', 'tier', 'human', 'result'],
)
