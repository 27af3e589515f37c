/**
 * Issue 15 (cold start): response serializers compile on a route's first answer, with
 * fastify's own compiler — answers are serialized exactly as before, and every response
 * schema of the contract still compiles.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { routes } from '../../src/api/routes.ts'
import { createHttpApp } from '../../src/http/index.ts'
import { buildLazySerializer } from '../../src/http/lazy-serializers.ts'
import { Registry } from '../../src/kernel/prom.ts'
import { createLogger } from '../../src/log.ts'

describe('lazy response serializers (issue 15)', () => {
  it('compile on the first answer, not when the route is registered', () => {
    const compile = buildLazySerializer({}, {})
    // a schema fast-json-stringify refuses: registering it does not compile it
    const serialize = compile({ schema: { type: 'object', properties: { a: { $ref: '#/nowhere' } } } })
    assert.throws(() => serialize({ a: 1 }))
    const good = compile({ schema: { type: 'object', properties: { a: { type: 'integer' } } } })
    assert.equal(good({ a: 1, dropped: true }), '{"a":1}')
    assert.equal(good({ a: 2 }), '{"a":2}')
  })

  it('a route answers through its response schema, as fastify serializes it', async (t) => {
    const app = createHttpApp({ logger: createLogger({ level: 'silent' }), metrics: new Registry() })
    t.after(() => app.close())
    app.get(
      '/shape',
      {
        schema: {
          response: {
            200: { type: 'object', properties: { kept: { type: 'string' }, n: { type: 'integer' } } },
          },
        },
      },
      async () => ({ kept: 'yes', n: 3, secret: 'never serialized' }),
    )
    await app.ready()
    for (let i = 0; i < 2; i++) {
      const answer = await app.inject({ method: 'GET', url: '/shape' })
      assert.equal(answer.statusCode, 200)
      assert.equal(answer.body, '{"kept":"yes","n":3}')
    }
  })

  it('every response schema of the contract compiles with the compiler fastify uses', () => {
    // what the server did for every route before it was ready
    const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'))
    const compile = fromFastify('@fastify/fast-json-stringify-compiler')()({}, {})
    let count = 0
    for (const [name, spec] of Object.entries(routes)) {
      if (!('response' in spec) || spec.response === undefined) continue
      assert.doesNotThrow(() => compile({ schema: spec.response, url: spec.path, method: spec.method }), name)
      count++
    }
    assert.ok(count > 20, `${count} response schemas`)
  })
})
