/**
 * `npm start`: a local control plane with the webhook installed, where a newcomer sees a pod injected.
 * Builds kube-apiserver if it is not cached, starts etcd, kube-apiserver and the webhook, installs the
 * MutatingWebhookConfiguration from manifests/ pointed at the local webhook, creates a labelled namespace with a
 * demo pod, prints what was injected and a KUBECONFIG line, and stops everything on Ctrl-C or SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { findEtcd, findKubectl } from '../test/harness/binaries.js';
import { startControlPlane, type ControlPlane } from '../test/harness/control-plane.js';
import { repoPath } from '../test/harness/repo.js';
import { localWebhookConfiguration, toYamlDocument } from '../test/harness/webhook-configuration.js';
import { startWebhookProcess, type WebhookProcess } from '../test/harness/webhook-process.js';

const DEMO_NAMESPACE = 'demo';

const say = (line = '') => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
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

function printInjected(pod: V1Pod): void {
  say();
  say(`pod ${DEMO_NAMESPACE}/web, as kube-apiserver stored it:`);
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
