import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import canonicalize from 'canonicalize'
import { jcs } from '../../src/identity/jcs.ts'

// A deterministic generator (no flaky seeds): strings with quotes, controls, non-ASCII,
// emoji (surrogate pairs), numbers at JSON's edges, nested objects and arrays.
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const ALPHABET = [
  'a',
  'Z',
  '0',
  '"',
  '\\',
  '\n',
  '\u0001',
  '\u007f',
  'é',
  '€',
  '中',
  '😀',
  '\u2028',
  ' ',
  '/',
  '_',
]
const NUMBERS = [0, -0, 1, -1, 0.1, 0.1 + 0.2, 1e21, 1e-7, 123456789012345680000, 2 ** 53, -(2 ** 31), 5e-324]

function value(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 4 : 7))
  switch (pick) {
    case 0:
      return Array.from(
        { length: Math.floor(r() * 8) },
        () => ALPHABET[Math.floor(r() * ALPHABET.length)],
      ).join('')
    case 1:
      return NUMBERS[Math.floor(r() * NUMBERS.length)]
    case 2:
      return r() < 0.5
    case 3:
      return null
    case 4:
      return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1))
    default: {
      const out: Record<string, unknown> = {}
      for (let i = Math.floor(r() * 5); i > 0; i--) out[value(r, 9) as string] = value(r, depth + 1)
      if (r() < 0.2) out.skipped = undefined
      return out
    }
  }
}

describe('JCS, written in one pass', () => {
  it('writes exactly what the canonicalize package writes, for 5,000 JSON values', () => {
    const r = rng(15)
    for (let i = 0; i < 5000; i++) {
      const v = value(r, 0)
      assert.equal(jcs(v), canonicalize(v), JSON.stringify(v))
    }
  })

  it('and for what is not plain JSON: undefined in arrays, holes, toJSON, functions, a Date', () => {
    const cases: unknown[] = [
      [1, undefined, 2],
      // biome-ignore lint/suspicious/noSparseArray: a hole, on purpose
      [1, , 3],
      { at: new Date(0), n: { toJSON: () => ({ b: 1, a: 2 }) } },
      { f: () => 1, s: Symbol('x'), u: undefined, k: 1 },
      [() => 1],
      { '\u00e9': 1, e: 2, E: 3, '😀': 4, '\uffff': 5 },
      undefined,
    ]
    for (const v of cases) assert.equal(jcs(v), canonicalize(v))
  })

  it('refuses what the package refuses: lone surrogates (values and names), NaN, Infinity, bigint, cycles', () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    const deep: unknown[] = []
    let at = deep
    for (let i = 0; i < 200; i++) {
      const next: unknown[] = []
      at.push(next)
      at = next
    }
    at.push(deep)
    for (const bad of ['a\ud800', '\udc00b', { '\ud800': 1 }, Number.NaN, -Infinity, [1n], cyclic, deep]) {
      assert.throws(() => canonicalize(bad))
      assert.throws(() => jcs(bad))
    }
    // A pair of surrogates is a character, not a lone one.
    assert.equal(jcs('😀'), '"😀"')
  })
})
