/**
 * Issue 15 (cold start): ucanto loads the first time the authority needs it, not with
 * the authority's modules; what replaced import-time ucanto calls (the dag-cbor framings
 * of the lean CAR reader, the EdDSA signature code) is what ucanto itself computes.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { CBOR, decodeLink, Signature } from '@ucanto/core'
import { EDDSA_SIGNATURE_CODE } from '../../src/api/ucan.ts'
import { CID_FRAMINGS, encodeToken, issueDelegation } from '../../src/auth/authority/token.ts'
import { loadModuleSync } from '../../src/auth/authority/ucanto.ts'
import { MeshError } from '../../src/errors.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'

const run = promisify(execFile)
const INDEX = new URL('../../src/auth/authority/index.ts', import.meta.url).href

/**
 * Imports the authority in a fresh process, then runs `then` (which may `step()` to note
 * what has loaded so far); returns which ucanto packages had loaded at each point.
 */
async function loadedPackages(
  then: string,
  env: Record<string, string> = {},
): Promise<{ atImport: string[]; steps: string[][]; after: string[] }> {
  const script = `
    import { registerHooks } from 'node:module'
    const seen = new Set()
    registerHooks({ resolve(spec, ctx, next) {
      const r = next(spec, ctx)
      const m = r.url.match(/node_modules\\/(@ucanto\\/[^/]+|@ipld\\/[^/]+|cborg)\\//)
      if (m) seen.add(m[1])
      return r
    } })
    const authority = await import(${JSON.stringify(INDEX)})
    const atImport = [...seen]
    const steps = []
    const step = () => steps.push([...seen])
    ${then}
    console.log(JSON.stringify({ atImport, steps, after: [...seen] }))
  `
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ...env },
  })
  return JSON.parse(stdout)
}

describe('ucanto loads on first use (issue 15)', () => {
  it('importing the authority loads no ucanto; the first capability parser loads it', async () => {
    const { atImport, after } = await loadedPackages(`
      const parser = authority.CAPABILITIES['room/post'].parser
      if (typeof parser.match !== 'function') throw new Error('not a parser')
      if (authority.parserOf('room/post') !== parser) throw new Error('not the same parser')
    `)
    assert.deepEqual(atImport, [])
    assert.ok(after.includes('@ucanto/validator') && after.includes('@ucanto/core'), after.join(' '))
  })

  it('a token decoded on the lean path needs no ucanto; its ucanto view loads it', async () => {
    const key = Ed25519KeyPair.generate()
    const token = await encodeToken(
      await issueDelegation({
        issuer: key,
        audience: key.did,
        expiration: Math.floor(Date.now() / 1000) + 60,
        capabilities: [{ can: 'room/read', with: key.did }],
      }),
    )
    const { atImport, steps, after } = await loadedPackages(
      `
      const decoded = authority.decodeToken(process.env.TOKEN)
      if (decoded.error) throw new Error(decoded.error.message)
      step()
      if (authority.viewOf(decoded.ok).capabilities[0].can !== 'room/read') throw new Error('wrong view')
    `,
      { TOKEN: token },
    )
    assert.deepEqual(atImport, [])
    assert.deepEqual(steps, [[]])
    assert.ok(after.includes('@ucanto/core'), after.join(' '))
  })

  it('a package that cannot load is MESH_INTERNAL', () => {
    assert.throws(
      () => loadModuleSync('@ucanto/no-such-package'),
      (err: unknown) => err instanceof MeshError && err.code === 'MESH_INTERNAL',
    )
  })

  it('the written-out dag-cbor framings and EdDSA code are what ucanto computes', () => {
    const { SAMPLE_CID, HEADER_PREFIX, HEADER_SUFFIX, VARIANT_PREFIX } = CID_FRAMINGS
    const frame = Uint8Array.of(0xd8, 0x2a, 0x58, 0x25, 0x00, ...SAMPLE_CID)
    const header = CBOR.encode({ version: 1, roots: [decodeLink(SAMPLE_CID)] })
    assert.deepEqual(header, Uint8Array.from([...HEADER_PREFIX, ...SAMPLE_CID, ...HEADER_SUFFIX]))
    const variant = CBOR.encode({ 'ucan@0.9.1': decodeLink(SAMPLE_CID) })
    assert.deepEqual(variant, Uint8Array.from([...VARIANT_PREFIX, ...SAMPLE_CID]))
    assert.ok(Buffer.from(header).includes(frame))
    assert.equal(EDDSA_SIGNATURE_CODE, Signature.EdDSA)
  })
})
