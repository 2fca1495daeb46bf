/**
 * Sustained load on one real webhook process: 50 000 admission reviews at 64 concurrent keep-alive connections,
 * as a busy apiserver would send. Every answer must be the correct injection, memory must not grow once warm
 * (RSS read after a full garbage collection forced through the process's inspector, as `npm run bench` reads it),
 * and the process's event-loop delay must be visible in /metrics. Throughput is measured by `npm run bench`, not
 * asserted here.
 */
import autocannon from 'autocannon';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admissionReview, typicalPod } from './fixtures/pods.js';
import { residentSetBytes } from './harness/admission-load.js';
import { startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';

const CONCURRENCY = 64;
// Long enough that the JIT, the TLS session caches and the heap have settled before the first reading.
const WARM_UP_REQUESTS = 30_000;
const MEASURED_REQUESTS = 50_000;
const MAX_RSS_GROWTH = 0.1;

function get(webhook: WebhookProcess, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${webhook.url}${path}`, { ca: webhook.ca.cert, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

function post(webhook: WebhookProcess, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${webhook.url}/inject`,
      { method: 'POST', ca: webhook.ca.cert, agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** A sample's value from Prometheus text format, or undefined when the series is absent. */
function sample(metrics: string, series: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Sends `amount` reviews over CONCURRENCY keep-alive connections, counting answers as they come. */
function blast(
  webhook: WebhookProcess,
  body: string,
  expectBody: string,
  amount: number,
  onResponse: () => void,
): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${webhook.url}/inject`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        // Every answer is compared byte for byte with the known-good one: injection is deterministic.
        expectBody,
        connections: CONCURRENCY,
        amount,
        timeout: 30,
        servername: 'localhost',
      },
      (error, result) => (error ? reject(error as Error) : resolve(result)),
    );
    instance.on('response', onResponse);
  });
}

/** A full garbage collection in another process, through its inspector (HeapProfiler.collectGarbage). */
async function collectGarbage(inspectorUrl: string): Promise<void> {
  const socket = new WebSocket(inspectorUrl);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () =>
        socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })),
      );
      socket.addEventListener('message', (event: MessageEvent) => {
        const message = JSON.parse(String(event.data)) as { id?: number; error?: { message: string } };
        if (message.id !== 1) return;
        if (message.error) reject(new Error(`HeapProfiler.collectGarbage: ${message.error.message}`));
        else resolve();
      });
      socket.addEventListener('error', () =>
        reject(new Error(`cannot reach the inspector at ${inspectorUrl}`)),
      );
    });
  } finally {
    socket.close();
  }
}

describe('the webhook process under sustained load', () => {
  let webhook: WebhookProcess;
  let inspectorUrl: string;
  beforeAll(async () => {
    // A heap limit, as a container's memory limit gives one, well above the live heap. The inspector (loopback, a
    // free port) lets the test force a full collection before each memory reading.
    webhook = await startWebhookProcess({ nodeFlags: ['--max-old-space-size=128', '--inspect=127.0.0.1:0'] });
    const url = /Debugger listening on (ws:\/\/\S+)/.exec(webhook.logs().join('\n'))?.[1];
    if (!url) throw new Error(`the webhook printed no inspector URL:\n${webhook.logs().join('\n')}`);
    inspectorUrl = url;
  });
  afterAll(() => webhook?.stop());

  /**
   * RSS after a full garbage collection: what is live, not where the collector happens to be in its cycle (the
   * peaks of a warm process swing by tens of MiB with the heap V8 chooses to keep).
   */
  const liveRss = async () => {
    await collectGarbage(inspectorUrl);
    return residentSetBytes(webhook.pid);
  };

  it(`answers ${MEASURED_REQUESTS} reviews at concurrency ${CONCURRENCY} correctly, with RSS growth ≤ 10%`, async () => {
    const body = JSON.stringify(admissionReview(typicalPod()));
    const reference = await post(webhook, body);
    expect(reference.status).toBe(200);
    expect(JSON.parse(reference.body).response.patchType).toBe('JSONPatch');

    let completed = 0;
    const count = () => completed++;
    const warmed = await blast(webhook, body, reference.body, WARM_UP_REQUESTS, count);
    expect(warmed.errors + warmed.mismatches + warmed.non2xx).toBe(0);
    const rssBefore = await liveRss();

    const run = await blast(webhook, body, reference.body, MEASURED_REQUESTS, count);
    const rssAfter = await liveRss();
    console.info(
      `load: ${run.requests.total} requests, ${Math.round(run.requests.average)} req/s, ` +
        `p99 ${run.latency.p99} ms; RSS after a full collection ${(rssBefore / 2 ** 20).toFixed(1)} MiB warm, ` +
        `${(rssAfter / 2 ** 20).toFixed(1)} MiB after ${completed} requests`,
    );
    expect({
      errors: run.errors,
      timeouts: run.timeouts,
      mismatches: run.mismatches,
      non2xx: run.non2xx,
    }).toEqual({ errors: 0, timeouts: 0, mismatches: 0, non2xx: 0 });
    expect(run['2xx']).toBe(MEASURED_REQUESTS);
    expect(rssAfter).toBeLessThanOrEqual(rssBefore * (1 + MAX_RSS_GROWTH));

    const metrics = await get(webhook, '/metrics');
    expect(metrics.status).toBe(200);
    // Every review counted and timed by the process itself.
    expect(sample(metrics.body, 'sidecar_injection_requests_total')).toBe(
      1 + WARM_UP_REQUESTS + MEASURED_REQUESTS,
    );
    expect(sample(metrics.body, 'sidecar_injection_time_seconds_count')).toBe(
      1 + WARM_UP_REQUESTS + MEASURED_REQUESTS,
    );
    // Event-loop delay, sampled by prom-client's monitorEventLoopDelay histogram since the last scrape.
    for (const series of [
      'nodejs_eventloop_lag_seconds',
      'nodejs_eventloop_lag_mean_seconds',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_eventloop_lag_max_seconds',
    ]) {
      expect(metrics.body).toContain(`# TYPE ${series} gauge`);
    }
    expect(sample(metrics.body, 'nodejs_eventloop_lag_max_seconds')).toBeGreaterThan(0);
    expect(sample(metrics.body, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0);
    expect((await webhook.settledLogs()).filter((line) => /"level":"(error|fatal)"/.test(line))).toEqual([]);
  }, 180_000);
});
