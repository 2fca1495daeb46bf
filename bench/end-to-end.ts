/**
 * Section 5: pod creation through a real kube-apiserver (v1.20.2, etcd, no kubelet), in a namespace labelled
 * istio-injection=enabled (the webhook is called) against an unlabelled one (no webhook matches), interleaved so
 * that contention hits both alike; plus the apiserver's own view of the webhook call from its /metrics.
 */
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CONTAINER_NAMES } from '../common/constants.js';
import {
  controlPlaneRequirements,
  startControlPlane,
  type ControlPlane,
} from '../test/harness/control-plane.js';
import { localWebhookConfiguration, toYamlDocument } from '../test/harness/webhook-configuration.js';
import { startWebhookProcess, type WebhookProcess } from '../test/harness/webhook-process.js';
import { getText } from './https-client.js';
import { histogramDelta, histogramQuantile, readHistograms, type Histogram } from './prometheus.js';
import { typicalPod } from './pods.js';
import { latestObservation } from './server-observation.js';
import { formatNumber, formatRatio, type Report } from './report.js';
import { millisecondsSince, percentile, ratio } from './stats.js';

const SECTION = '5. End to end on a real kube-apiserver';
const INJECTED_NAMESPACE = 'bench-injected';
const PLAIN_NAMESPACE = 'bench-plain';
const WARMUP_CREATES = 20;
const WEBHOOK_METRIC = 'apiserver_admission_webhook_admission_duration_seconds';
/** The webhook's own time per request, arrival to answer sent, as its /metrics report it (Istio's name and meaning). */
const INJECTION_METRIC = 'sidecar_injection_time_seconds';
const OBSERVER_LINES_MS = 500;
const SERVER_OBSERVER = fileURLToPath(new URL('./server-observer.js', import.meta.url));
/** Targets (issue 12). */
const MAX_LABELLED_VS_UNLABELLED_P50 = 1.2;
const MAX_APISERVER_VS_WEBHOOK_MEAN = 3;

