/**
 * Section 7: create to Ready on the real node (test/harness/node-cluster.ts, mesh-injector installed from the local
 * images as `npm start` installs it). The same pod spec is created in a namespace labelled istio-injection=enabled
 * and in an unlabelled one, one pod at a time and interleaved, so that contention hits both alike. Create to Ready is
 * timed on this side, from just before the create request to the watch event that shows the pod's Ready condition
 * True (the API's own timestamps have whole seconds only). Within it, istio-init's own run time comes from
 * containerd's task events (`ctr events`, nanoseconds): the init container's task start to its exit. A third kind,
 * injected with the proxy's readiness probed every second (an annotation), separates the probe's period from the
 * cost of the injected containers themselves (a v1.20 kubelet probes readiness at the period's ticks, or when a pod
 * status update triggers it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CoreV1Api, type V1Pod, Watch } from '@kubernetes/client-node';
import { CONTAINER_NAMES } from '../common/constants.js';
import { DEMO_IMAGE, startLocalMesh } from '../test/harness/local-mesh.js';
import { type NodeCluster, nodeClusterRequirements } from '../test/harness/node-cluster.js';
import { formatNumber, formatRatio, type Report } from './report.js';
import { median, percentile, ratio } from './stats.js';

const SECTION = '7. Create to Ready on the real node';
const INJECTED_NAMESPACE = 'bench-node-injected';
const PLAIN_NAMESPACE = 'bench-node-plain';
const APP_PORT = 8080;
/** One pod of each kind first, not counted: the first sandbox and the first start of each image are slower. */
const WARMUP_PODS = 1;
const READY_TIMEOUT_MS = 120_000;
const FAST_READINESS = { 'readiness.status.sidecar.istio.io/periodSeconds': '1' };

/** The kinds of pod, created in turn: the same spec, with the sidecar or without, and with the fast probe. */
const KINDS = [
  { kind: 'injected', namespace: INJECTED_NAMESPACE, annotations: {} },
  { kind: 'injectedFastProbe', namespace: INJECTED_NAMESPACE, annotations: FAST_READINESS },
  { kind: 'plain', namespace: PLAIN_NAMESPACE, annotations: {} },
] as const;

