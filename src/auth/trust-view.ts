import type { TrustRecord } from './authority/index.ts'

/** A trust record as the API shows it (`recentRefusals` as a count). */
export type TrustView = Omit<TrustRecord, 'recentRefusals'> & { recentRefusals: number; name?: string }

export function trustView(record: TrustRecord): TrustView {
  return { ...record, recentRefusals: record.recentRefusals.length }
}
