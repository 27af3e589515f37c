import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

// The console's audit details (browser code, run here on Node): readable, dids by name.
const ui = (path: string) => new URL(`../../src/ui/src/lib/${path}`, import.meta.url).href
const { readableDetails } = (await import(
  ui('audit-details.ts')
)) as typeof import('../../src/ui/src/lib/audit-details.ts')

describe('audit details as a person reads them (issue 14)', () => {
  const beta = 'did:key:z6MkeuaYxXaaq9FJToFMc48CBWwbcHHub8XW3p4jvLFNvSHw'
  const stranger = 'did:key:z6MkrsJe7Hch7ukUV55dctqgXvNryknbfZZEG9pALAdSMba3'
  it('names known dids, shortens others, and keeps the rest as key: value pairs', () => {
    const text = readableDetails(
      {
        peer: beta,
        by: stranger,
        status: 'accepted',
        version: 2,
        previous: { tier: 4, reasons: ['a', 'b'] },
      },
      { [beta]: 'beta' },
    )
    const short = `${stranger.slice(0, 14)}…${stranger.slice(-6)}`
    assert.equal(
      text,
      `peer: beta · by: ${short} · status: accepted · version: 2 · previous: {tier: 4, reasons: a, b}`,
    )
  })
  it('cuts a long string, and an empty detail is empty', () => {
    assert.match(readableDetails({ note: 'x'.repeat(200) }, {}), /^note: x{77}…$/)
    assert.equal(readableDetails({}, {}), '')
  })
})
