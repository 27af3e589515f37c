/**
 * SPEC §8: every capability the manifest lists is invocable as listed, and it lists
 * nothing that is not. The walk reads a running node's manifest over HTTP as a foreign
 * principal would and, for every capability it lists, fills the `with` template and the
 * `nb` from the manifest itself, gets a chain (the architect → a fresh foreign key, and
 * the tier the listing states), and sends the invocation along every `via`. A row added
 * to src/node/invocable.ts without a working invocation fails here; so does a template
 * variable, a caveat or a transport the walk cannot fill from what the manifest says.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type * as API from '@ucanto/interface'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { CAPABILITIES } from '../../src/auth/authority/index.ts'
import { invocationToken } from '../../src/cli/chains.ts'
import type { HttpClient } from '../../src/cli/http-client.ts'
import { MESH_INVOKE_PROTOCOL } from '../../src/connections/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import type { AgentCard, CapabilityInvocation, MeshManifest } from '../../src/manifest/index.ts'
import { enrolledAgent, grant, rootOf } from '../auth/chain-acts.ts'
import { startNode, type TestNode } from '../connections/nodes.ts'
import { startFakeOpenAI } from '../fixtures/fake-openai.ts'
import { connect } from '../rooms/helpers.ts'

/** What a template variable or caveat is filled from: the manifest, and the room the architect grants. */
interface WalkContext {
  manifest: MeshManifest
  room: string
  card?: AgentCard
}

/** One invocation the walk makes: a capability on a resource with caveats. */
interface Step {
  can: string
  with: string
  nb: Record<string, unknown>
}

/** The values of each template variable (`{did}` is the manifest's did). */
const BINDERS: Record<string, (ctx: WalkContext) => Array<{ value: string; card?: AgentCard }>> = {
  agent: ({ manifest }) =>
    manifest.agents.map((card) => {
      const prefix = `${manifest.did}/agents/`
      const resource = card.resource ?? ''
      assert.ok(resource.startsWith(prefix), `agent ${card.name} lists its resource under ${prefix}`)
      return { value: resource.slice(prefix.length), card }
    }),
  room: ({ room }) => [{ value: room }],
}

/** The values of each caveat, given those filled before it (in the order the schema lists them). */
const FILLERS: Record<string, (ctx: WalkContext, nb: Record<string, unknown>) => unknown[]> = {
  ability: ({ card }) => card?.skills.map((s) => s.id) ?? [],
  input: ({ card, room }, nb) => {
    const example = card?.skills.find((s) => s.id === nb.ability)?.examples?.[0]
    return example === undefined ? [] : [JSON.parse(example.replaceAll('<room id>', room))]
  },
  body: () => ['hello from the manifest walk'],
  // the model proxy (SPEC §13): a chat completion request for the fake upstream
  request: () => [{ model: 'fake-small', messages: [{ role: 'user', content: 'the manifest walk' }] }],
}

/** Every invocation of `can` the manifest describes: each binding of its template, each filling of its caveats. */
function stepsOf(can: string, how: CapabilityInvocation, base: WalkContext): Step[] {
  let partial: Array<{ with: string; ctx: WalkContext }> = [
    { with: how.with.replaceAll('{did}', base.manifest.did), ctx: base },
  ]
  for (const [, name] of how.with.matchAll(/\{([a-z]+)\}/g)) {
    if (name === 'did') continue
    const binder = BINDERS[name as string]
    assert.ok(binder, `${can}: the walk cannot fill {${name}} of ${how.with} from the manifest`)
    partial = partial.flatMap((p) =>
      binder(p.ctx).map((b) => ({
        with: p.with.replaceAll(`{${name}}`, b.value),
        ctx: b.card === undefined ? p.ctx : { ...p.ctx, card: b.card },
      })),
    )
  }
  const required = new Set(how.nb.required ?? [])
  let steps = partial.map((p) => ({
    step: { can, with: p.with, nb: {} as Record<string, unknown> },
    ctx: p.ctx,
  }))
  for (const name of Object.keys(how.nb.properties)) {
    const filler = FILLERS[name]
    assert.ok(filler !== undefined || !required.has(name), `${can}: the walk cannot fill nb.${name}`)
    if (filler === undefined) continue
    steps = steps.flatMap(({ step, ctx }) => {
      const values = filler(ctx, step.nb)
      assert.ok(values.length > 0 || !required.has(name), `${can}: nothing in the manifest fills nb.${name}`)
      if (values.length === 0) return [{ step, ctx }]
      return values.map((value) => ({ step: { ...step, nb: { ...step.nb, [name]: value } }, ctx }))
    })
  }
  assert.ok(steps.length > 0, `${can} is listed but the manifest offers nothing to invoke it on`)
  const validNb = new Ajv2020({ strict: false }).compile(how.nb)
  for (const { step } of steps)
    assert.ok(validNb(step.nb), `${can}: the walk's nb ${JSON.stringify(step.nb)} is as listed`)
  return steps.map((s) => s.step)
}

