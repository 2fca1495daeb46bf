/**
 * Section 5: pod creation through a real kube-apiserver (v1.20.2, etcd, no kubelet), one create at a time, in
 * turn through four namespaces so that contention hits them alike:
 * - unlabelled: no webhook matches;
 * - the allow floor: a webhook with no work of its own that admits without a patch (bench/webhook-floors.ts);
 * - the patch floor: a webhook with no work of its own that answers with the injector's own answer for this pod;
 * - labelled istio-injection=enabled: the injector.
 * The floors split a labelled create's extra cost into the apiserver's (calling a webhook, applying the patch) and
 * the injector's. Plus the apiserver's own view of each webhook call, from its /metrics.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { CONTAINER_NAMES, INJECT_PATH } from '../common/constants.js';
import {
  controlPlaneRequirements,
  startControlPlane,
  type ControlPlane,
} from '../test/harness/control-plane.js';
import { localWebhookConfiguration, toYamlDocument } from '../test/harness/webhook-configuration.js';
import { startWebhookProcess, type WebhookProcess } from '../test/harness/webhook-process.js';
import { getText, postJson } from './https-client.js';
import { histogramDelta, histogramQuantile, readHistograms, type Histogram } from './prometheus.js';
import { admissionReview, typicalPod } from './pods.js';
import { startBaselineServer, type BaselineServer } from './processes.js';
import { serverRuntime } from './server-runtime.js';
import { latestObservation } from './server-observation.js';
import { formatNumber, formatRatio, type Report } from './report.js';
import { millisecondsSince, percentile, ratio } from './stats.js';
import { FLOOR_LABEL, FLOORS, floorWebhookConfiguration, type Floor } from './webhook-floors.js';

const SECTION = '5. End to end on a real kube-apiserver';
/** The namespaces, in the order each round of creates visits them. */
const NAMESPACES = {
  plain: 'bench-plain',
  allowFloor: 'bench-floor-allow',
  patchFloor: 'bench-floor-patch',
  injected: 'bench-injected',
} as const;
type Route = keyof typeof NAMESPACES;
const ROUTES = Object.keys(NAMESPACES) as Route[];
const ROUTE_TITLES: Record<Route, string> = {
  plain: 'create, unlabelled (no webhook called)',
  allowFloor: 'create through the allow floor (a webhook with no work of its own, no patch)',
  patchFloor: "create through the patch floor (a webhook with no work of its own, the injector's answer)",
  injected: 'create, labelled `istio-injection=enabled` (the injector)',
};
/** Whether a pod created in the route's namespace must be stored with the proxy. */
const INJECTS: Record<Route, boolean> = { plain: false, allowFloor: false, patchFloor: true, injected: true };
const WARMUP_CREATES = 20;
const WEBHOOK_METRIC = 'apiserver_admission_webhook_admission_duration_seconds';
/** The webhook's own time per request, arrival to answer sent, as its /metrics report it (Istio's name and meaning). */
const INJECTION_METRIC = 'sidecar_injection_time_seconds';
const OBSERVER_LINES_MS = 500;
const SERVER_OBSERVER = fileURLToPath(new URL('./server-observer.js', import.meta.url));
/** Targets (issue 12). */
const MAX_LABELLED_VS_UNLABELLED_P50 = 1.2;
const MAX_APISERVER_VS_WEBHOOK_MEAN = 3;

