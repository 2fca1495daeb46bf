import { describe, expect, it } from 'vitest';
import { histogramDelta, histogramQuantile, readGauge, readHistograms } from './prometheus.js';

const METRIC = 'apiserver_admission_webhook_admission_duration_seconds';
const scrape = (bucketCounts: [string, number][], sum: number, name = 'a.example.io') =>
  [
    `# TYPE ${METRIC} histogram`,
    ...bucketCounts.map(
      ([le, count]) =>
        `${METRIC}_bucket{name="${name}",operation="CREATE",rejected="false",type="admit",le="${le}"} ${count}`,
    ),
    `${METRIC}_sum{name="${name}",operation="CREATE",rejected="false",type="admit"} ${sum}`,
    `${METRIC}_count{name="${name}",operation="CREATE",rejected="false",type="admit"} ${bucketCounts.at(-1)?.[1]}`,
    `${METRIC}_count{name="${name}",operation="CREATE",rejected="true",type="admit"} 99`,
  ].join('\n');

describe('readHistograms', () => {
  it('groups by a label and keeps only samples matching the filter', () => {
    const histograms = readHistograms(
      scrape(
        [
          ['0.005', 1],
          ['0.025', 3],
          ['+Inf', 4],
        ],
        0.1,
      ),
      METRIC,
      'name',
      {
        rejected: 'false',
      },
    );
    expect(histograms.get('a.example.io')).toEqual({
      sum: 0.1,
      count: 4,
      buckets: [
        { le: 0.005, count: 1 },
        { le: 0.025, count: 3 },
        { le: Number.POSITIVE_INFINITY, count: 4 },
      ],
    });
  });
});

describe('histogramQuantile, as Prometheus computes it', () => {
  const histogram = {
    sum: 0,
    count: 100,
    buckets: [
      { le: 0.005, count: 50 },
      { le: 0.025, count: 100 },
      { le: Number.POSITIVE_INFINITY, count: 100 },
    ],
  };

  it('interpolates linearly inside the bucket holding the rank', () => {
    expect(histogramQuantile(0.5, histogram)).toBeCloseTo(0.005);
    expect(histogramQuantile(0.75, histogram)).toBeCloseTo(0.015);
  });

  it('answers the highest finite bound when the rank falls in +Inf', () => {
    const overflowing = {
      ...histogram,
      buckets: [
        { le: 0.005, count: 10 },
        { le: Number.POSITIVE_INFINITY, count: 100 },
      ],
    };
    expect(histogramQuantile(0.99, overflowing)).toBe(0.005);
  });

  it('is NaN for an empty histogram', () => {
    expect(histogramQuantile(0.99, { sum: 0, count: 0, buckets: [] })).toBeNaN();
  });
});

describe('histogramDelta', () => {
  it('subtracts an earlier scrape bucket by bucket', () => {
    const before = readHistograms(
      scrape(
        [
          ['0.005', 1],
          ['+Inf', 2],
        ],
        0.01,
      ),
      METRIC,
      'name',
    ).get('a.example.io');
    const after = readHistograms(
      scrape(
        [
          ['0.005', 4],
          ['+Inf', 7],
        ],
        0.05,
      ),
      METRIC,
      'name',
    ).get('a.example.io')!;
    const delta = histogramDelta(after, before);
    expect(delta.count).toBe(5);
    expect(delta.sum).toBeCloseTo(0.04);
    expect(delta.buckets.map((b) => b.count)).toEqual([3, 5]);
  });
});

describe('readGauge', () => {
  it('reads an unlabelled sample and ignores labelled ones and comments', () => {
    const text =
      '# HELP nodejs_heap_size_used_bytes x\nnodejs_heap_size_used_bytes{space="new"} 1\nnodejs_heap_size_used_bytes 42\n';
    expect(readGauge(text, 'nodejs_heap_size_used_bytes')).toBe(42);
    expect(readGauge(text, 'absent')).toBeNaN();
  });
});
