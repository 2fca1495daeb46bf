/**
 * `npm start`: a local cluster where a newcomer sees injected pods run.
 *
 * On Linux as root: a one-node cluster (test/harness/node-cluster.ts) with mesh-injector installed from the local
 * images as a user installs it, the namespace `demo` labelled istio-injection=enabled with an echo server and a
 * client; it prints what was injected, the pods with istio-init Completed, one request's path through both proxies
 * and an `export KUBECONFIG=` line that works from this machine. Elsewhere (not root, not Linux) it says why and
 * falls back to the control plane alone: etcd, kube-apiserver and the webhook as a local process, where pods are
 * injected but never run. MESH_INJECTOR_START=control-plane chooses the fallback.
 *
 * Ctrl-C or SIGTERM stops everything. `npm start` runs this file with `exec` (package.json), so the signal npm
 * forwards reaches this process rather than an intermediate shell that would die and leave it running.
 */
import { execFileSync } from 'node:child_process';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { ensureKubeApiserver, findEtcd, findKubectl } from '../test/harness/binaries.js';
import { startControlPlane, type ControlPlane } from '../test/harness/control-plane.js';
import {
  ECHO_PORT,
  INBOUND_LISTENER,
  OUTBOUND_LISTENER,
  STATS_PORT,
  clientPod,
  curlArgs,
  echoDeployment,
  echoService,
  sumCounter,
} from '../test/harness/demo-workloads.js';
import { DEMO_IMAGE, startLocalMesh } from '../test/harness/local-mesh.js';
import { type Kubectl, must } from '../test/harness/mesh-install.js';
import { type NodeCluster, nodeClusterRequirements } from '../test/harness/node-cluster.js';
import { repoPath } from '../test/harness/repo.js';
import { onTerminationSignal } from '../test/harness/termination.js';
import { localWebhookConfiguration, toYamlDocument } from '../test/harness/webhook-configuration.js';
import { startWebhookProcess, type WebhookProcess } from '../test/harness/webhook-process.js';

const DEMO_NAMESPACE = 'demo';

const say = (line = '') => process.stdout.write(`${line}\n`);

const startedAt = Date.now();

async function main(): Promise<void> {
  const unavailable = nodeUnavailable();
  if (unavailable === undefined) return nodeDemo();
  say(
    `The local node cannot run here: ${unavailable}. Falling back to the control plane alone (pods are injected`,
  );
  say('but never run).');
  return controlPlaneDemo();
}