type Answer = {
  status: number
  body: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<
    string,
    unknown
  >
}

/**
 * A foreign principal's own mesh (beta), connected to the walked one: the `libp2p` way is
 * `POST /api/outbound/invoke {mesh, ucan}` there, by the principal signed in to it.
 */
interface Carrier {
  node: TestNode
  /** The principal enrolled on the carrier (once) and signed in: its session there. */
  sessionOf(key: Ed25519KeyPair): Promise<HttpClient>
}

/** `key`'s invocation of `step` under `proofs`, sent along one `via` of the manifest, as a foreign principal. */
async function send(
  { manifest, carrier }: { manifest: MeshManifest; carrier: Carrier },
  via: CapabilityInvocation['via'][number],
  key: Ed25519KeyPair,
  step: Step,
  proofs: API.Delegation[],
): Promise<Answer> {
  const ucan = await invocationToken(key, manifest.did, step, proofs)
  if (via.transport === 'libp2p') {
    assert.equal(via.protocol, MESH_INVOKE_PROTOCOL, 'the walk speaks /mesh/invoke/1.0.0')
    const api = await carrier.sessionOf(key)
    try {
      const res = await api.post<{ answer: Answer['body'] }>('/api/outbound/invoke', {
        mesh: manifest.did,
        ucan,
      })
      return { status: 200, body: res.answer }
    } catch (err) {
      const e = err as { status: number; code: string; message: string; details: Record<string, unknown> }
      return { status: e.status, body: { error: { code: e.code, message: e.message, details: e.details } } }
    }
  }
  if (via.transport !== 'http')
    assert.fail(
      `the walk has no way to invoke over ${(via as { transport: string }).transport} yet: teach it`,
    )
  const res = await fetch(new URL(via.path, manifest.endpoints.http), {
    method: via.method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ucan }),
  })
  return { status: res.status, body: (await res.json()) as Answer['body'] }
}

/** The architect's (and its root delegation's) chain to `to` for `step`'s capability on its resource. */
async function chainFor(node: TestNode, to: Ed25519KeyPair, step: Step) {
  return (await grant(node, to.did, { can: step.can, with: step.with as `${string}:${string}` })).view
}

/** The architect promotes (or sets) `did` to `tier` on `node` (trust/promote). */
async function setTier(node: TestNode, did: string, tier: number): Promise<void> {
  const reason = 'manifest walk'
  const ucan = await invocationToken(
    node.architect,
    node.node.did,
    { can: 'trust/promote', with: node.node.did, nb: { subject: did, tier, reason } },
    [await rootOf(node)],
  )
  await node.api.put(`/api/trust/${did}`, { tier, reason, ucan })
}

/** Beta, connected to `node`, carrying its members' invocations (enrolled as agents on first use). */
async function carrierOf(t: Parameters<typeof startNode>[0], node: TestNode): Promise<Carrier> {
  const beta = await startNode(t, 'beta', { outbound: { sendsPerMinute: 10_000 } })
  await connect(beta, node)
  const sessions = new Map<string, HttpClient>()
  return {
    node: beta,
    async sessionOf(key) {
      const held = sessions.get(key.did)
      if (held !== undefined) return held
      const api = await enrolledAgent(beta, key, `walker-${sessions.size}`)
      sessions.set(key.did, api)
      return api
    },
  }
}

/** A node with a room (its agents in it, a few messages), its manifest as a stranger fetches it, and a carrier mesh. */
async function walkable(t: Parameters<typeof startNode>[0]) {
  // the model proxy (SPEC §13): with an upstream, so that model/invoke is listed and walked
  const upstream = await startFakeOpenAI()
  t.after(() => upstream.close())
  const node = await startNode(t, 'alpha', {
    outbound: { requestsPerMinute: 10_000 },
    model: { upstream: upstream.url },
  })
  const res = await fetch(`${node.node.httpUrl}/.well-known/mesh-manifest.json`)
  assert.equal(res.status, 200)
  const manifest = (await res.json()) as MeshManifest
  const room = await node.api.post<{ id: string }>('/api/rooms', { name: 'walk' })
  for (const body of ['the walk starts', 'every capability, as listed']) {
    await node.api.post(`/api/rooms/${room.id}/messages`, { body })
  }
  for (const card of manifest.agents) await node.node.rooms.join(room.id, card.did)
  const carrier = await carrierOf(t, node)
  return { node, manifest, carrier, ctx: { manifest, room: room.id } as WalkContext }
}

