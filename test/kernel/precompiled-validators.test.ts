/**
 * Issue 15 (cold start): the checks a node makes before it is ready (its audit
 * checkpoint, its mesh record's profile) run ajv's standalone code, committed in
 * src/kernel/precompiled-validators.ts, so a start loads no ajv; ajv loads on the first
 * other schema compiled. The file is what scripts/gen-validators.ts writes today, and
 * answers exactly as ajv's compiled check does.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { PRECOMPILED, PRECOMPILED_FILE, precompiledSource } from '../../scripts/gen-validators.ts'
import { signCheckpoint } from '../../src/audit/checkpoint.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import * as precompiled from '../../src/kernel/precompiled-validators.ts'
import { AJV_OPTIONS } from '../../src/schema.ts'

const run = promisify(execFile)
const CHECKPOINT = new URL('../../src/audit/checkpoint.ts', import.meta.url).href
const SCHEMA = new URL('../../src/schema.ts', import.meta.url).href

const key = Ed25519KeyPair.generate()
const goodCheckpoint = signCheckpoint(key, {
  mesh: key.did,
  size: 3,
  head: 'ab'.repeat(32),
  ts: new Date().toISOString(),
})
const long = 'x'.repeat(5000)

/** Valid and invalid values of each precompiled schema: every keyword's failure. */
const SAMPLES: Record<string, unknown[]> = {
  checkpoint: [
    goodCheckpoint,
    { ...goodCheckpoint, size: 0 },
    { ...goodCheckpoint, extra: 1 },
    { ...goodCheckpoint, mesh: undefined },
    { ...goodCheckpoint, mesh: 'did:key:zzz0' },
    { ...goodCheckpoint, mesh: `did:key:z${'a'.repeat(200)}` },
    { ...goodCheckpoint, size: -1 },
    { ...goodCheckpoint, size: 1.5 },
    { ...goodCheckpoint, size: '3' },
    { ...goodCheckpoint, size: Number.MAX_SAFE_INTEGER + 2 },
    { ...goodCheckpoint, head: 'AB'.repeat(32) },
    { ...goodCheckpoint, ts: long },
    { ...goodCheckpoint, ts: 7 },
    { ...goodCheckpoint, signer: null },
    { ...goodCheckpoint, sig: 'short' },
    [],
    null,
    'checkpoint',
    42,
    {},
  ],
  meshProfile: [
    {},
    { http: 'https://alpha.example', manifestUrl: 'https://alpha.example/.well-known/mesh.json' },
    { description: 'a mesh', agents: [{ name: 'echo', skills: ['echo'] }], capabilities: ['rooms'] },
    { http: 'ftp://alpha.example' },
    { http: `https://${long}` },
    { http: 7 },
    { description: 'bell\u0007' },
    { description: long },
    { agents: [{ name: 'echo' }] },
    { agents: [{ name: 'echo', skills: [], more: true }] },
    { agents: [{ name: long, skills: [] }] },
    { agents: Array.from({ length: 500 }, () => ({ name: 'a', skills: [] })) },
    { agents: { name: 'echo' } },
    { capabilities: [1] },
    { capabilities: Array.from({ length: 1000 }, () => 'c') },
    { unknown: 1 },
    [],
    null,
  ],
}

describe('precompiled validators (issue 15)', () => {
  it('the committed file is what scripts/gen-validators.ts writes from today’s schemas', () => {
    assert.equal(
      readFileSync(PRECOMPILED_FILE, 'utf8'),
      precompiledSource(),
      'a precompiled schema changed: run `node scripts/gen-validators.ts`',
    )
  })

  it('answer every sample exactly as ajv’s compiled check, errors and all', () => {
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv')
    const ajv = new Ajv(AJV_OPTIONS)
    const table = precompiled as unknown as Record<
      string,
      ((value: unknown) => boolean) & { errors?: unknown }
    >
    assert.deepEqual(Object.keys(SAMPLES).sort(), Object.keys(PRECOMPILED).sort())
    for (const [name, schema] of Object.entries(PRECOMPILED)) {
      const compiled = ajv.compile(schema)
      const standalone = table[name]
      assert.equal(typeof standalone, 'function', name)
      let passed = 0
      for (const sample of SAMPLES[name] ?? []) {
        const expected = compiled(sample)
        assert.equal(standalone?.(sample), expected, `${name}: ${JSON.stringify(sample)?.slice(0, 80)}`)
        assert.deepEqual(standalone?.errors ?? null, compiled.errors ?? null, name)
        if (expected) passed++
      }
      assert.ok(passed > 0 && passed < (SAMPLES[name]?.length ?? 0), `${name}: samples both pass and fail`)
    }
  })

  it('checking a checkpoint loads no ajv but its runtime helper; the first other schema loads it and works', async () => {
    const script = `
      import { registerHooks } from 'node:module'
      const seen = new Set()
      registerHooks({ resolve(spec, ctx, next) {
        const r = next(spec, ctx)
        const m = r.url.match(/node_modules\\/ajv\\/(.*)$/)
        if (m) seen.add(m[1])
        return r
      } })
      const { isSignedCheckpoint } = await import(${JSON.stringify(CHECKPOINT)})
      const { lazyValidator } = await import(${JSON.stringify(SCHEMA)})
      const checked = isSignedCheckpoint({ mesh: 'x' })
      const before = [...seen]
      const other = lazyValidator({ type: 'object', required: ['a'], properties: { a: { type: 'integer' } } })
      const answers = [other({ a: 1 }), other({ a: 'one' }), other.errors[0].message]
      console.log(JSON.stringify({ checked, before, answers, after: seen.size }))
    `
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script])
    const { checked, before, answers, after } = JSON.parse(stdout)
    assert.equal(checked, false)
    assert.deepEqual(before, ['dist/runtime/ucs2length.js'])
    assert.deepEqual(answers, [true, false, 'must be integer'])
    assert.ok(after > 20, `ajv loaded: ${after} modules`)
  })
})
