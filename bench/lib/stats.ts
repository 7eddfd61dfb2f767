/* Summary statistics over timing samples (milliseconds). Pure, so it is unit-tested. */

/** What a table row shows for one (step, subject). */
export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly p95: number;
  readonly min: number;
}

/**
 * The q-quantile (0..1) by the nearest-rank method on sorted samples: no interpolation, so a
 * reported p95 is a time that was actually measured.
 */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** The median: the mean of the two middle samples for an even count. */
export function median(sorted: readonly number[]): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median, p95 and minimum of samples in any order. */
export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, median: median(sorted), p95: quantile(sorted, 0.95), min: sorted[0] ?? Number.NaN };
}

/** Subjects in a different order each round (rotation), so none is always first after a pause. */
export function rotation<T>(items: readonly T[], round: number): T[] {
  const k = items.length === 0 ? 0 : round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
