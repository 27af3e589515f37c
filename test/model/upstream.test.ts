/**
 * The model proxy's upstream client (SPEC §13): every way an upstream fails is a MeshError
 * with a code and the upstream's status, and a stream is read event by event.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import { ModelUpstream } from '../../src/model/index.ts'
import { freePort } from '../fixtures/e2e.ts'
import { startFakeOpenAI } from '../fixtures/fake-openai.ts'

type Refusal = { code: string; details: Record<string, unknown> }

const refused = (code: string, reason?: string) => (err: Refusal) => {
  assert.equal(err.code, code, JSON.stringify(err))
  if (reason !== undefined) assert.equal(err.details.reason, reason, JSON.stringify(err))
  return true
}

const ask = { model: 'fake-small', messages: [{ role: 'user', content: 'a b c' }] }

async function fake(t: TestContext, key?: string) {
  const server = await startFakeOpenAI(key === undefined ? {} : { key })
  t.after(() => server.close())
  return server
}

/** A server that answers `handler`'s way, for what the fake does not do. */
async function odd(t: TestContext, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
}

describe('model upstream client (SPEC §13)', () => {
  it('a completion with its usage, the model list, and a stream event by event with the usage chunk', async (t) => {
    const server = await fake(t, 'sk-right')
    const upstream = new ModelUpstream({ url: server.url, apiKey: 'sk-right' })
    const done = await upstream.complete(ask)
    assert.deepEqual(done.usage, { promptTokens: 3, completionTokens: 4, totalTokens: 7 })
    assert.equal(JSON.parse(done.text).id, done.body.id)
    assert.equal(((await upstream.models()).data as unknown[]).length, 1)
    const chunks = []
    for await (const chunk of upstream.stream({
      ...ask,
      stream: true,
      stream_options: { include_usage: true },
    })) {
      chunks.push(chunk)
    }
    // role, four words, stop, usage
    assert.equal(chunks.length, 7)
    assert.deepEqual(chunks.at(-1)?.usage, { promptTokens: 3, completionTokens: 4, totalTokens: 7 })
  })

  it('refusals as codes: a wrong key, 404, 400, 413, 429 with Retry-After, 5xx, unreachable, timed out, not JSON, cut', async (t) => {
    const server = await fake(t, 'sk-right')
    await assert.rejects(
      new ModelUpstream({ url: server.url, apiKey: 'sk-wrong' }).complete(ask),
      refused('MESH_UNAVAILABLE', 'upstream-auth'),
    )
    const upstream = new ModelUpstream({ url: server.url, apiKey: 'sk-right' })
    for (const [status, code] of [
      [404, 'MESH_NOT_FOUND'],
      [400, 'MESH_BAD_REQUEST'],
      [422, 'MESH_BAD_REQUEST'],
      [413, 'MESH_TOO_LARGE'],
      [502, 'MESH_UNAVAILABLE'],
    ] as const) {
      await assert.rejects(upstream.complete({ ...ask, fake_status: status }), (err: Refusal) => {
        assert.equal(err.code, code)
        assert.equal(err.details.upstreamStatus, status)
        assert.equal(err.details.upstreamMessage, `fake status ${status}`)
        return true
      })
    }
    await assert.rejects(upstream.complete({ ...ask, fake_status: 429 }), (err: Refusal) => {
      assert.equal(err.code, 'MESH_RATE_LIMITED')
      assert.equal(err.details.retryAfterMs, 7000)
      return true
    })
    await assert.rejects(
      new ModelUpstream({ url: `http://127.0.0.1:${await freePort()}/v1` }).complete(ask),
      refused('MESH_UNAVAILABLE', 'upstream-unreachable'),
    )
    await assert.rejects(
      new ModelUpstream({ url: server.url, apiKey: 'sk-right', timeoutMs: 200 }).complete({
        ...ask,
        fake_hang: true,
      }),
      refused('MESH_UNAVAILABLE', 'upstream-timeout'),
    )
    const notJson = await odd(t, (_req, res) => res.end('<html>hello</html>'))
    await assert.rejects(
      new ModelUpstream({ url: notJson }).complete(ask),
      refused('MESH_UNAVAILABLE', 'upstream-malformed'),
    )
    const cut = async () => {
      for await (const _ of upstream.stream({ ...ask, stream: true, fake_cut: true })) void _
    }
    await assert.rejects(cut(), refused('MESH_UNAVAILABLE', 'upstream-cut'))
    // a stream that ends without [DONE]
    const noDone = await odd(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end('data: {"choices":[]}\n\n')
    })
    const unfinished = async () => {
      for await (const _ of new ModelUpstream({ url: noDone }).stream({ ...ask, stream: true })) void _
    }
    await assert.rejects(unfinished(), refused('MESH_UNAVAILABLE', 'upstream-cut'))
    assert.throws(() => new ModelUpstream({ url: 'file:///etc/passwd' }), refused('MESH_BAD_REQUEST'))
  })

  it('an abort of the caller’s signal aborts the upstream call', async (t) => {
    const server = await fake(t)
    const upstream = new ModelUpstream({ url: server.url })
    const controller = new AbortController()
    const pending = upstream.complete({ ...ask, fake_hang: true }, controller.signal)
    while (server.stats.requests === 0) await new Promise((resolve) => setImmediate(resolve))
    controller.abort(new Error('gone'))
    await assert.rejects(pending, /gone/)
    while (server.stats.aborted === 0) await new Promise((resolve) => setImmediate(resolve))
  })
})
