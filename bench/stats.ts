/** Order statistics over raw samples: the same definitions for every figure the bench prints. */

/** The p-th percentile (0..100) by linear interpolation between closest ranks; NaN for no samples. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low] ?? Number.NaN;
  const highValue = sorted[high] ?? Number.NaN;
  return lowValue + (highValue - lowValue) * (rank - low);
}

export function median(samples: ArrayLike<number>): number {
  return percentile(samples, 50);
}

/** a / b, or NaN when either is missing or b is 0, so a ratio is never invented. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN;
}

export function millisecondsSince(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}
