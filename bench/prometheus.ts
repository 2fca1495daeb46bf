/** Reading one histogram out of Prometheus text exposition, and Prometheus's own histogram_quantile on it. */

export interface Histogram {
  sum: number;
  count: number;
  /** Cumulative counts by upper bound, ascending; the last bound is +Inf. */
  buckets: { le: number; count: number }[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * The histogram `metric` per value of the label `groupBy`, over the samples whose labels match `where`; samples
 * differing in other labels are added together.
 */
export function readHistograms(
  text: string,
  metric: string,
  groupBy: string,
  where: Record<string, string> = {},
): Map<string, Histogram> {
  const histograms = new Map<string, Histogram>();
  for (const line of text.split('\n')) {
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const [, name = '', labelText = '', valueText = ''] = match;
    if (!name.startsWith(metric)) continue;
    const suffix = name.slice(metric.length);
    if (suffix !== '_sum' && suffix !== '_count' && suffix !== '_bucket') continue;
    const labels = Object.fromEntries([...labelText.matchAll(LABEL)].map((m) => [m[1] ?? '', m[2] ?? '']));
    if (Object.entries(where).some(([key, value]) => labels[key] !== value)) continue;
    const group = labels[groupBy] ?? '';
    const histogram = histograms.get(group) ?? { sum: 0, count: 0, buckets: [] };
    histograms.set(group, histogram);
    const value = Number(valueText);
    if (suffix === '_sum') histogram.sum += value;
    else if (suffix === '_count') histogram.count += value;
    else {
      const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
      const bucket = histogram.buckets.find((b) => b.le === le);
      if (bucket) bucket.count += value;
      else histogram.buckets.push({ le, count: value });
    }
  }
  for (const histogram of histograms.values()) histogram.buckets.sort((a, b) => a.le - b.le);
  return histograms;
}

/** after − before, bucket by bucket: what happened between two scrapes. */
export function histogramDelta(after: Histogram, before: Histogram | undefined): Histogram {
  if (!before) return after;
  return {
    sum: after.sum - before.sum,
    count: after.count - before.count,
    buckets: after.buckets.map((bucket) => ({
      le: bucket.le,
      count: bucket.count - (before.buckets.find((b) => b.le === bucket.le)?.count ?? 0),
    })),
  };
}

/** Prometheus's histogram_quantile: linear interpolation inside the bucket holding the q-th observation. */
export function histogramQuantile(q: number, histogram: Histogram): number {
  const total = histogram.buckets.at(-1)?.count ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let previousLe = 0;
  let previousCount = 0;
  for (const bucket of histogram.buckets) {
    if (bucket.count >= rank) {
      // Past the highest finite bound there is nothing to interpolate to.
      if (bucket.le === Number.POSITIVE_INFINITY) return previousLe;
      const inBucket = bucket.count - previousCount;
      return previousLe + (bucket.le - previousLe) * (inBucket === 0 ? 0 : (rank - previousCount) / inBucket);
    }
    previousLe = bucket.le;
    previousCount = bucket.count;
  }
  return previousLe;
}

/** The value of an unlabelled gauge or counter, or NaN when the text has none. */
export function readGauge(text: string, metric: string): number {
  for (const line of text.split('\n')) {
    const match = SAMPLE.exec(line);
    if (match?.[1] === metric && !match[2]) return Number(match[3]);
  }
  return Number.NaN;
}