export async function benchRealNode(report: Report, pods: number): Promise<void> {
  report.section(SECTION);
  const missing = Object.entries(nodeClusterRequirements())
    .filter(([, ok]) => !ok)
    .map(([what]) => what);
  if (missing.length > 0) {
    report.skip(SECTION, `the local node cannot run here, missing ${missing.join(', ')}`);
    return;
  }

  let cluster: NodeCluster | undefined;
  let events: TaskEvents | undefined;
  try {
    cluster = await startLocalMesh((line) => report.note(`[node] ${line}`));
    events = new TaskEvents(cluster.paths.containerdSocket);
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({
      body: { metadata: { name: INJECTED_NAMESPACE, labels: { 'istio-injection': 'enabled' } } },
    });
    await core.createNamespace({ body: { metadata: { name: PLAIN_NAMESPACE } } });
    const readiness = new ReadyWatch(cluster);
    await readiness.start([INJECTED_NAMESPACE, PLAIN_NAMESPACE]);
    await untilServiceAccounts(core, [INJECTED_NAMESPACE, PLAIN_NAMESPACE]);

    const samples = { injected: [], injectedFastProbe: [], plain: [], init: [] } as Record<
      (typeof KINDS)[number]['kind'] | 'init',
      number[]
    >;
    for (let i = 0; i < WARMUP_PODS + pods; i++) {
      const counted = i >= WARMUP_PODS;
      for (const { kind, namespace, annotations } of KINDS) {
        const name = `${kind.toLowerCase()}-${i}`;
        const body = benchPod(namespace, name, annotations);
        const { createToReadyMs, pod } = await createUntilReady(core, readiness, body);
        const injected = namespace === INJECTED_NAMESPACE;
        const initId = containerId(pod, CONTAINER_NAMES.init);
        if (injected !== (initId !== undefined)) {
          throw new Error(`${namespace}/${name} was ${injected ? 'not ' : ''}injected`);
        }
        if (counted) {
          samples[kind].push(createToReadyMs);
          if (initId !== undefined) samples.init.push(await events.runTimeMs(initId));
        }
        await core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
      }
    }
    readiness.stop();

    const injectedMs = median(samples.injected);
    const fastMs = median(samples.injectedFastProbe);
    const plainMs = median(samples.plain);
    const initMs = median(samples.init);
    report.figure(SECTION, `injected pod, create to Ready: median of ${pods}`, injectedMs, 'ms');
    report.figure(SECTION, 'injected pod, create to Ready: p90', percentile(samples.injected, 90), 'ms');
    report.figure(SECTION, `injected pod, readiness probed every 1 s: median of ${pods}`, fastMs, 'ms');
    report.figure(
      SECTION,
      'injected pod, readiness probed every 1 s: p90',
      percentile(samples.injectedFastProbe, 90),
      'ms',
    );
    report.figure(SECTION, `uninjected pod, create to Ready: median of ${pods}`, plainMs, 'ms');
    report.figure(SECTION, 'uninjected pod, create to Ready: p90', percentile(samples.plain, 90), 'ms');
    report.figure(SECTION, 'injected / uninjected, median', ratio(injectedMs, plainMs), '×');
    report.figure(SECTION, 'injected (probe every 1 s) / uninjected, median', ratio(fastMs, plainMs), '×');
    report.figure(SECTION, 'istio-init run time (task start to exit): median', initMs, 'ms');
    report.figure(SECTION, 'istio-init run time: max', Math.max(...samples.init), 'ms');
    report.figure(
      SECTION,
      "istio-init's share of the extra time of an injected pod probed every 1 s",
      ratio(initMs, fastMs - plainMs),
      '×',
    );
    report.details.realNode = { pods, samples };
    report.table({
      title: SECTION,
      header: ['Pod (same spec)', 'Create to Ready, median', 'p90'],
      rows: [
        [
          'injected',
          `${formatNumber(injectedMs)} ms`,
          `${formatNumber(percentile(samples.injected, 90))} ms`,
        ],
        [
          'injected, readiness probed every 1 s (annotation)',
          `${formatNumber(fastMs)} ms`,
          `${formatNumber(percentile(samples.injectedFastProbe, 90))} ms`,
        ],
        ['uninjected', `${formatNumber(plainMs)} ms`, `${formatNumber(percentile(samples.plain, 90))} ms`],
        ['injected / uninjected', formatRatio(ratio(injectedMs, plainMs)), ''],
        ['injected (probe every 1 s) / uninjected', formatRatio(ratio(fastMs, plainMs)), ''],
        ['istio-init run time within it', `${formatNumber(initMs)} ms`, ''],
      ],
      notes: [
        `${pods} pods of each kind (after ${WARMUP_PODS} not counted), one at a time, interleaved; create to the watch ` +
          "event with Ready True. istio-init's run time is its containerd task's start to exit. The template probes " +
          "the proxy's readiness every 15 s (as Istio); this v1.20 kubelet probes at the period's ticks, or when a " +
          'status update triggers it.',
      ],
    });
  } finally {
    events?.stop();
    await cluster?.stop();
  }
}

/** A pod that serves HTTP on APP_PORT, from the demo image; the same spec in both namespaces. */
function benchPod(namespace: string, name: string, annotations: Record<string, string>): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: 'bench-ready' }, annotations },
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: 'app',
          image: DEMO_IMAGE,
          imagePullPolicy: 'IfNotPresent',
          command: ['mesh-demo-echo', String(APP_PORT)],
          ports: [{ containerPort: APP_PORT }],
        },
      ],
    },
  };
}

async function createUntilReady(
  core: CoreV1Api,
  readiness: ReadyWatch,
  body: V1Pod,
): Promise<{ createToReadyMs: number; pod: V1Pod }> {
  const namespace = body.metadata?.namespace ?? '';
  const ready = readiness.when(namespace, body.metadata?.name ?? '');
  const started = performance.now();
  await core.createNamespacedPod({ namespace, body });
  const { at, pod } = await ready;
  return { createToReadyMs: at - started, pod };
}

/** One watch per namespace; resolves a pod's promise at the first event that shows it Ready. */
class ReadyWatch {
  readonly #waiting = new Map<string, (ready: { at: number; pod: V1Pod }) => void>();
  readonly #watches: AbortController[] = [];
  readonly #watch: Watch;

  constructor(cluster: NodeCluster) {
    this.#watch = new Watch(cluster.kubeConfig);
  }

