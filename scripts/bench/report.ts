/**
 * SPEC §7 result lines (one JSON object a line on stdout) and the statistics behind
 * them. Progress and diagnostics go to stderr only, through `note`.
 */

export type Better = 'higher' | 'lower'

export interface BenchResult {
  name: string
  /** What this node measured; null when the benchmark could not measure it. */
  value: number | null
  unit: string
  /** The peer or physical limit, measured side by side in the same run. */
  baseline: number | null
  /** value / baseline. */
  ratio: number | null
  /** The ratio the issue aims for: `met` is ratio ≤ target (lower better) or ≥ target (higher better). */
  target: number
  better: Better
  met: boolean
}

/** A result a benchmark writes, so that a failed run still reports it (unmeasured). */
export interface ResultName {
  name: string
  unit: string
  better: Better
}

const emitted = new Set<string>()

/** Writes one result line; `value`/`baseline` null (not measured) make ratio null and met false. */
export function emit(
  name: string,
  value: number | null,
  unit: string,
  baseline: number | null,
  target: number,
  better: Better,
): BenchResult {
  const ratio =
    value === null || baseline === null || !Number.isFinite(value / baseline) ? null : round(value / baseline)
  const met = ratio !== null && (better === 'lower' ? ratio <= target : ratio >= target)
  const result: BenchResult = {
    name,
    value: value === null ? null : round(value),
    unit,
    baseline: baseline === null ? null : round(baseline),
    ratio,
    target,
    better,
    met,
  }
  return write(result)
}

/** Writes a result another module built (same shape as `emit` writes). */
export function write<T extends BenchResult>(result: T): T {
  emitted.add(result.name)
  process.stdout.write(`${JSON.stringify(result)}\n`)
  return result
}

/** Whether a result line with this name was written already. */
export function wasEmitted(name: string): boolean {
  return emitted.has(name)
}

export function note(message: string): void {
  process.stderr.write(`[bench] ${message}\n`)
}

/** Nearest-rank percentile of `values` (0 < p ≤ 100); NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1] as number
}

export function median(values: number[]): number {
  return percentile(values, 50)
}

/** Three significant decimals are plenty for milliseconds and ratios. */
export function round(value: number): number {
  return Math.round(value * 1000) / 1000
}

export function fmt(values: number[]): string {
  return values.map((v) => round(v)).join(', ')
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
