/**
 * The rows a peer mesh is party to (SPEC §11: "its connection's transitions, its shares,
 * refusals of its messages"): those naming one of its dids (its identity or any key it
 * held) as `actor`, `subject`, `details.peer` or `details.mesh` — the fields every
 * federation row fills. Found by a bounded scan from a cursor, so one request costs at
 * most `maxScan` rows read whatever the log's size.
 */
import type { Sublevel } from '../store/index.ts'
import { type AuditRow, isRowShaped } from './audit-row.ts'
import { entryKey } from './log-keys.ts'

export const PARTY_LIMITS = {
  /** Rows returned at most per request. */
  maxRows: 16,
  /** Rows read at most per request. */
  maxScan: 4096,
} as const

export function isPartyTo(row: AuditRow, dids: ReadonlySet<string>): boolean {
  const details = row.details as { peer?: unknown; mesh?: unknown }
  return (
    (row.actor !== null && dids.has(row.actor)) ||
    (row.subject !== null && dids.has(row.subject)) ||
    (typeof details.peer === 'string' && dids.has(details.peer)) ||
    (typeof details.mesh === 'string' && dids.has(details.mesh))
  )
}

/**
 * The seqs after `after`, up to `upTo`, of rows `dids` are party to: at most `limit`,
 * reading at most `maxScan` rows. `next` is the cursor to go on from, or null when the
 * scan reached `upTo`.
 */
export async function partySeqs(
  sublevel: Sublevel,
  dids: ReadonlySet<string>,
  query: { after: number; upTo: number; limit: number; maxScan?: number },
): Promise<{ seqs: number[]; next: number | null }> {
  const seqs: number[] = []
  const maxScan = query.maxScan ?? PARTY_LIMITS.maxScan
  let last = query.after
  let scanned = 0
  if (query.after >= query.upTo) return { seqs, next: null }
  for await (const [, value] of sublevel.iterator({
    gt: entryKey(query.after),
    lte: entryKey(query.upTo),
  })) {
    scanned++
    if (isRowShaped(value)) {
      last = value.seq
      if (isPartyTo(value, dids)) seqs.push(value.seq)
    }
    if (seqs.length >= query.limit || scanned >= maxScan) break
  }
  return { seqs, next: last >= query.upTo ? null : last }
}
