/**
 * An audit row's details as a person reads them: `key: value` pairs, dids by name (or
 * shortened), nested values compact. The whole JSON is on hover.
 */
export function readableDetails(details: Record<string, unknown>, names: Record<string, string>): string {
  const value = (v: unknown): string => {
    if (typeof v === 'string') {
      if (v.startsWith('did:')) return names[v] ?? (v.length > 24 ? `${v.slice(0, 14)}…${v.slice(-6)}` : v)
      return v.length > 80 ? `${v.slice(0, 77)}…` : v
    }
    if (v === null || typeof v !== 'object') return String(v)
    if (Array.isArray(v)) return v.map(value).join(', ')
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}: ${value(x)}`)
      .join(', ')}}`
  }
  return Object.entries(details)
    .map(([k, v]) => `${k}: ${value(v)}`)
    .join(' · ')
}