/** Why the node cannot run here, or undefined when it can (the Kubernetes binaries are built if missing). */
function nodeUnavailable(): string | undefined {
  if (process.env.MESH_INJECTOR_START === 'control-plane') return 'MESH_INJECTOR_START=control-plane';
  if (process.platform !== 'linux') return `it needs Linux, and this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'it needs root (network namespaces, containerd, the kubelet)';
  const missing = () =>
    Object.entries(nodeClusterRequirements())
      .filter(([, ok]) => !ok)
      .map(([what]) => what);
  if (missing().length === 0) return undefined;
  execFileSync('bash', [repoPath('scripts', 'install-prerequisites.sh'), 'all'], { stdio: 'inherit' });
  ensureKubeApiserver({ build: true });
  const stillMissing = missing();
  return stillMissing.length > 0 ? `missing ${stillMissing.join(', ')}` : undefined;
}

async function nodeDemo(): Promise<void> {
  let cluster: NodeCluster | undefined;
  // Until the cluster takes over its own signals (startNodeCluster), a signal just ends the start.
  const early = onTerminationSignal(async () => {});
  try {
    // The namespace is made while the node starts; the pods once the webhook serves.
    cluster = await startLocalMesh((line) => say(`[node] ${line}`), {
      whileNodeStarts: async (kubectl) => {
        await must(kubectl, ['apply', '-f', '-'], JSON.stringify(demoNamespace()));
        await waitForServiceAccount(kubectl);
      },
    });
    early.cancel();
    const kubectl: Kubectl = cluster.kubectl;
    const demo = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        echoDeployment(DEMO_NAMESPACE, DEMO_IMAGE),
        echoService(DEMO_NAMESPACE),
        clientPod(DEMO_NAMESPACE, 'client', DEMO_IMAGE),
      ],
    };
    await must(kubectl, ['apply', '-f', '-'], JSON.stringify(demo));
    await Promise.all([
      must(kubectl, ['-n', DEMO_NAMESPACE, 'rollout', 'status', 'deployment/echo', '--timeout=180s']),
      must(kubectl, ['-n', DEMO_NAMESPACE, 'wait', '--for=condition=Ready', 'pod/client', '--timeout=180s']),
    ]);
    say(`[node] demo pods Ready (${((Date.now() - startedAt) / 1000).toFixed(1)} s)`);

    const [wide, podsJson] = await Promise.all([
      must(kubectl, ['-n', DEMO_NAMESPACE, 'get', 'pods', '-o', 'wide']),
      must(kubectl, ['-n', DEMO_NAMESPACE, 'get', 'pods', '-o', 'json']),
    ]);
    const pods = JSON.parse(podsJson) as { items: V1Pod[] };
    const client = pods.items.find((pod) => pod.metadata?.name === 'client');
    if (!client) throw new Error('the client pod is missing');
    printInjected(client, 'client');
    say();
    say(wide);
    for (const pod of pods.items) {
      const init = pod.status?.initContainerStatuses?.find((status) => status.name === 'istio-init');
      const terminated = init?.state?.terminated;
      say(
        `  ${pod.metadata?.name}: ${pod.status?.phase}, istio-init ${terminated?.reason ?? 'not finished'} (exit ${terminated?.exitCode ?? '-'})`,
      );
    }
    await printRequestPath(kubectl, pods.items);
    say();
    say(
      `Ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s. The cluster stays up until Ctrl-C. In another terminal:`,
    );
    say(`export KUBECONFIG=${cluster.kubeconfigPath}`);
    say(`  kubectl -n ${DEMO_NAMESPACE} get pods`);
    say(`  kubectl -n ${DEMO_NAMESPACE} logs client -c istio-init`);
    say(
      `  kubectl -n ${DEMO_NAMESPACE} exec client -c client -- curl -s http://echo:${ECHO_PORT}/   # no cluster DNS: use the Service IP`,
    );
  } catch (error) {
    early.cancel();
    console.error(error instanceof Error ? error.message : error);
    await cluster?.stop();
    process.exit(1);
  }
}

function demoNamespace(): object {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: DEMO_NAMESPACE, labels: { 'istio-injection': 'enabled' } },
  };
}

