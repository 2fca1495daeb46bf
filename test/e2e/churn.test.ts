/**
 * 100 pod creates in a labelled namespace while webhook replicas go away: first one replica is deleted gracefully
 * (its shutdown delay covers the time the Service needs to drop it, so no create fails), then one is killed with
 * SIGKILL (creates routed to it fail until the endpoint goes; the failure policy refuses them). Never is a pod
 * stored without its sidecar. The pods select no node, so they are stored, not run.
 */
import { ApiException, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deleteNamespace, getJson, must, target, waitUntil } from './target.js';
import { type Pod, podsWithLabel } from './workloads.js';

const CREATES = 100;
const MOST_DURING_GRACEFUL = 60;
const PACE_MS = 100;
const INJECTOR = { namespace: 'mesh-injector', selector: 'app.kubernetes.io/name=mesh-injector' };

interface CreateResult {
  phase: 'graceful' | 'killed';
  injected?: boolean;
  refusal?: string;
}

describe.skipIf(target.skip !== undefined)(
  'pod creates while webhook replicas are deleted and killed',
  () => {
    let namespace: string;
    let core: CoreV1Api;

    beforeAll(async () => {
      namespace = await createNamespace('e2e-churn', { 'istio-injection': 'enabled' });
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(target.kubeconfig ?? '');
      core = kubeConfig.makeApiClient(CoreV1Api);
    });

    afterAll(async () => {
      await deleteNamespace(namespace);
      await must([
        '-n',
        INJECTOR.namespace,
        'rollout',
        'status',
        'deployment/mesh-injector',
        '--timeout=180s',
      ]);
    });

    it(`injects or refuses each of ${CREATES} creates, and stores no pod without its sidecar`, async () => {
      if (!target.killContainer)
        throw new Error('E2E_KILL_CONTAINER is not set: no way to SIGKILL a replica here');
      const results: CreateResult[] = [];
      const create = async (phase: CreateResult['phase']) => {
        results.push({ phase, ...(await createPod(core, namespace, results.length)) });
      };

      // Graceful: creates keep coming until the deleted replica has left.
      const [deleted] = await readyReplicas();
      await must(['-n', INJECTOR.namespace, 'delete', 'pod', deleted?.metadata.name ?? '', '--wait=false']);
      while (results.length < MOST_DURING_GRACEFUL && (await exists(deleted?.metadata.name ?? ''))) {
        await create('graceful');
        await new Promise((resolve) => setTimeout(resolve, PACE_MS));
      }
      // Both replicas again, so that the kill takes one of two and the other keeps serving.
      await waitUntil(async () => (await readyReplicas()).length >= 2, 180_000, 'two replicas are Ready');

      // SIGKILL: the container's process dies at once; the rest of the creates follow.
      const [victim] = await readyReplicas();
      const containerId = victim?.status.containerStatuses?.[0]?.containerID?.replace(/^\w+:\/\//, '');
      if (!containerId) throw new Error('no container id for a webhook replica');
      const [command, ...args] = target.killContainer;
      await execa(command ?? '', [...args, containerId]);
      while (results.length < CREATES) await create('killed');

      const graceful = results.filter((result) => result.phase === 'graceful');
      const killed = results.filter((result) => result.phase === 'killed');
      const refused = killed.filter((result) => result.refusal !== undefined);
      console.info(
        `churn: ${graceful.length} creates during graceful deletion (${graceful.filter((r) => r.injected).length} injected); ` +
          `${killed.length} after SIGKILL: ${killed.filter((r) => r.injected).length} injected, ${refused.length} refused` +
          (refused[0] ? ` (e.g. ${refused[0].refusal})` : ''),
      );

      expect(graceful.length).toBeGreaterThan(0);
      expect(graceful.filter((result) => !result.injected)).toEqual([]);
      for (const result of killed) {
        if (result.refusal === undefined) expect(result.injected).toBe(true);
        else expect(result.refusal).toMatch(/failed calling webhook "[^"]+"/);
      }
      const stored = (await getJson<{ items: Pod[] }>(['-n', namespace, 'get', 'pods'])).items;
      expect(stored).toHaveLength(results.filter((result) => result.injected).length);
      expect(stored.filter((pod) => !isInjected(pod)).map((pod) => pod.metadata.name)).toEqual([]);
    });
  },
);

async function createPod(
  core: CoreV1Api,
  namespace: string,
  index: number,
): Promise<Omit<CreateResult, 'phase'>> {
  const body: V1Pod = {
    metadata: { name: `churn-${index}` },
    spec: {
      // Stored, never scheduled: the test is about admission, and 100 running pods would swamp two cores.
      nodeSelector: { 'e2e.mesh-injector.io/unschedulable': 'true' },
      containers: [{ name: 'app', image: target.demoImage, command: ['mesh-demo-echo', '8080'] }],
    },
  };
  try {
    const stored = await core.createNamespacedPod({ namespace, body });
    return { injected: isInjected(stored as Pod) };
  } catch (error) {
    if (error instanceof ApiException) {
      return { refusal: statusMessage(error.body) };
    }
    throw error;
  }
}

/** The apiserver's message from a Status body, or the body as it came. */
function statusMessage(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  try {
    return (JSON.parse(text) as { message?: string }).message ?? text;
  } catch {
    return text;
  }
}

function isInjected(pod: Pick<Pod, 'spec'>): boolean {
  return (
    (pod.spec.initContainers ?? []).some((container) => container.name === 'istio-init') &&
    pod.spec.containers.some((container) => container.name === 'istio-proxy')
  );
}

async function readyReplicas(): Promise<Pod[]> {
  const pods = await podsWithLabel(INJECTOR.namespace, INJECTOR.selector);
  return pods.filter(
    (pod: Pod & { metadata: { deletionTimestamp?: string } }) =>
      pod.metadata.deletionTimestamp === undefined &&
      pod.status.containerStatuses?.every((status) => status.ready),
  );
}

async function exists(name: string): Promise<boolean> {
  const result = await must(['-n', INJECTOR.namespace, 'get', 'pods', '-o', 'name']);
  return result.split('\n').includes(`pod/${name}`);
}
