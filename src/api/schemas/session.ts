import { b64url, DID_KEY, STRING, strictObject } from './common.ts'

/**
 * Identity and session (SPEC §3): health, challenge/response sign-in, logout, `me`.
 * Response shapes here describe what the node sends; these routes are served without a
 * response schema (nothing is filtered off the wire), so the schemas are for types.
 */

export const challengeSchema = strictObject({ nonce: STRING, expiresAt: STRING }, ['nonce', 'expiresAt'])

/** `POST /api/session`: Ed25519 over `mesh-session:<mesh did>:<nonce>`, base64url. */
export const sessionBodySchema = strictObject({ did: DID_KEY, nonce: b64url(128), signature: b64url(128) }, [
  'did',
  'nonce',
  'signature',
])

export const sessionTokenSchema = strictObject({ token: STRING, expiresAt: STRING }, ['token', 'expiresAt'])

export const SESSION_ROLES = ['architect', 'human', 'agent'] as const

export const meSchema = strictObject(
  {
    did: STRING,
    role: { type: 'string', enum: SESSION_ROLES },
    expiresAt: STRING,
  },
  ['did', 'role', 'expiresAt'],
)

export const HEALTH_STATUSES = ['ok', 'degraded', 'unhealthy'] as const

export const healthSchema = strictObject(
  {
    /** 'degraded': working, but the store lost acknowledged writes at its last open. */
    status: { type: 'string', enum: HEALTH_STATUSES },
    /** The store's own report (store/store-monitor.ts). */
    store: {
      type: 'object',
      additionalProperties: true,
      required: ['status'],
      properties: { status: STRING },
    },
    did: STRING,
    peerId: STRING,
    multiaddrs: { type: 'array', items: STRING },
    version: STRING,
    // reachability (SPEC §10): how the node is reached (p2p/reachability.ts)
    reachability: strictObject(
      {
        status: { type: 'string', enum: ['public', 'relayed', 'unknown'] },
        relayAddresses: { type: 'array', items: STRING },
        verifiedAddresses: { type: 'array', items: STRING },
        relay: { type: 'boolean' },
        reservations: { type: 'integer', minimum: 0 },
      },
      ['status', 'relayAddresses', 'verifiedAddresses', 'relay', 'reservations'],
    ),
  },
  ['status', 'store', 'did', 'peerId', 'multiaddrs', 'version'],
)

/** The signed mesh manifest (`/.well-known/mesh-manifest.json`; its schema lives in src/manifest). */
export const manifestSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['manifestVersion', 'name', 'version', 'did', 'peerId', 'endpoints', 'protocolVersions'],
  properties: {
    manifestVersion: STRING,
    name: STRING,
    description: STRING,
    version: STRING,
    did: STRING,
    peerId: STRING,
    architect: STRING,
    endpoints: {
      type: 'object',
      additionalProperties: true,
      required: ['http', 'libp2p'],
      properties: {
        http: STRING,
        libp2p: { type: 'array', items: STRING },
        yjs: STRING,
        registry: STRING,
      },
    },
    protocolVersions: { type: 'array', items: STRING },
    capabilities: { type: 'array', items: STRING },
    // an honest manifest (issue 12): how to invoke each listed capability
    invocation: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: true,
        required: ['with', 'nb', 'tier', 'via'],
        properties: {
          with: STRING,
          nb: { type: 'object', additionalProperties: true },
          tier: { type: 'integer' },
          via: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: true,
              required: ['transport'],
              properties: { transport: STRING, method: STRING, path: STRING, protocol: STRING },
            },
          },
        },
      },
    },
  },
} as const
