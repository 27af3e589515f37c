import canonicalize from 'canonicalize'

/**
 * RFC 8785 (JCS) text of a value: exactly what the `canonicalize` package writes (and
 * throws), in one pass without its bookkeeping (issue 15: every entry of a room update is
 * hashed in its canonical form, and the package's walk cost as much as the hash).
 * Strings and numbers are written by JSON.stringify as JCS says; members are ordered by
 * name (UTF-16 code units); a member whose value is undefined or a symbol is left out, an
 * array's is null. What is not plain JSON data (a `toJSON`, a bigint, a function …) and
 * nesting deeper than `MAX_DEPTH` (a cycle, say) go to the package.
 */
export function jcs(value: unknown): string | undefined {
  return walk(value, 0)
}

const MAX_DEPTH = 64
// In unicode mode a pair of surrogates is one code point: only a lone one is a Cs.
const LONE_SURROGATE = /\p{Cs}/u

function walk(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value)) throw new Error('Lone surrogate is not allowed')
      return JSON.stringify(value)
    case 'number':
      if (Number.isNaN(value)) throw new Error('NaN is not allowed')
      if (!Number.isFinite(value)) throw new Error('Infinity is not allowed')
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object':
      break
    default:
      return canonicalize(value)
  }
  if (value === null) return 'null'
  if (depth >= MAX_DEPTH || typeof (value as { toJSON?: unknown }).toJSON === 'function')
    return canonicalize(value)
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ','
      // A hole is skipped by the package's map, then joined as nothing.
      if (!(i in value)) continue
      const item: unknown = value[i]
      out += item === undefined || typeof item === 'symbol' ? 'null' : (walk(item, depth + 1) ?? '')
    }
    return `${out}]`
  }
  const object = value as Record<string, unknown>
  let out = '{'
  for (const key of Object.keys(object).sort()) {
    const item = object[key]
    if (item === undefined || typeof item === 'symbol') continue
    if (out.length > 1) out += ','
    out += `${walk(key, depth)}:${walk(item, depth + 1)}`
  }
  return `${out}}`
}