  async start(namespaces: string[]): Promise<void> {
    for (const namespace of namespaces) {
      this.#watches.push(
        await this.#watch.watch(
          `/api/v1/namespaces/${namespace}/pods`,
          {},
          (_phase, pod: V1Pod) => {
            const at = performance.now();
            const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
            const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
            const resolve = this.#waiting.get(key);
            if (ready && resolve) {
              this.#waiting.delete(key);
              resolve({ at, pod });
            }
          },
          () => {},
        ),
      );
    }
  }

  when(namespace: string, name: string): Promise<{ at: number; pod: V1Pod }> {
    return new Promise((resolve, reject) => {
      const key = `${namespace}/${name}`;
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        reject(new Error(`${key} was not Ready after ${READY_TIMEOUT_MS / 1000} s`));
      }, READY_TIMEOUT_MS);
      this.#waiting.set(key, (ready) => {
        clearTimeout(timer);
        resolve(ready);
      });
    });
  }

  stop(): void {
    for (const watch of this.#watches) watch.abort();
  }
}

async function untilServiceAccounts(core: CoreV1Api, namespaces: string[]): Promise<void> {
  for (const namespace of namespaces) {
    for (let attempt = 0; ; attempt++) {
      try {
        await core.readNamespacedServiceAccount({ namespace, name: 'default' });
        break;
      } catch (error) {
        if (attempt >= 120)
          throw new Error(`namespace ${namespace} has no default ServiceAccount`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }
}

function containerId(pod: V1Pod, name: string): string | undefined {
  const status = pod.status?.initContainerStatuses?.find((s) => s.name === name);
  return status?.containerID?.replace(/^containerd:\/\//, '');
}

export interface TaskEvent {
  /** Milliseconds since the epoch, to the microsecond. */
  at: number;
  topic: '/tasks/start' | '/tasks/exit';
  containerId: string;
}

/**
 * One line of `ctr events`, e.g. `2026-12-03 22:55:01.123456789 +0000 UTC k8s.io /tasks/exit {"container_id":…}`;
 * undefined for other topics. A task's exit is dated by its `exited_at`, a start by the event's own time.
 */
export function parseTaskEvent(line: string): TaskEvent | undefined {
  const match =
    /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)? ([+-])(\d\d)(\d\d) \S+ \S+ (\/tasks\/(?:start|exit)) (\{.*\})\s*$/.exec(
      line,
    );
  if (!match) return undefined;
  const [, date, time, fraction, sign, hours, minutes, topic, json] = match;
  const body = JSON.parse(json ?? '{}') as { container_id?: string; exited_at?: string };
  if (typeof body.container_id !== 'string') return undefined;
  const offsetMs = (sign === '-' ? -1 : 1) * (Number(hours) * 60 + Number(minutes)) * 60_000;
  let at = Date.parse(`${date}T${time}Z`) - offsetMs + Number(`0${fraction ?? ''}`) * 1000;
  if (topic === '/tasks/exit' && body.exited_at) at = parseRfc3339(body.exited_at);
  return { at, topic: topic as TaskEvent['topic'], containerId: body.container_id };
}

/** An RFC 3339 time with up to nanoseconds, in milliseconds since the epoch (Date.parse keeps only milliseconds). */
export function parseRfc3339(text: string): number {
  const match = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!match) throw new Error(`not an RFC 3339 time: ${text}`);
  return Date.parse(`${match[1]}${match[3]}`) + Number(`0${match[2] ?? ''}`) * 1000;
}

/** `ctr events` on the node's containerd, from now on: each container's task start and exit. */
class TaskEvents {
  readonly #child: ChildProcess;
  readonly #starts = new Map<string, number>();
  readonly #exits = new Map<string, number>();

  constructor(socket: string) {
    this.#child = spawn('ctr', ['--address', socket, 'events'], { stdio: ['ignore', 'pipe', 'ignore'] });
    if (!this.#child.stdout) throw new Error('ctr events has no stdout');
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const event = parseTaskEvent(line);
      if (event)
        (event.topic === '/tasks/start' ? this.#starts : this.#exits).set(event.containerId, event.at);
    });
  }

  /** The container's run time; it has exited by the time its pod is Ready, the event may lag a moment. */
  async runTimeMs(containerId: string): Promise<number> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const start = this.#starts.get(containerId);
      const exit = this.#exits.get(containerId);
      if (start !== undefined && exit !== undefined) return exit - start;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`containerd reported no start and exit for container ${containerId}`);
  }

  stop(): void {
    this.#child.kill();
  }
}