export async function benchEndToEnd(report: Report, creates: number): Promise<void> {
  report.section(SECTION);
  const missing = Object.entries(controlPlaneRequirements())
    .filter(([, ok]) => !ok)
    .map(([what]) => what);
  if (missing.length > 0) {
    report.skip(SECTION, `control plane unavailable, missing ${missing.join(', ')}`);
    return;
  }

  let controlPlane: ControlPlane | undefined;
  let webhook: WebhookProcess | undefined;
  try {
    try {
      controlPlane = await startControlPlane();
    } catch (error) {
      report.skip(SECTION, `control plane unavailable: ${(error as Error).message.split('\n')[0]}`);
      return;
    }
    webhook = await startWebhookProcess({
      kubeconfigPath: controlPlane.kubeconfigPath,
      nodeFlags: [`--import=${pathToFileURL(SERVER_OBSERVER).href}`],
    });
    const core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
    await kubectlOk(
      controlPlane,
      ['apply', '-f', '-'],
      toYamlDocument(localWebhookConfiguration({ url: webhook.url, caPem: webhook.ca.cert })),
    );
    await core.createNamespace({
      body: { metadata: { name: INJECTED_NAMESPACE, labels: { 'istio-injection': 'enabled' } } },
    });
    await core.createNamespace({ body: { metadata: { name: PLAIN_NAMESPACE } } });
    await untilWebhookActive(core);

    const creator = new PodCreator(core);
    for (let i = 0; i < WARMUP_CREATES; i++) {
      await creator.create(INJECTED_NAMESPACE);
      await creator.create(PLAIN_NAMESPACE);
    }
    const before = await webhookHistograms(controlPlane);
    const ownBefore = await injectionHistogram(webhook);
    // The observer's lines arrive through a pipe: a moment for the last ones, so the scrape is not counted.
    await sleep(OBSERVER_LINES_MS);
    const observedBefore = latestObservation(webhook.logs());
    const timings = { injected: [] as number[], plain: [] as number[] };
    for (let i = 0; i < creates; i++) {
      timings.injected.push(await creator.create(INJECTED_NAMESPACE));
      timings.plain.push(await creator.create(PLAIN_NAMESPACE));
    }
    const after = await webhookHistograms(controlPlane);
    await sleep(OBSERVER_LINES_MS);
    const observedAfter = latestObservation(webhook.logs());
    const ownAfter = await injectionHistogram(webhook);
    const newConnections = observedAfter.connections - observedBefore.connections;
    const serverRequests = observedAfter.requests - observedBefore.requests;
    const serverMeanMs =
      ((observedAfter.requestSeconds - observedBefore.requestSeconds) / serverRequests) * 1000;
    if (creator.wrong.length > 0) {
      throw new Error(`pods were stored with the wrong containers: ${creator.wrong.slice(0, 5).join('; ')}`);
    }

    const describe = (samples: number[]) => ({
      p50: percentile(samples, 50),
      p99: percentile(samples, 99),
      mean: samples.reduce((total, ms) => total + ms, 0) / samples.length,
    });
    const summary = { injected: describe(timings.injected), plain: describe(timings.plain) };
    report.figure(SECTION, 'pod create, labelled namespace: p50', summary.injected.p50, 'ms');
    report.figure(SECTION, 'pod create, labelled namespace: p99', summary.injected.p99, 'ms');
    report.figure(SECTION, 'pod create, unlabelled namespace: p50', summary.plain.p50, 'ms');
    report.figure(SECTION, 'pod create, unlabelled namespace: p99', summary.plain.p99, 'ms');
    report.figure(SECTION, 'labelled/unlabelled p50', ratio(summary.injected.p50, summary.plain.p50), '×');
    report.figure(SECTION, 'labelled/unlabelled p99', ratio(summary.injected.p99, summary.plain.p99), '×');

    const calls = [...after].map(([name, histogram]) => ({
      name,
      delta: histogramDelta(histogram, before.get(name)),
    }));
    const called = calls.filter((call) => call.delta.count > 0);
    const webhookRows = called.map(({ name, delta }) => {
      const meanMs = (delta.sum / delta.count) * 1000;
      const p99Ms = histogramQuantile(0.99, delta) * 1000;
      report.figure(SECTION, `apiserver's ${name}: calls`, delta.count, 'calls');
      report.figure(SECTION, `apiserver's ${name}: mean (sum/count)`, meanMs, 'ms');
      report.figure(SECTION, `apiserver's ${name}: p99 (from buckets)`, p99Ms, 'ms');
      return { name, calls: delta.count, meanMs, p99Ms, buckets: delta.buckets };
    });
    if (called.length === 0) report.note(`WARNING: ${WEBHOOK_METRIC} recorded no webhook call`);

    const p50Ratio = ratio(summary.injected.p50, summary.plain.p50);
    report.target(
      {
        section: SECTION,
        figure: 'pod create p50, labelled/unlabelled',
        value: p50Ratio,
        unit: '×',
        target: `≤${MAX_LABELLED_VS_UNLABELLED_P50}× unlabelled`,
      },
      p50Ratio <= MAX_LABELLED_VS_UNLABELLED_P50,
    );
    const own = histogramDelta(ownAfter, ownBefore);
    const ownMeanMs = own.count > 0 ? (own.sum / own.count) * 1000 : Number.NaN;
    report.figure(SECTION, `webhook's own ${INJECTION_METRIC}: requests`, own.count, 'requests');
    report.figure(SECTION, `webhook's own ${INJECTION_METRIC}: mean`, ownMeanMs, 'ms');
    const apiserverMeanMs =
      webhookRows.reduce((total, row) => total + row.meanMs * row.calls, 0) /
      webhookRows.reduce((total, row) => total + row.calls, 0);
    const meanRatio = ratio(apiserverMeanMs, ownMeanMs);
    report.target(
      {
        section: SECTION,
        figure: `apiserver's webhook call mean / webhook's own mean (${formatNumber(apiserverMeanMs)} / ${formatNumber(ownMeanMs)} ms)`,
        value: meanRatio,
        unit: '×',
        target: `≤${MAX_APISERVER_VS_WEBHOOK_MEAN}× the webhook's own`,
      },
      meanRatio <= MAX_APISERVER_VS_WEBHOOK_MEAN,
    );
    const callCount = webhookRows.reduce((total, row) => total + row.calls, 0);
    report.figure(
      SECTION,
      'new connections the webhook accepted during the measured creates',
      newConnections,
      'connections',
    );
    report.figure(SECTION, 'webhook calls per new connection', ratio(callCount, newConnections), 'calls');
    report.figure(
      SECTION,
      `webhook's whole request time (headers parsed to response sent), over ${serverRequests} requests: mean`,
      serverMeanMs,
      'ms',
    );
    report.figure(
      SECTION,
      "apiserver's call mean minus the webhook's whole request time: the apiserver's and the transport's share",
      apiserverMeanMs - serverMeanMs,
      'ms',
    );
    report.details.endToEnd = {
      creates,
      apiserver: controlPlane.version,
      timings: summary,
      webhook: webhookRows,
      webhookOwn: { reviews: own.count, meanMs: ownMeanMs },
      newConnections,
      webhookServer: { requests: serverRequests, meanMs: serverMeanMs },
    };

    const bounds = (called[0]?.delta.buckets ?? [])
      .map((b) => b.le)
      .filter(Number.isFinite)
      .map((le) => `${le * 1000}`)
      .join(', ');
    report.table({
      title: `End to end: pod creation through kube-apiserver ${controlPlane.version} (${creates} creates each)`,
      header: ['Measure', 'p50 ms', 'p99 ms', 'mean ms'],
      rows: [
        ['create, labelled `istio-injection=enabled`', ...msColumns(summary.injected)],
        ['create, unlabelled (no webhook called)', ...msColumns(summary.plain)],
        [
          'labelled / unlabelled',
          formatRatio(ratio(summary.injected.p50, summary.plain.p50)),
          formatRatio(ratio(summary.injected.p99, summary.plain.p99)),
          formatRatio(ratio(summary.injected.mean, summary.plain.mean)),
        ],
        ...webhookRows.map((row) => [
          `apiserver's webhook call time, ${row.name} (${row.calls} calls)`,
          '',
          formatNumber(row.p99Ms),
          formatNumber(row.meanMs),
        ]),
        [
          `webhook's own time per request, ${INJECTION_METRIC} (${own.count} requests)`,
          '',
          '',
          formatNumber(ownMeanMs),
        ],
        [
          `webhook's whole request time, headers parsed to response sent (${serverRequests} requests)`,
          '',
          '',
          formatNumber(serverMeanMs),
        ],
        [
          `new connections to the webhook (TLS handshakes) over ${callCount} calls`,
          '',
          '',
          String(newConnections),
        ],
      ],
      notes: [
        `Creates alternate between the namespaces, one at a time, after ${WARMUP_CREATES} warm-up creates each. ` +
          `The webhook time is ${WEBHOOK_METRIC} over the measured creates; its p99 is interpolated ` +
          `inside buckets of ${bounds} ms, so it is coarse.`,
      ],
    });
  } finally {
    await webhook?.stop();
    await controlPlane?.stop();
  }
}

