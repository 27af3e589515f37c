/**
 * The model proxy on a whole node (SPEC §13), its upstream the fake OpenAI server in its
 * own process: members by session, foreign principals under a chain, quotas under
 * concurrency, streaming, and the hostile cases.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { type ChatRequest, estimateTokens } from '../../src/model/index.ts'
import { enrolledAgent, rootOf } from '../auth/chain-acts.ts'
import { startNode, type TestNode } from '../connections/nodes.ts'
import { waitFor } from '../p2p/nodes.ts'
import { ask, chat, modelGrant, modelInvocation, spawnFakeOpenAI, streamed, usageIn } from './helpers.ts'

type AuditRow = { action: string; actor?: string; subject?: string; details: Record<string, unknown> }
type Usage = {
  usage: Array<{
    principal: string
    requests: number
    refused: number
    failed: number
    totalTokens: number
    tier: number
  }>
}

async function modelCalls(node: TestNode): Promise<AuditRow[]> {
  const page = await node.api.get<{ entries: AuditRow[] }>('/api/audit?action=model.called&limit=200')
  return page.entries.filter((row) => row.action === 'model.called')
}

async function alphaWithModel(t: TestContext, quotas?: Record<string, unknown>) {
  const fake = await spawnFakeOpenAI(t, { key: 'sk-test-upstream' })
  const a = await startNode(t, 'alpha', {
    model: { upstream: fake.url, apiKey: 'sk-test-upstream', ...(quotas ? { quotas } : {}) },
  })
  const token = a.api.token as string
  return { a, fake, base: a.node.httpUrl, token }
}

describe('model proxy: members by session (SPEC §13)', () => {
  it('a completion, the model list, usage and the audit row; the upstream gets this mesh’s key', async (t) => {
    const { a, fake, base, token } = await alphaWithModel(t)
    try {
      const answer = await chat(base, { token }, ask('hello there mesh'))
      assert.equal(answer.status, 200, JSON.stringify(answer.json))
      const choice = (answer.json.choices as Array<{ message: { content: string } }>)[0]
      assert.equal(choice?.message.content, 'echo: hello there mesh')
      assert.equal(usageIn(answer.json), 7)
      const models = await a.api.get<{ data: Array<{ id: string }> }>('/v1/models')
      assert.deepEqual(
        models.data.map((m) => m.id),
        ['fake-small'],
      )
      const usage = await a.api.get<Usage>('/api/usage')
      assert.equal(usage.usage.length, 1)
      assert.equal(usage.usage[0]?.principal, a.architect.did)
      assert.equal(usage.usage[0]?.requests, 1)
      assert.equal(usage.usage[0]?.totalTokens, 7)
      assert.equal(usage.usage[0]?.tier, 1)
      const rows = await waitFor(async () => {
        const calls = await modelCalls(a)
        return calls.length === 1 ? calls : undefined
      }, 'the audit row of the call')
      assert.equal(rows[0]?.actor, a.architect.did)
      assert.equal(rows[0]?.subject, 'fake-small')
      assert.equal(rows[0]?.details.outcome, 'ok')
      assert.equal(rows[0]?.details.totalTokens, 7)
      assert.deepEqual((await fake.stats()).keys, ['Bearer sk-test-upstream'])
      const metrics = await (
        await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      ).text()
      assert.match(metrics, /mesh_model_calls_total\{outcome="ok",via="session",stream="false"\} 1/)
      assert.match(metrics, /mesh_model_tokens_total\{via="session"\} 7/)
    } finally {
      await a.stop()
    }
  })

  it('a streamed completion arrives chunk by chunk, then [DONE]; usage from the final usage chunk', async (t) => {
    const { a, base, token } = await alphaWithModel(t)
    try {
      const words = 'one two three four five six'
      const got = await streamed(base, { token }, ask(words, { stream: true, fake_chunk_delay_ms: 60 }))
      assert.equal(got.status, 200)
      assert.match(got.contentType ?? '', /^text\/event-stream/)
      assert.equal(got.events.at(-1)?.data, '[DONE]')
      const chunks = got.events
        .slice(0, -1)
        .map((e) => JSON.parse(e.data) as { choices: Array<{ delta: { content?: string } }> })
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')
      assert.equal(text, `echo: ${words}`)
      // the caller did not ask for usage: the usage-only chunk is not passed on
      assert.ok(chunks.every((c) => c.choices.length > 0))
      // chunk by chunk: each arrived in its own read, spread over the upstream's pace
      assert.ok(got.reads >= chunks.length, `${got.reads} reads for ${chunks.length} chunks`)
      const first = got.events[0]?.at as number
      const last = got.events.at(-2)?.at as number
      assert.ok(last - first >= 60 * (chunks.length - 2), `chunks spread ${first}..${last} ms`)
      // with include_usage the caller gets the usage chunk too, and usage counts it
      const withUsage = await streamed(
        base,
        { token },
        ask('a b', { stream: true, stream_options: { include_usage: true } }),
      )
      const usageChunk = JSON.parse(withUsage.events.at(-2)?.data as string) as {
        usage: { total_tokens: number }
      }
      assert.equal(usageChunk.usage.total_tokens, 2 + 3)
      const usage = await a.api.get<Usage>('/api/usage')
      assert.equal(usage.usage[0]?.totalTokens, 6 + 7 + 5)
      assert.equal(usage.usage[0]?.requests, 2)
    } finally {
      await a.stop()
    }
  })
})

describe('model proxy: a foreign principal under a chain (SPEC §13, §4)', () => {
  it('a foreign tier-4 agent’s completion goes through with a human-signed chain and is refused without', async (t) => {
    const { a, base } = await alphaWithModel(t)
    try {
      const agent = Ed25519KeyPair.generate()
      const did = a.node.did
      const grant = await modelGrant(a.architect, did, agent.did, [await rootOf(a)])
      // with the chain, in the x-mesh-ucan header
      const ok = await chat(base, { ucan: await modelInvocation(agent, did, [grant]) }, ask('from afar'))
      assert.equal(ok.status, 200, JSON.stringify(ok.json))
      assert.equal(usageIn(ok.json), 2 + 3)
      // the model list, under the same chain (a fresh invocation)
      const listed = await fetch(`${base}/v1/models`, {
        headers: { 'x-mesh-ucan': await modelInvocation(agent, did, [grant]) },
      })
      assert.equal(listed.status, 200)
      assert.equal(((await listed.json()) as { data: unknown[] }).data.length, 1)
      // through the one invocation dispatcher: POST /api/invoke
      const invoked = await fetch(`${base}/api/invoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          ucan: await modelInvocation(agent, did, [grant], { request: ask('by invoke') }),
        }),
      })
      const result = (await invoked.json()) as {
        ability: string
        tier: number
        invoker: string
        result: { usage: { total_tokens: number } }
      }
      assert.equal(invoked.status, 200, JSON.stringify(result))
      assert.equal(result.ability, 'model/invoke')
      assert.equal(result.tier, 4)
      assert.equal(result.invoker, agent.did)
      assert.equal(result.result.usage.total_tokens, 2 + 3)
      // without: no session, no chain
      const none = await chat(base, {}, ask('x'))
      assert.equal(none.status, 401)
      assert.equal(none.json.error?.code, 'MESH_UNAUTHENTICATED')
      // an invocation with no chain behind it
      const bare = await chat(base, { ucan: await modelInvocation(agent, did, []) }, ask('x'))
      assert.equal(bare.json.error?.code, 'MESH_UCAN_INVALID', JSON.stringify(bare.json))
      // a chain no human signed: the mesh key straight to the agent
      const meshOnly = await modelGrant(await meshKeyOf(a), did, agent.did, [])
      const notHuman = await chat(base, { ucan: await modelInvocation(agent, did, [meshOnly]) }, ask('x'))
      assert.equal(notHuman.json.error?.code, 'MESH_NOT_HUMAN_SIGNED', JSON.stringify(notHuman.json))
      // credentials beside the chain reach the authority: a bad one is named, a malformed header refused
      const withBadVc = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-mesh-ucan': await modelInvocation(agent, did, [grant]),
          'x-mesh-credentials': 'eyJhbGciOiJFZERTQSJ9.eyJ4IjoxfQ.c2ln',
        },
        body: JSON.stringify(ask('x')),
      })
      assert.equal(((await withBadVc.json()) as { error: { code: string } }).error.code, 'MESH_VC_INVALID')
      const malformed = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-mesh-ucan': await modelInvocation(agent, did, [grant]),
          'x-mesh-credentials': 'not a jwt',
        },
        body: JSON.stringify(ask('x')),
      })
      assert.equal(((await malformed.json()) as { error: { code: string } }).error.code, 'MESH_BAD_REQUEST')
      // a replayed invocation
      const once = await modelInvocation(agent, did, [grant])
      assert.equal((await chat(base, { ucan: once }, ask('x'))).status, 200)
      const replay = await chat(base, { ucan: once }, ask('x'))
      assert.equal(replay.json.error?.code, 'MESH_REPLAY', JSON.stringify(replay.json))
      // a chain fixed to one model is that model's only
      const bound = await modelGrant(a.architect, did, agent.did, [await rootOf(a)], { model: 'fake-small' })
      const other = await chat(
        base,
        { ucan: await modelInvocation(agent, did, [bound], { model: 'fake-small' }) },
        ask('x', { model: 'fake-large' }),
      )
      assert.equal(other.json.error?.code, 'MESH_FORBIDDEN', JSON.stringify(other.json))
      const widened = await chat(
        base,
        { ucan: await modelInvocation(agent, did, [bound], { model: 'fake-large' }) },
        ask('x', { model: 'fake-large' }),
      )
      assert.equal(widened.json.error?.code, 'MESH_UCAN_INVALID', JSON.stringify(widened.json))
      // another ability's invocation in the header
      const wrong = await chat(
        base,
        {
          ucan: await (await import('../../src/cli/chains.ts')).invocationToken(
            agent,
            did,
            { can: 'room/read', with: `${did}/rooms/r1` },
            [grant],
          ),
        },
        ask('x'),
      )
      assert.equal(wrong.json.error?.code, 'MESH_UCAN_INVALID', JSON.stringify(wrong.json))
      // the agent's usage is its own, at tier 4; an agent member reads only its own usage
      const usage = await a.api.get<Usage>(`/api/usage?principal=${agent.did}`)
      assert.equal(usage.usage[0]?.tier, 4)
      assert.equal(usage.usage[0]?.requests, 3)
      const member = await enrolledAgent(a, Ed25519KeyPair.generate(), 'helper')
      await assert.rejects(
        member.get(`/api/usage?principal=${agent.did}`),
        (err: { code: string }) => err.code === 'MESH_FORBIDDEN',
      )
      assert.deepEqual((await member.get<Usage>('/api/usage')).usage, [])
      const calls = await waitFor(async () => {
        const rows = (await modelCalls(a)).filter((r) => r.actor === agent.did)
        return rows.length === 3 ? rows : undefined
      }, 'three audit rows of the agent')
      assert.ok(
        calls.every(
          (r) => r.details.via === 'chain' && r.details.tier === 4 && r.details.human === a.architect.did,
        ),
      )
    } finally {
      await a.stop()
    }
  })
})

describe('model proxy: quotas under concurrency (SPEC §13)', () => {
  it('20 concurrent foreign callers against 10 requests a minute: exactly 10 pass, 10 get 429 with Retry-After; usage adds up exactly', async (t) => {
    const { a, base } = await alphaWithModel(t, { tiers: { 4: { requestsPerMinute: 10 } } })
    try {
      const did = a.node.did
      const root = await rootOf(a)
      const agent = Ed25519KeyPair.generate()
      const grant = await modelGrant(a.architect, did, agent.did, [root])
      const tokens = await Promise.all(Array.from({ length: 20 }, () => modelInvocation(agent, did, [grant])))
      const answers = await Promise.all(
        tokens.map((ucan, i) => chat(base, { ucan }, ask(`call number ${i} ${'w '.repeat(i)}`))),
      )
      const ok = answers.filter((r) => r.status === 200)
      const limited = answers.filter((r) => r.status === 429)
      assert.equal(ok.length, 10, JSON.stringify(answers.map((r) => r.status)))
      assert.equal(limited.length, 10)
      for (const r of limited) {
        assert.equal(r.json.error?.code, 'MESH_RATE_LIMITED')
        const retry = Number(r.headers.get('retry-after'))
        assert.ok(retry >= 1 && retry <= 60, `retry-after ${retry}`)
      }
      // a streamed call past the quota is refused before any event: a plain 429 answer
      const streamedOver = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-mesh-ucan': await modelInvocation(agent, did, [grant]),
        },
        body: JSON.stringify(ask('x', { stream: true })),
      })
      assert.equal(streamedOver.status, 429)
      assert.match(streamedOver.headers.get('content-type') ?? '', /^application\/json/)
      assert.equal(
        ((await streamedOver.json()) as { error: { code: string } }).error.code,
        'MESH_RATE_LIMITED',
      )
      const spent = ok.reduce((n, r) => n + usageIn(r.json), 0)
      const usage = await a.api.get<Usage>(`/api/usage?principal=${agent.did}`)
      assert.equal(usage.usage[0]?.requests, 10)
      assert.equal(usage.usage[0]?.refused, 11)
      assert.equal(usage.usage[0]?.totalTokens, spent)
      const rows = await waitFor(async () => {
        const calls = (await modelCalls(a)).filter((r) => r.actor === agent.did)
        return calls.length === 21 ? calls : undefined
      }, 'twenty-one audit rows')
      const audited = rows
        .filter((r) => r.details.outcome === 'ok')
        .reduce((n, r) => n + (r.details.totalTokens as number), 0)
      assert.equal(audited, spent)
      assert.equal(rows.filter((r) => r.details.outcome === 'refused').length, 11)
    } finally {
      await a.stop()
    }
  })
})

describe('model proxy: hostile and failing (SPEC §13)', () => {
  it('oversized, malformed, upstream 500 / 429 / 400, a cut stream, and a client that goes away (before or mid-stream) aborts the upstream call', async (t) => {
    const { a, fake, base, token } = await alphaWithModel(t)
    try {
      const big = await chat(base, { token }, ask('x'.repeat(1024 * 1024 + 10)))
      assert.equal(big.json.error?.code, 'MESH_TOO_LARGE')
      assert.equal(
        (await chat(base, { token }, { model: 'fake-small' })).json.error?.code,
        'MESH_BAD_REQUEST',
      )
      assert.equal((await chat(base, { token }, '{"model":')).json.error?.code, 'MESH_BAD_REQUEST')
      const failing = await chat(base, { token }, ask('x', { fake_status: 500 }))
      assert.equal(failing.status, 503)
      assert.equal(failing.json.error?.code, 'MESH_UNAVAILABLE')
      assert.equal(failing.json.error?.details.upstreamStatus, 500)
      const limited = await chat(base, { token }, ask('x', { fake_status: 429 }))
      assert.equal(limited.json.error?.code, 'MESH_RATE_LIMITED')
      assert.equal(limited.headers.get('retry-after'), '7')
      const refused = await chat(base, { token }, ask('x', { fake_status: 400 }))
      assert.equal(refused.json.error?.code, 'MESH_BAD_REQUEST')
      // a stream the upstream cuts: the error as the last event, no [DONE]
      const cut = await streamed(base, { token }, ask('a b c d', { stream: true, fake_cut: true }))
      assert.equal(cut.status, 200)
      const lastEvent = JSON.parse(cut.events.at(-1)?.data as string) as { error: { code: string } }
      assert.equal(lastEvent.error.code, 'MESH_UNAVAILABLE')
      // the client goes away: the upstream call is aborted
      const before = await fake.stats()
      const controller = new AbortController()
      const pending = chat(base, { token }, ask('x', { fake_hang: true }), controller.signal)
      await waitFor(
        async () => ((await fake.stats()).requests > before.requests ? true : undefined),
        'the hanging call upstream',
      )
      controller.abort()
      await assert.rejects(pending)
      await waitFor(
        async () => ((await fake.stats()).aborted > before.aborted ? true : undefined),
        'the upstream call aborted',
      )
      // the client goes away mid-stream: the upstream stream is aborted too
      const midway = new AbortController()
      const long = ask('w '.repeat(50), { stream: true, fake_chunk_delay_ms: 100 })
      const response = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(long),
        signal: midway.signal,
      })
      const reader = (response.body as ReadableStream<Uint8Array>).getReader()
      await reader.read()
      const beforeCut = await fake.stats()
      midway.abort()
      await waitFor(
        async () => ((await fake.stats()).aborted > beforeCut.aborted ? true : undefined),
        'the upstream stream aborted',
      )
      // failures before any answer give the request back and charge nothing; the two streams
      // cut after their first chunks are charged their estimates (no usage was reported)
      const usage = await waitFor(async () => {
        const [mine] = (await a.api.get<Usage>('/api/usage')).usage
        return mine?.failed === 4 && mine.requests === 2 ? mine : undefined
      }, 'four failed calls and two charged')
      const estimate = (body: ReturnType<typeof ask>) => estimateTokens(body as ChatRequest, 1024)
      assert.equal(usage.totalTokens, estimate(ask('a b c d')) + estimate(long))
    } finally {
      await a.stop()
    }
  })

  it('without an upstream: MESH_UNAVAILABLE, and the manifest does not list model/invoke', async (t) => {
    const a = await startNode(t, 'alpha')
    try {
      const token = a.api.token as string
      const answer = await chat(a.node.httpUrl, { token }, ask('x'))
      assert.equal(answer.status, 503)
      assert.equal(answer.json.error?.code, 'MESH_UNAVAILABLE')
      const manifest = await a.api.get<{ capabilities: string[] }>('/.well-known/mesh-manifest.json')
      assert.ok(!manifest.capabilities.includes('model/invoke'))
      // and the dispatcher does not take it, before any proof (as any ability not listed)
      const agent = Ed25519KeyPair.generate()
      const grant = await modelGrant(a.architect, a.node.did, agent.did, [await rootOf(a)])
      const invoked = await fetch(`${a.node.httpUrl}/api/invoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          ucan: await modelInvocation(agent, a.node.did, [grant], { request: ask('x') }),
        }),
      })
      const refusal = (await invoked.json()) as { error: { code: string; details: { reason: string } } }
      assert.equal(refusal.error.code, 'MESH_UCAN_INVALID')
      assert.equal(refusal.error.details.reason, 'capability')
    } finally {
      await a.stop()
    }
  })
})

/** The mesh key of a test node (to issue a chain no human signed). */
async function meshKeyOf(node: TestNode): Promise<Ed25519KeyPair> {
  const { join } = await import('node:path')
  const { MESH_KEY_FILE, readKeyFile } = await import('../../src/identity/index.ts')
  return readKeyFile(join(node.dataDir, MESH_KEY_FILE))
}
