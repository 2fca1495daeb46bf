import { describe, expect, it } from 'vitest';
import type { LoadResult } from './load-worker.js';
import { medianRound, type Measured } from './webhook-throughput.js';

function run(requestsPerSecond: number, p99: number, cpuMicrosPerRequest: number): Measured {
  const load: LoadResult = {
    requests: 1000,
    ok: 999,
    non2xx: 1,
    errors: 0,
    timeouts: 0,
    requestsPerSecond,
    seconds: 3,
    latencyMs: { p50: p99 / 4, p99, mean: p99 / 3, max: p99 * 2 },
    warmupRequests: 100,
  };
  return { load, cpuMicrosPerRequest };
}

describe('the rounds of one server in one load cell', () => {
  it('report each figure as its median over the rounds, so that one disturbed run does not decide a ratio', () => {
    const measured = medianRound([run(9000, 4, 120), run(3000, 40, 300), run(8000, 5, 130)]);
    expect(measured.load.requestsPerSecond).toBe(8000);
    expect(measured.load.latencyMs).toEqual({ p50: 1.25, p99: 5, mean: 5 / 3, max: 10 });
    expect(measured.cpuMicrosPerRequest).toBe(130);
  });

  it('count every request, response and failure of every round', () => {
    const measured = medianRound([run(1, 1, 1), run(2, 2, 2)]);
    expect(measured.load).toMatchObject({
      requests: 2000,
      ok: 1998,
      non2xx: 2,
      warmupRequests: 200,
      seconds: 6,
    });
  });
});
