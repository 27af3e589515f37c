import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { trustBodySchema, trustParamsSchema, trustQuerySchema, trustRecordSchema } from '../../api/index.ts'
import { type Authority, type TrustScope, type TrustView, toMeshError, trustView } from '../../auth/index.ts'
import { BadRequestError, NotFoundError } from '../../errors.ts'
import { isDidKey } from '../../identity/index.ts'
import { sessionOf } from './session.ts'

export interface AuthorityRoutesInit {
  /** A getter: a key rotation replaces the authority. */
  authority: () => Pick<Authority, 'meshDid' | 'chains' | 'trust' | 'promote' | 'rootDelegation'>
  /** What a person calls each did (node/names.ts): a trust record shows it as `name`. */
  names?: {
    nameOf(did: string): Promise<string | undefined>
    namesOf(dids: Iterable<string>): Promise<Map<string, string>>
  }
}

/**
 * Trust and authority (SPEC §3, §4), behind a session:
 *
 * - `GET /api/trust` → `{principals: [TrustView], meshes: [TrustView]}` — tier and
 *   reputation (accepted, refused, score) per foreign principal, local member and peer mesh.
 * - `GET /api/trust/:did?scope=principal|mesh` → `TrustView` (an unknown did: tier 4, no history).
 * - `PUT /api/trust/:did {tier, reason, ucan, scope?, credentials?}` → `TrustView` — `ucan` is
 *   a local human's `trust/promote` invocation on this mesh with `nb: {subject: did, tier,
 *   reason}` (the body's tier and reason must be the invocation's); audited. Violations
 *   demote automatically (TrustStore), except a human of this mesh at tier 1–2: flagged
 *   (`flagged`), never demoted; a tier decision here clears the flag.
 * - `GET /api/auth/root-delegation` → `{token, cid, exp, architect}` — the mesh key's
 *   delegation to its architect, the root of every local chain (a delegation is useless
 *   without its audience's key, so any session may read it).
 */
export const authorityRoutes: FastifyPluginAsync<AuthorityRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const authenticate = app.requireSession

  /** The trust view with the record's name, when one is known. */
  const named = async (views: TrustView[]): Promise<TrustView[]> => {
    const names = await init.names?.namesOf(views.map((v) => v.did))
    return views.map((v) => {
      const name = names?.get(v.did)
      return name === undefined ? v : { ...v, name }
    })
  }

  app.get('/api/trust', { onRequest: authenticate }, async () => {
    const all = await named(init.authority().trust.list().map(trustView))
    return {
      principals: all.filter((r) => r.scope === 'principal'),
      meshes: all.filter((r) => r.scope === 'mesh'),
    }
  })

  app.get(
    '/api/trust/:did',
    {
      onRequest: authenticate,
      schema: {
        params: trustParamsSchema,
        querystring: trustQuerySchema,
        response: { 200: trustRecordSchema },
      },
    },
    async (request) => {
      const { did } = request.params
      const scope: TrustScope = request.query.scope ?? 'principal'
      const trust = init.authority().trust
      const record = trust.get(did, scope)
      if (record !== undefined) return (await named([trustView(record)]))[0]
      const name = await init.names?.nameOf(did)
      return {
        ...(name !== undefined ? { name } : {}),
        did,
        scope,
        local: false,
        tier: scope === 'principal' ? trust.tierOf(did) : 4,
        accepted: 0,
        refused: 0,
        score: 0.5,
        recentRefusals: 0,
      }
    },
  )

  app.put(
    '/api/trust/:did',
    {
      onRequest: authenticate,
      schema: { params: trustParamsSchema, body: trustBodySchema, response: { 200: trustRecordSchema } },
    },
    async (request) => {
      sessionOf(request)
      const { did } = request.params
      // issue 14: a tier is never stored for a did:key that names no key
      if (did.startsWith('did:key:') && !isDidKey(did)) {
        throw new BadRequestError('not a valid did:key (an Ed25519 key, did:key:z6Mk…)', { did })
      }
      const body = request.body
      const authority = init.authority()
      // The body restates what the signed invocation says; they must agree (checked
      // before verifying, so that a mismatch does not spend the invocation).
      const decoded = authority.chains.decode(body.ucan)
      if (decoded.error !== undefined) throw toMeshError(decoded.error)
      const nb = ((decoded.ok.invocation.view.capabilities[0] as { nb?: Record<string, unknown> } | undefined)
        ?.nb ?? {}) as Record<string, unknown>
      if (nb.tier !== body.tier || nb.reason !== body.reason || nb.subject !== did) {
        throw new BadRequestError('the body and the signed trust/promote invocation disagree', {
          signed: { subject: nb.subject ?? null, tier: nb.tier ?? null, reason: nb.reason ?? null },
        })
      }
      const record = await authority.promote(body.ucan, did, {
        ...(body.scope !== undefined ? { scope: body.scope } : {}),
        ...(body.credentials !== undefined ? { credentials: body.credentials } : {}),
        ...(body.presentation !== undefined ? { presentation: body.presentation } : {}),
      })
      return trustView(record)
    },
  )

  app.get('/api/auth/root-delegation', { onRequest: authenticate }, async () => {
    const root = init.authority().rootDelegation()
    if (root === undefined) throw new NotFoundError('this mesh has no root delegation (no architect)')
    return root
  })
}