function msColumns(figures: { p50: number; p99: number; mean: number }): string[] {
  return [formatNumber(figures.p50), formatNumber(figures.p99), formatNumber(figures.mean)];
}

/** Creates pods with fresh names, timing each create, and remembers any pod stored with the wrong containers. */
class PodCreator {
  private next = 0;
  readonly wrong: string[] = [];

  constructor(private readonly core: CoreV1Api) {}

  async create(namespace: string): Promise<number> {
    const pod = typicalPod(`bench-${this.next++}`);
    const body: V1Pod = { ...pod, metadata: { ...pod.metadata, namespace } };
    const started = process.hrtime.bigint();
    const stored = await this.core.createNamespacedPod({ namespace, body });
    const ms = millisecondsSince(started);
    const injected = stored.spec?.containers.some((c) => c.name === CONTAINER_NAMES.proxy) ?? false;
    if (injected !== (namespace === INJECTED_NAMESPACE)) {
      this.wrong.push(`${namespace}/${body.metadata?.name} ${injected ? 'injected' : 'not injected'}`);
    }
    return ms;
  }
}

/** The apiserver learns of a new webhook configuration asynchronously; wait until a pod is injected. */
async function untilWebhookActive(core: CoreV1Api): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const pod = typicalPod(`probe-${attempt}`);
    const stored = await core.createNamespacedPod({
      namespace: INJECTED_NAMESPACE,
      body: { ...pod, metadata: { ...pod.metadata, namespace: INJECTED_NAMESPACE } },
    });
    if (stored.spec?.containers.some((c) => c.name === CONTAINER_NAMES.proxy)) return;
    await sleep(100);
  }
  throw new Error('the webhook configuration never took effect');
}

async function webhookHistograms(controlPlane: ControlPlane): Promise<Map<string, Histogram>> {
  const text = await kubectlOk(controlPlane, ['get', '--raw', '/metrics']);
  return readHistograms(text, WEBHOOK_METRIC, 'name', { type: 'admit', rejected: 'false' });
}

/** The webhook's own review-time histogram, from its /metrics. */
async function injectionHistogram(webhook: WebhookProcess): Promise<Histogram> {
  const text = await getText(`${webhook.url}/metrics`, webhook.ca.cert);
  return readHistograms(text, INJECTION_METRIC, '').get('') ?? { sum: 0, count: 0, buckets: [] };
}

async function kubectlOk(controlPlane: ControlPlane, args: string[], input?: string): Promise<string> {
  const result = await controlPlane.kubectl(args, input === undefined ? {} : { input });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}