interface Timings {
  p50: number;
  p99: number;
  mean: number;
}

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
  const floors: BaselineServer[] = [];
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
      env: serverRuntime().env,
    });
    const core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
    const injectorConfiguration = localWebhookConfiguration({ url: webhook.url, caPem: webhook.ca.cert });
    await kubectlOk(controlPlane, ['apply', '-f', '-'], toYamlDocument(injectorConfiguration));
    await core.createNamespace({
      body: { metadata: { name: NAMESPACES.injected, labels: { 'istio-injection': 'enabled' } } },
    });
    await core.createNamespace({ body: { metadata: { name: NAMESPACES.plain } } });
    for (const floor of FLOORS) {
      await core.createNamespace({
        body: { metadata: { name: floorNamespace(floor), labels: { [FLOOR_LABEL]: floor } } },
      });
    }
    const answerFile = join(controlPlane.dir, 'injector-answer.json');
    await writeFile(answerFile, await injectorAnswer(core, webhook, floorNamespace('patch')));
    const origins = {} as Record<Floor, string>;
    for (const floor of FLOORS) {
      const server = await startBaselineServer(webhook.certPath, webhook.keyPath, {
        ...(floor === 'patch' ? { responseFile: answerFile, echoUid: true } : {}),
        env: serverRuntime().env,
      });
      floors.push(server);
      origins[floor] = server.origin;
    }
    await kubectlOk(
      controlPlane,
      ['apply', '-f', '-'],
      toYamlDocument(floorWebhookConfiguration(injectorConfiguration, origins)),
    );
    await untilInjected(core, NAMESPACES.injected);
    await untilInjected(core, NAMESPACES.patchFloor);

    const creator = new PodCreator(core);
    for (let i = 0; i < WARMUP_CREATES; i++) {
      for (const route of ROUTES) await creator.create(route);
    }
    creator.checkPatchFloorMatchesInjector();
    const before = await webhookHistograms(controlPlane);
    const ownBefore = await injectionHistogram(webhook);
    // The observer's lines arrive through a pipe: a moment for the last ones, so the scrape is not counted.
    await sleep(OBSERVER_LINES_MS);
    const observedBefore = latestObservation(webhook.logs());
    const samples = Object.fromEntries(ROUTES.map((route) => [route, [] as number[]])) as Record<
      Route,
      number[]
    >;
    for (let i = 0; i < creates; i++) {
      // The order rotates, so that no namespace always follows the same one.
      for (let j = 0; j < ROUTES.length; j++) {
        const route = ROUTES[(i + j) % ROUTES.length]!;
        samples[route].push(await creator.create(route));
      }
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

    const timings = Object.fromEntries(ROUTES.map((route) => [route, describe(samples[route])])) as Record<
      Route,
      Timings
    >;
    for (const route of ROUTES) {
      report.figure(SECTION, `${ROUTE_TITLES[route]}: p50`, timings[route].p50, 'ms');
      report.figure(SECTION, `${ROUTE_TITLES[route]}: p99`, timings[route].p99, 'ms');
    }
    const p50Ratio = ratio(timings.injected.p50, timings.plain.p50);
    report.figure(SECTION, 'labelled/unlabelled p99', ratio(timings.injected.p99, timings.plain.p99), '×');
    report.figure(
      SECTION,
      'allow floor/unlabelled p50',
      ratio(timings.allowFloor.p50, timings.plain.p50),
      '×',
    );
    report.figure(
      SECTION,
      'patch floor/unlabelled p50',
      ratio(timings.patchFloor.p50, timings.plain.p50),
      '×',
    );
    report.figure(
      SECTION,
      "labelled/patch floor p50 (what the injector's review adds to a webhook with the same answer)",
      ratio(timings.injected.p50, timings.patchFloor.p50),
      '×',
    );
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

    const injectorNames = new Set(injectorConfiguration.webhooks.map((w) => w.name));
    const webhookRows = [...after]
      .map(([name, histogram]) => ({ name, delta: histogramDelta(histogram, before.get(name)) }))
      .filter(({ delta }) => delta.count > 0)
      .map(({ name, delta }) => {
        const meanMs = (delta.sum / delta.count) * 1000;
        const p99Ms = histogramQuantile(0.99, delta) * 1000;
        report.figure(SECTION, `apiserver's ${name}: calls`, delta.count, 'calls');
        report.figure(SECTION, `apiserver's ${name}: mean (sum/count)`, meanMs, 'ms');
        report.figure(SECTION, `apiserver's ${name}: p99 (from buckets)`, p99Ms, 'ms');
        return {
          name,
          injector: injectorNames.has(name),
          calls: delta.count,
          meanMs,
          p99Ms,
          buckets: delta.buckets,
        };
      });
    const injectorRows = webhookRows.filter((row) => row.injector);
    if (injectorRows.length === 0) report.note(`WARNING: ${WEBHOOK_METRIC} recorded no call to the injector`);

    const own = histogramDelta(ownAfter, ownBefore);
    const ownMeanMs = own.count > 0 ? (own.sum / own.count) * 1000 : Number.NaN;
    report.figure(SECTION, `webhook's own ${INJECTION_METRIC}: requests`, own.count, 'requests');
    report.figure(SECTION, `webhook's own ${INJECTION_METRIC}: mean`, ownMeanMs, 'ms');
    const injectorCalls = injectorRows.reduce((total, row) => total + row.calls, 0);
    const apiserverMeanMs =
      injectorRows.reduce((total, row) => total + row.meanMs * row.calls, 0) / injectorCalls;
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
    report.figure(
      SECTION,
      'new connections the webhook accepted during the measured creates',
      newConnections,
      'connections',
    );
    report.figure(SECTION, 'webhook calls per new connection', ratio(injectorCalls, newConnections), 'calls');
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
      timings,
      webhook: webhookRows,
      webhookOwn: { reviews: own.count, meanMs: ownMeanMs },
      newConnections,
      webhookServer: { requests: serverRequests, meanMs: serverMeanMs },
    };

    const bounds = (injectorRows[0]?.buckets ?? [])
      .map((b) => b.le)
      .filter(Number.isFinite)
      .map((le) => `${le * 1000}`)
      .join(', ');
    report.table({
      title: `End to end: pod creation through kube-apiserver ${controlPlane.version} (${creates} creates each)`,
      header: ['Measure', 'p50 ms', 'p99 ms', 'mean ms', 'p50 ÷ unlabelled'],
      rows: [
        ...ROUTES.map((route) => [
          ROUTE_TITLES[route],
          ...msColumns(timings[route]),
          formatRatio(ratio(timings[route].p50, timings.plain.p50)),
        ]),
        ...webhookRows.map((row) => [
          `apiserver's webhook call time, ${row.name} (${row.calls} calls)`,
          '',
          formatNumber(row.p99Ms),
          formatNumber(row.meanMs),
          '',
        ]),
        [
          `webhook's own time per request, ${INJECTION_METRIC} (${own.count} requests)`,
          '',
          '',
          formatNumber(ownMeanMs),
          '',
        ],
        [
          `webhook's whole request time, headers parsed to response sent (${serverRequests} requests)`,
          '',
          '',
          formatNumber(serverMeanMs),
          '',
        ],
        [
          `new connections to the webhook (TLS handshakes) over ${injectorCalls} calls`,
          '',
          '',
          String(newConnections),
          '',
        ],
      ],
      notes: [
        `Creates go through the four namespaces in turn, one at a time, after ${WARMUP_CREATES} warm-up creates each. ` +
          'The floors are bare Fastify webhooks with no work of their own (bench/webhook-floors.ts), the patch floor answering with the ' +
          "injector's own answer for this pod, so that its creates store the same pod as the injector's. " +
          `The webhook times are ${WEBHOOK_METRIC} over the measured creates; p99 is interpolated ` +
          `inside buckets of ${bounds} ms, so it is coarse.`,
      ],
    });
  } finally {
    for (const floor of floors) await floor.stop();
    await webhook?.stop();
    await controlPlane?.stop();
  }
}

