import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { INJECT_PATH } from '../common/constants.js';
import { createMetrics } from './metrics.js';
import { buildMonitoringServer, METRICS_PATH } from './monitoring-server.js';

const logger = pino({ level: 'silent' });
let app: ReturnType<typeof buildMonitoringServer> | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('the monitoring port', () => {
  it("serves the injector's metrics in Prometheus' text format, over plain HTTP", async () => {
    const metrics = createMetrics();
    metrics.requests.inc(3);
    app = buildMonitoringServer({ metrics, logger });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const response = await fetch(`http://127.0.0.1:${port}${METRICS_PATH}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await response.text()).toMatch(/^sidecar_injection_requests_total 3$/m);
  });

  it('takes no admission reviews and serves no probes', async () => {
    app = buildMonitoringServer({ metrics: createMetrics(), logger });
    for (const [method, url] of [
      ['POST', INJECT_PATH],
      ['GET', '/readyz'],
      ['GET', '/healthz'],
    ] as const) {
      const response = await app.inject({ method, url, payload: method === 'POST' ? {} : undefined });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
  });
});