async function waitForServiceAccount(kubectl: Kubectl): Promise<void> {
  for (let attempt = 0; attempt < 120; attempt++) {
    if ((await kubectl(['-n', DEMO_NAMESPACE, 'get', 'serviceaccount', 'default'])).exitCode === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`namespace ${DEMO_NAMESPACE} never got its default ServiceAccount`);
}

/** One request from the client to the echo Service, and the counters of both proxies' listeners around it. */
async function printRequestPath(kubectl: Kubectl, pods: V1Pod[]): Promise<void> {
  const server = pods.find((pod) => pod.metadata?.labels?.app === 'echo');
  const client = pods.find((pod) => pod.metadata?.name === 'client');
  const serverName = server?.metadata?.name;
  if (!serverName || !client) throw new Error('the demo pods are missing');
  const serviceIp = (
    await must(kubectl, ['-n', DEMO_NAMESPACE, 'get', 'service', 'echo', '-o', 'jsonpath={.spec.clusterIP}'])
  ).trim();
  const counter = async (pod: string, listener: string) =>
    sumCounter(
      await must(kubectl, [
        'get',
        '--raw',
        `/api/v1/namespaces/${DEMO_NAMESPACE}/pods/${pod}:${STATS_PORT}/proxy/stats/prometheus`,
      ]),
      'envoy_listener_downstream_cx_total',
      { envoy_listener_address: listener },
    );
  const counters = () =>
    Promise.all([counter('client', OUTBOUND_LISTENER), counter(serverName, INBOUND_LISTENER)]);
  const before = await counters();
  const url = `http://${serviceIp}:${ECHO_PORT}/`;
  const answer = (await must(kubectl, curlArgs(DEMO_NAMESPACE, 'client', url))).trim();
  const after = await counters();
  say();
  say(`one request, client (${client.status?.podIP}) -> curl ${url} (Service echo):`);
  say(
    `  client's istio-proxy, outbound listener ${OUTBOUND_LISTENER}: ${before[0]} -> ${after[0]} connections`,
  );
  say(
    `  server's istio-proxy, inbound listener ${INBOUND_LISTENER}: ${before[1]} -> ${after[1]} connections`,
  );
  say(`  the echo server (${server?.status?.podIP}) answered: ${answer}   (127.0.0.6: the inbound proxy)`);
}

async function controlPlaneDemo(): Promise<void> {
  ensurePrerequisites();
  const stack: { stop(): Promise<void> }[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\nstopping webhook, kube-apiserver and etcd...');
    for (const part of stack.reverse()) await part.stop().catch((error: unknown) => console.error(error));
    say('stopped.');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  try {
    const controlPlane: ControlPlane = await startControlPlane({ buildKubeApiserver: true });
    stack.push(controlPlane);
    const webhook: WebhookProcess = await startWebhookProcess({
      kubeconfigPath: controlPlane.kubeconfigPath,
      onLogLine: printWebhookLine,
    });
    stack.push(webhook);
    say(`webhook ready at ${webhook.url}/inject`);

    const configuration = localWebhookConfiguration({ url: webhook.url, caPem: webhook.ca.cert });
    await kubectl(controlPlane, ['apply', '-f', '-'], toYamlDocument(configuration));
    await kubectl(controlPlane, ['create', 'namespace', DEMO_NAMESPACE]);
    await kubectl(controlPlane, ['label', 'namespace', DEMO_NAMESPACE, 'istio-injection=enabled']);

    const stored = await createDemoPod(controlPlane);
    printInjected(stored);
    say();
    say('The control plane stays up until Ctrl-C. In another terminal:');
    say(`export KUBECONFIG=${controlPlane.kubeconfigPath}`);
    say(`  kubectl get pod -n ${DEMO_NAMESPACE} web -o yaml`);
    say('  kubectl create namespace plain && kubectl run -n plain web --image=nginx   # not injected');
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    await stopAll(1);
  }
}

function ensurePrerequisites(): void {
  if (findEtcd() && findKubectl()) return;
  execFileSync('bash', [repoPath('scripts', 'install-prerequisites.sh'), 'control-plane'], {
    stdio: 'inherit',
  });
}

async function kubectl(controlPlane: ControlPlane, args: string[], input?: string): Promise<void> {
  const result = await controlPlane.kubectl(args, input === undefined ? {} : { input });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr.trim()}`);
}

/** The webhook configuration reaches the apiserver's informer asynchronously: retry until the pod is injected. */
async function createDemoPod(controlPlane: ControlPlane): Promise<V1Pod> {
  const core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
  const body: V1Pod = {
    metadata: { name: 'web', labels: { app: 'web', version: 'v1' } },
    spec: { containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }] },
  };
  for (let attempt = 0; attempt < 50; attempt++) {
    await core.createNamespacedPod({ namespace: DEMO_NAMESPACE, body });
    const stored = await core.readNamespacedPod({ namespace: DEMO_NAMESPACE, name: 'web' });
    if (stored.spec?.initContainers?.length) return stored;
    await core.deleteNamespacedPod({ namespace: DEMO_NAMESPACE, name: 'web', gracePeriodSeconds: 0 });
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('the demo pod was never injected: is the webhook configuration in place?');
}

function printInjected(pod: V1Pod, name = 'web'): void {
  say();
  say(`pod ${DEMO_NAMESPACE}/${name}, as kube-apiserver stored it:`);
  for (const container of pod.spec?.initContainers ?? []) {
    say(`  init container ${container.name}: ${container.image}`);
    say(`    ${[...(container.command ?? []), ...(container.args ?? [])].map(shellWord).join(' ')}`);
  }
  for (const container of pod.spec?.containers ?? []) {
    say(`  container ${container.name}: ${container.image}`);
  }
  for (const [key, value] of Object.entries(pod.metadata?.annotations ?? {}))
    say(`  annotation ${key}: ${value}`);
}

function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function printWebhookLine(line: string): void {
  try {
    const entry = JSON.parse(line) as {
      msg?: string;
      namespace?: string;
      pod?: string;
      durationMs?: number;
      reason?: string;
    };
    if (entry.namespace === undefined) return;
    const detail = entry.reason
      ? ` (${entry.reason})`
      : entry.durationMs !== undefined
        ? ` in ${entry.durationMs} ms`
        : '';
    say(`[webhook] ${entry.msg}: ${entry.namespace}/${entry.pod}${detail}`);
  } catch {
    say(`[webhook] ${line}`);
  }
}

await main();
