import { CAPABILITIES } from '../auth/index.ts'
import { MESH_INVOKE_PROTOCOL } from '../connections/invoke-protocol.ts'
import type { AgentCard, CapabilityInvocation, InvocationTransport } from '../manifest/index.ts'
import { ROOM_READ_MAX_PAGE as MAX_READ_PAGE } from '../rooms/index.ts'

/** `POST /api/invoke {ucan, credentials?, presentation?}` (SPEC §3): no session, the invocation is the authentication. */
export const HTTP_INVOKE: InvocationTransport = { transport: 'http', method: 'POST', path: '/api/invoke' }

/**
 * `/mesh/invoke/1.0.0` (connections/invoke-protocol.ts): the same invocation carried by the
 * invoker's own mesh over libp2p (`POST /api/outbound/invoke {mesh, ucan}` there), for a
 * mesh with an accepted connection to this one. The one dispatcher (node/invocations.ts)
 * answers both ways alike.
 */
export const LIBP2P_INVOKE: InvocationTransport = { transport: 'libp2p', protocol: MESH_INVOKE_PROTOCOL }

/** What a row's `offered` looks at: what this node holds right now. */
export interface OfferedContext {
  agents: AgentCard[]
  // the model proxy (SPEC §13): whether it has an upstream
  model?: boolean
}

/**
 * One capability a foreign principal with a chain can invoke on this node, as the
 * manifest lists it (`CapabilityInvocation`, less the tier, which the capabilities table
 * decides), and whether this node offers it right now.
 */
export interface InvocableRow extends Omit<CapabilityInvocation, 'tier'> {
  can: string
  /** Listed only while this says true (default: always). */
  offered?: (context: OfferedContext) => boolean
}

/**
 * THE table of what the manifest lists (SPEC §8: every capability it lists is invocable
 * as listed, and it lists nothing that is not; test/manifest/walk.test.ts walks it). A
 * feature that makes a capability invocable by a foreign principal appends its row here,
 * marked with a one-line comment naming the feature; a row whose invocation does not
 * work fails the walk. Acts of this mesh's own humans over session routes
 * (`mesh/connect`, `connection/*`, `room/share`, `trust/promote`, …) are not listed: a
 * foreign principal cannot make them, whatever its chain says.
 */
export const INVOCABLE: readonly InvocableRow[] = [
  // agent/invoke: a skill of one of this mesh's agents (agents[].skills[].id)
  {
    can: 'agent/invoke',
    with: '{did}/agents/{agent}',
    nb: {
      type: 'object',
      additionalProperties: false,
      required: ['ability'],
      properties: {
        ability: { type: 'string', description: 'A skill of the agent: agents[].skills[].id.' },
        input: { description: "The skill's input, as JSON (agents[].skills[].examples)." },
      },
    },
    via: [HTTP_INVOKE, LIBP2P_INVOKE],
    offered: ({ agents }) => agents.length > 0,
  },
  // room/post (issue 12, agents in foreign rooms): a message to one room through POST /api/invoke or /mesh/invoke
  {
    can: 'room/post',
    with: '{did}/rooms/{room}',
    nb: {
      type: 'object',
      additionalProperties: false,
      required: ['body'],
      properties: { body: { type: 'string', minLength: 1, description: 'The message.' } },
    },
    via: [HTTP_INVOKE, LIBP2P_INVOKE],
  },
  // room/read (issue 12, agents in foreign rooms): a page of one room's messages through POST /api/invoke or /mesh/invoke
  {
    can: 'room/read',
    with: '{did}/rooms/{room}',
    nb: {
      type: 'object',
      additionalProperties: false,
      properties: {
        after: { type: 'string', description: 'A message id: the page starts after it.' },
        limit: { type: 'integer', minimum: 1, maximum: MAX_READ_PAGE },
      },
    },
    via: [HTTP_INVOKE, LIBP2P_INVOKE],
  },
  // the model proxy (SPEC §13): a chat completion (not streamed) through POST /api/invoke or /mesh/invoke, while it has an upstream
  {
    can: 'model/invoke',
    with: '{did}',
    nb: {
      type: 'object',
      additionalProperties: false,
      required: ['request'],
      properties: {
        model: { type: 'string', description: 'The one model a chain grants, when a delegation fixes it.' },
        request: {
          type: 'object',
          required: ['model', 'messages'],
          description: 'An OpenAI chat completion request (POST /v1/chat/completions), not streamed.',
        },
      },
    },
    via: [HTTP_INVOKE, LIBP2P_INVOKE],
    offered: ({ model }) => model === true,
  },
]

for (const row of INVOCABLE) {
  if (CAPABILITIES[row.can] === undefined)
    throw new Error(`the manifest lists ${row.can}, which the authority does not know`)
}

/** The abilities the table can list (whether or not offered right now). */
export const INVOCABLE_CAPABILITIES: readonly string[] = INVOCABLE.map((row) => row.can)

/** The manifest's `capabilities` and `invocation`: the rows offered now, each with the tier its capability allows. */
export function invocableNow(context: OfferedContext): {
  capabilities: string[]
  invocation: Record<string, CapabilityInvocation>
} {
  const rows = INVOCABLE.filter((row) => row.offered?.(context) ?? true)
  return {
    capabilities: rows.map((row) => row.can),
    invocation: Object.fromEntries(
      rows.map(({ can, offered: _, ...how }) => [
        can,
        { ...how, tier: CAPABILITIES[can]?.participation === true ? 4 : 3 },
      ]),
    ),
  }
}