function floorNamespace(floor: Floor): string {
  return floor === 'allow' ? NAMESPACES.allowFloor : NAMESPACES.patchFloor;
}

function describe(samples: number[]): Timings {
  return {
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    mean: samples.reduce((total, ms) => total + ms, 0) / samples.length,
  };
}

/**
 * The injector's answer for the pod as the apiserver sends it to webhooks in `namespace`: defaulted and through
 * the built-in admission plugins, as a server-side dry run returns it (less the fields set after admission).
 */
async function injectorAnswer(core: CoreV1Api, webhook: WebhookProcess, namespace: string): Promise<string> {
  const pod = typicalPod('bench-answer');
  const admitted = await core.createNamespacedPod({
    namespace,
    body: { ...pod, metadata: { ...pod.metadata, namespace } },
    dryRun: 'All',
  });
  const { uid: _uid, creationTimestamp: _created, ...metadata } = admitted.metadata ?? {};
  const review = admissionReview({ ...admitted, metadata, status: undefined });
  const answer = await postJson(`${webhook.url}${INJECT_PATH}`, webhook.ca.cert, JSON.stringify(review));
  if (answer.status !== 200 || !answer.text.includes('"patch"')) {
    throw new Error(
      `the injector answered the floor's pod with ${answer.status}: ${answer.text.slice(0, 200)}`,
    );
  }
  return answer.text;
}

function msColumns(figures: Timings): string[] {
  return [formatNumber(figures.p50), formatNumber(figures.p99), formatNumber(figures.mean)];
}

/**
 * Creates pods with fresh names, timing each create; remembers any pod stored with the wrong containers, and the
 * first spec stored through each route.
 */
class PodCreator {
  private next = 0;
  readonly wrong: string[] = [];
  private readonly firstSpecs = new Map<Route, string>();

  constructor(private readonly core: CoreV1Api) {}

  async create(route: Route): Promise<number> {
    const namespace = NAMESPACES[route];
    const pod = typicalPod(`bench-${this.next++}`);
    const body: V1Pod = { ...pod, metadata: { ...pod.metadata, namespace } };
    const started = process.hrtime.bigint();
    const stored = await this.core.createNamespacedPod({ namespace, body });
    const ms = millisecondsSince(started);
    if (isInjected(stored) !== INJECTS[route]) {
      this.wrong.push(
        `${namespace}/${body.metadata?.name} ${isInjected(stored) ? 'injected' : 'not injected'}`,
      );
    }
    if (!this.firstSpecs.has(route)) this.firstSpecs.set(route, JSON.stringify(stored.spec));
    return ms;
  }

  /** The patch floor is a floor only if its creates store what the injector's do. */
  checkPatchFloorMatchesInjector(): void {
    if (this.firstSpecs.get('patchFloor') !== this.firstSpecs.get('injected')) {
      throw new Error("the patch floor's pods differ from the injector's: its answer is not the injector's");
    }
  }
}

const isInjected = (pod: V1Pod) =>
  pod.spec?.containers.some((c) => c.name === CONTAINER_NAMES.proxy) ?? false;

/** The apiserver learns of a new webhook configuration asynchronously; wait until a pod in namespace is injected. */
async function untilInjected(core: CoreV1Api, namespace: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const pod = typicalPod(`probe-${attempt}`);
    const stored = await core.createNamespacedPod({
      namespace,
      body: { ...pod, metadata: { ...pod.metadata, namespace } },
    });
    if (isInjected(stored)) return;
    await sleep(100);
  }
  throw new Error(`the webhook configuration for ${namespace} never took effect`);
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
