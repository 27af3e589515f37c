/**
 * The model proxy end to end, every part its own process (SPEC §13): the fake OpenAI
 * upstream (its key required), and `mesh start --model-upstream URL` with the key in
 * `MESH_MODEL_API_KEY` and a quota policy file (`--model-quotas`). A foreign tier-4 agent's completion goes through with a chain in
 * `x-mesh-ucan` and is refused without; a member's streamed completion arrives chunk by
 * chunk; `mesh usage` adds it all up.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { proofOf } from '../../src/cli/chains.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { e2e, freePort } from '../fixtures/e2e.ts'
import { ask, chat, modelInvocation, spawnFakeOpenAI, streamed, usageIn } from '../model/helpers.ts'

type UsageList = {
  usage: Array<{ principal: string; tier: number; requests: number; refused: number; totalTokens: number }>
}

describe('e2e: the model proxy (SPEC §13)', () => {
  it('mesh start --model-upstream: a foreign agent under a chain, a streamed completion, mesh usage', async (t) => {
    const fake = await spawnFakeOpenAI(t, { key: 'sk-e2e-upstream' })
    const e = await e2e(t, 'mesh-e2e-model-')
    ;(e.env as Record<string, string>).MESH_MODEL_API_KEY = 'sk-e2e-upstream'
    const dir = await e.init('alpha')
    const quotas = join(e.root, 'quotas.json')
    await writeFile(quotas, JSON.stringify({ tiers: { 4: { requestsPerMinute: 2 } } }))
    const proc = await e.start([
      'start',
      ...['--data', dir, '--http', `127.0.0.1:${await freePort()}`],
      ...['--listen', `/ip4/127.0.0.1/tcp/${await freePort()}`, '--discovery-interval', '60000'],
      ...['--model-upstream', fake.url, '--model-quotas', quotas],
    ])
    const api = await e.signInArchitect(proc.http, 'alpha')
    const meshDid = proc.did as string
    const architect = await e.keystore.load('alpha-architect')

    // the manifest lists model/invoke now that there is an upstream
    const manifest = await api.get<{ capabilities: string[] }>('/.well-known/mesh-manifest.json')
    assert.ok(manifest.capabilities.includes('model/invoke'))

    // a foreign agent, tier 4 here, with a chain alpha's architect signed
    const agent = Ed25519KeyPair.generate()
    // alpha's architect grants it with the CLI: mesh delegate <did> model/invoke
    const delegated = await e.cli<{ token: string; can: string; with: string }>(
      { dir },
      'delegate',
      agent.did,
      'model/invoke',
      '--api',
      proc.http,
    )
    assert.equal(delegated.can, 'model/invoke')
    assert.equal(delegated.with, meshDid)
    const grant = proofOf(delegated.token)
    const ok = await chat(
      proc.http,
      { ucan: await modelInvocation(agent, meshDid, [grant]) },
      ask('hi from elsewhere'),
    )
    assert.equal(ok.status, 200, JSON.stringify(ok.json))
    assert.equal(usageIn(ok.json), 3 + 4)
    // and without
    const without = await chat(proc.http, { ucan: await modelInvocation(agent, meshDid, []) }, ask('hi'))
    assert.equal(without.json.error?.code, 'MESH_UCAN_INVALID', JSON.stringify(without.json))
    assert.equal((await chat(proc.http, {}, ask('hi'))).json.error?.code, 'MESH_UNAUTHENTICATED')
    // --model-quotas: two requests a minute for tier 4, the third waits
    const second = await chat(
      proc.http,
      { ucan: await modelInvocation(agent, meshDid, [grant]) },
      ask('hi again there'),
    )
    assert.equal(second.status, 200)
    const third = await chat(proc.http, { ucan: await modelInvocation(agent, meshDid, [grant]) }, ask('hi'))
    assert.equal(third.status, 429)
    assert.equal(third.json.error?.code, 'MESH_RATE_LIMITED')
    assert.ok(Number(third.headers.get('retry-after')) >= 1)

    // the architect's streamed completion, chunk by chunk
    const got = await streamed(
      proc.http,
      { token: api.token as string },
      ask('one two three four', { stream: true, fake_chunk_delay_ms: 50 }),
    )
    assert.equal(got.status, 200)
    assert.equal(got.events.at(-1)?.data, '[DONE]')
    const chunks = got.events.length - 1
    assert.ok(got.reads >= chunks, `${got.reads} reads for ${chunks} chunks`)
    assert.ok((got.events.at(-2)?.at as number) - (got.events[0]?.at as number) >= 50 * (chunks - 2))

    // every upstream call carried this mesh's key, from the environment
    assert.ok((await fake.stats()).keys.every((k) => k === 'Bearer sk-e2e-upstream'))

    // mesh usage: the architect (tier 1) reads everyone's
    const usage = await e.cli<UsageList>({ dir }, 'usage', '--api', proc.http)
    const byDid = new Map(usage.usage.map((u) => [u.principal, u]))
    assert.equal(byDid.get(agent.did)?.tier, 4)
    assert.equal(byDid.get(agent.did)?.requests, 2)
    assert.equal(byDid.get(agent.did)?.totalTokens, usageIn(ok.json) + usageIn(second.json))
    assert.equal(byDid.get(agent.did)?.refused, 1)
    assert.equal(byDid.get(architect.did)?.requests, 1)
    assert.equal(byDid.get(architect.did)?.totalTokens, 4 + 5)
  })
})
