/**
 * The load generator, run as its own process so that its CPU use is not counted against the server's event loop:
 * autocannon over HTTPS keep-alive HTTP/1.1, a warm-up run, then the measured run. Every response's latency is
 * kept at full resolution (autocannon's own histogram rounds to whole milliseconds).
 *
 * Usage: node dist/bench/load-worker.js '<LoadSpec as JSON>'; prints one line of LoadResult JSON.
 */
import autocannon from 'autocannon';
import { INJECT_PATH } from '../common/constants.js';
import { admissionReviewBody, type PodKind } from './pods.js';
import { percentile } from './stats.js';

export interface LoadSpec {
  /** e.g. https://127.0.0.1:40123 */
  origin: string;
  pod: PodKind;
  connections: number;
  warmupSeconds: number;
  /** Measured run length; ignored when `amount` is set. */
  durationSeconds: number;
  /** Send exactly this many requests instead of running for a duration. */
  amount?: number;
}

export interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** 2xx responses per second of the measured run. */
  requestsPerSecond: number;
  seconds: number;
  latencyMs: { p50: number; p99: number; mean: number; max: number };
  /** Requests sent during the warm-up, which the server also handled. */
  warmupRequests: number;
}

async function run(spec: LoadSpec, record: boolean) {
  const body = admissionReviewBody(spec.pod);
  const latencies: number[] = [];
  const instance = autocannon({
    url: `${spec.origin}${INJECT_PATH}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: spec.connections,
    pipelining: 1,
    ...(record && spec.amount !== undefined
      ? { amount: spec.amount }
      : { duration: record ? spec.durationSeconds : spec.warmupSeconds }),
  });
  if (record) {
    (instance as unknown as autocannon.Instance).on('response', (_client, statusCode, _bytes, ms) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(ms);
    });
  }
  return { result: await instance, latencies };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  const warmup = spec.warmupSeconds > 0 ? (await run(spec, false)).result : undefined;
  const { result, latencies } = await run(spec, true);
  const sum = latencies.reduce((total, ms) => total + ms, 0);
  const output: LoadResult = {
    requests: result.requests.total,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    requestsPerSecond: result['2xx'] / result.duration,
    seconds: result.duration,
    latencyMs: {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      mean: latencies.length > 0 ? sum / latencies.length : Number.NaN,
      max: latencies.length > 0 ? latencies.reduce((most, ms) => Math.max(most, ms), 0) : Number.NaN,
    },
    warmupRequests: warmup?.requests.total ?? 0,
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

await main();
