import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../common/constants.js';
import { admissionReview, shippedConfig, typicalPod } from '../test/fixtures/pods.js';
import type { InjectorConfig } from './config.js';
import { createLogger } from './logging.js';
import { createMetrics } from './metrics.js';
import { buildServer, type InjectorServer } from './server.js';

let app: InjectorServer | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(config: InjectorConfig | undefined = undefined, notReady?: string) {
  const metrics = createMetrics();
  const loaded = config ?? (await shippedConfig());
  app = buildServer({
    logger: pino({ level: 'silent' }),
    metrics,
    state: {
      config: () => (notReady ? undefined : loaded),
      notReadyReason: () => notReady,
      nativeSidecars: () => false,
    },
  });
  return { app, metrics };
}

function post(server: InjectorServer, body: unknown, contentType = 'application/json', url = '/inject') {
  return server.inject({
    method: 'POST',
    url,
    headers: { 'content-type': contentType },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function metricValue(metrics: ReturnType<typeof createMetrics>, name: string): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

describe('POST /inject', () => {
  it('answers a pod CREATE with a base64 JSONPatch and the request uid, in v1', async () => {
    const { app } = await start();
    const response = await post(app, admissionReview(typicalPod()));
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true, patchType: 'JSONPatch' },
    });
    const patch = JSON.parse(Buffer.from(body.response.patch, 'base64').toString());
    expect(patch.some((op: { path: string }) => op.path.startsWith('/spec/initContainers'))).toBe(true);
  });

  it('answers v1beta1 in v1beta1', async () => {
    const { app } = await start();
    const response = await post(app, admissionReview(typicalPod(), {}, 'admission.k8s.io/v1beta1'));
    expect(response.json().apiVersion).toBe('admission.k8s.io/v1beta1');
  });

  it("also serves Istio's /inject/... path-parameter form", async () => {
    const { app } = await start();
    const response = await post(
      app,
      admissionReview(typicalPod()),
      'application/json',
      '/inject/cluster/Kubernetes/net/n1',
    );
    expect(response.json().response.allowed).toBe(true);
  });

  it('admits a skipped pod without a patch and counts the skip', async () => {
    const { app, metrics } = await start();
    const response = await post(
      app,
      admissionReview(typicalPod({ annotations: { 'sidecar.istio.io/inject': 'false' } })),
    );
    expect(response.json().response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
    expect(await metricValue(metrics, 'sidecar_injection_skip_total')).toBe(1);
    expect(await metricValue(metrics, 'sidecar_injection_success_total')).toBe(1);
  });

  it('denies an invalid annotation with a message naming it', async () => {
    const { app, metrics } = await start();
    const pod = typicalPod({ annotations: { 'traffic.sidecar.istio.io/excludeInboundPorts': '*' } });
    const response = await post(app, admissionReview(pod));
    expect(response.statusCode).toBe(200);
    expect(response.json().response).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(response.json().response.status.message).toContain('traffic.sidecar.istio.io/excludeInboundPorts');
    expect(response.json().response.patch).toBeUndefined();
    expect(await metricValue(metrics, 'sidecar_injection_failure_total')).toBe(1);
  });

  it('admits what is not a pod CREATE unchanged', async () => {
    const { app } = await start();
    const response = await post(app, admissionReview(typicalPod(), { operation: 'DELETE' }));
    expect(response.json().response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
  });

  it.each([
    ['invalid JSON', '{"apiVersion":'],
    ['an empty body', ''],
    ['a JSON array', '[]'],
    ['the wrong kind', { apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }],
    ['an unknown apiVersion', { apiVersion: 'admission.k8s.io/v2', kind: 'AdmissionReview', request: {} }],
    [
      'no request uid',
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { operation: 'CREATE' } },
    ],
  ])('answers %s with 400 and a reason', async (_what, body) => {
    const { app, metrics } = await start();
    const response = await post(app, body);
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toMatch(/\w+/);
    expect(await metricValue(metrics, 'sidecar_injection_failure_total')).toBe(1);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/yaml'])(
    'answers Content-Type %s with 415',
    async (contentType) => {
      const { app } = await start();
      const response = await post(app, admissionReview(typicalPod()), contentType);
      expect(response.statusCode).toBe(415);
      expect(response.json().message).toContain('Content-Type');
    },
  );

  it('accepts bodies up to 7 MiB and answers larger ones with 413', async () => {
    const { app } = await start();
    const review = admissionReview(typicalPod({ annotations: { filler: '' } }));
    const size = (filler: number) => {
      (
        review.request.object as { metadata: { annotations: Record<string, string> } }
      ).metadata.annotations.filler = 'x'.repeat(filler);
      return JSON.stringify(review);
    };
    const base = size(0).length;
    expect((await post(app, size(BODY_LIMIT_BYTES - base))).statusCode).toBe(200);
    const tooLarge = await post(app, size(BODY_LIMIT_BYTES - base + 1));
    expect(tooLarge.statusCode).toBe(413);
    expect(tooLarge.json().message).toMatch(/too large/i);
  });

  it('denies with the reason when no configuration has loaded', async () => {
    const { app } = await start(undefined, 'no valid configuration: template.yaml is not valid YAML');
    const response = await post(app, admissionReview(typicalPod()));
    expect(response.json().response.allowed).toBe(false);
    expect(response.json().response.status.message).toContain('template.yaml is not valid YAML');
  });
});

describe('health, readiness and metrics', () => {
  it('is healthy and ready with a configuration', async () => {
    const { app } = await start();
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    expect((await app.inject('/readyz')).json()).toEqual({ status: 'ready' });
  });

  it('fails readiness with the reason', async () => {
    const { app } = await start(undefined, 'shutting down');
    const response = await app.inject('/readyz');
    expect(response.statusCode).toBe(503);
    expect(response.json().reason).toBe('shutting down');
  });

  it("exports Istio's metric names, the latency histogram and Node's process metrics", async () => {
    const { app } = await start();
    await post(app, admissionReview(typicalPod()));
    const text = (await app.inject('/metrics')).body;
    for (const name of [
      'sidecar_injection_requests_total 1',
      'sidecar_injection_success_total 1',
      'sidecar_injection_failure_total',
      'sidecar_injection_skip_total',
      'sidecar_injection_time_seconds_bucket',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(name);
    }
  });

  it('times every /inject request from arrival to answer, a malformed one too, and nothing else', async () => {
    const { app, metrics } = await start();
    const count = () =>
      metrics.duration.get().then((m) => m.values.find((v) => v.metricName?.endsWith('_count'))?.value);
    await post(app, admissionReview(typicalPod()));
    await post(app, '{"kind":"AdmissionReview"}');
    await app.inject('/healthz');
    expect(await count()).toBe(2);
    const sum = (await metrics.duration.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
    expect(sum).toBeGreaterThan(0);
  });
});

describe('the review log', () => {
  async function startLogging() {
    const lines: Record<string, unknown>[] = [];
    const loaded = await shippedConfig();
    app = buildServer({
      logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) }),
      metrics: createMetrics(),
      state: { config: () => loaded, notReadyReason: () => undefined, nativeSidecars: () => false },
    });
    return { app, lines };
  }

  it('logs an injection at info, with the level as a name and the time in ISO 8601', async () => {
    const { app, lines } = await startLogging();
    await post(app, admissionReview(typicalPod()));
    expect(lines.filter((line) => line.msg === 'sidecar injected')).toEqual([
      expect.objectContaining({
        level: 'info',
        namespace: 'shop',
        pod: 'web',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/),
      }),
    ]);
  });
});