describe('the manifest, walked', () => {
  it('every capability it lists is invocable as listed, by a foreign principal with a chain', async (t) => {
    const { node, manifest, carrier, ctx } = await walkable(t)
    assert.ok(manifest.capabilities.length > 0, 'the manifest lists something')
    assert.deepEqual(Object.keys(manifest.invocation).sort(), [...manifest.capabilities].sort())
    let walked = 0
    for (const can of manifest.capabilities) {
      const how = manifest.invocation[can] as CapabilityInvocation
      assert.ok(CAPABILITIES[can], `${can} is an ability the mesh knows`)
      const stranger = Ed25519KeyPair.generate()
      if (how.tier < 4) await setTier(node, stranger.did, how.tier)
      for (const step of stepsOf(can, how, ctx)) {
        const proofs = [await chainFor(node, stranger, step)]
        for (const via of how.via) {
          const answer = await send({ manifest, carrier }, via, stranger, step, proofs)
          assert.ok(
            answer.status >= 200 && answer.status < 300,
            `${can} ${JSON.stringify(step.nb)} via ${JSON.stringify(via)}: ${answer.status} ${JSON.stringify(answer.body)}`,
          )
          assert.equal(answer.body.error, undefined)
          walked++
          // Without the chain the same invocation is refused: the listing's "given a chain" holds.
          const bare = await send({ manifest, carrier }, via, stranger, step, [])
          assert.equal(bare.status, 401, JSON.stringify(bare.body))
          assert.equal(bare.body.error?.code, 'MESH_UCAN_INVALID')
        }
      }
    }
    assert.ok(walked >= manifest.capabilities.length)
  })

  it('the tier it states is the one needed: below it, the same chain is refused', async (t) => {
    const { node, manifest, carrier, ctx } = await walkable(t)
    for (const can of manifest.capabilities) {
      const how = manifest.invocation[can] as CapabilityInvocation
      if (how.tier === 4) continue
      const stranger = Ed25519KeyPair.generate() // tier 4, as every foreign principal starts
      const step = stepsOf(can, how, ctx)[0] as Step
      const proofs = [await chainFor(node, stranger, step)]
      for (const via of how.via) {
        const answer = await send({ manifest, carrier }, via, stranger, step, proofs)
        assert.equal(answer.status, 403, `${can}: ${JSON.stringify(answer.body)}`)
        assert.equal(answer.body.error?.code, 'MESH_TIER_FORBIDDEN')
      }
    }
  })

  it('a capability it does not list is refused along every way it lists, whatever the chain', async (t) => {
    const { node, manifest, carrier } = await walkable(t)
    const ways = new Map<string, CapabilityInvocation['via'][number]>()
    for (const how of Object.values(manifest.invocation)) {
      for (const via of how.via) ways.set(JSON.stringify(via), via)
    }
    const unlisted = [...Object.keys(CAPABILITIES), 'room/delete'].filter(
      (can) => !manifest.capabilities.includes(can),
    )
    assert.ok(unlisted.includes('mesh/connect') && unlisted.includes('room/share'))
    const stranger = Ed25519KeyPair.generate()
    await setTier(node, stranger.did, 2) // the most a foreign principal can be given: the tier is not the reason
    for (const can of unlisted) {
      const step: Step = { can, with: manifest.did, nb: {} }
      const proofs = [await chainFor(node, stranger, step)]
      for (const via of ways.values()) {
        const answer = await send({ manifest, carrier }, via, stranger, step, proofs)
        assert.ok(
          answer.status >= 400 && answer.status < 500,
          `${can}: ${answer.status} ${JSON.stringify(answer.body)}`,
        )
        // Not listed, so not dispatched: refused before any proof, by the walked mesh itself.
        assert.equal(answer.body.error?.code, 'MESH_UCAN_INVALID', `${can}: ${JSON.stringify(answer.body)}`)
        assert.equal(answer.body.error?.details?.reason, 'capability')
        if (via.transport === 'libp2p') assert.equal(answer.body.error?.details?.refusedBy, manifest.did)
      }
    }
  })
})
