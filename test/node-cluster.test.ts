import { afterAll, describe, expect, it } from 'vitest';
import { IMAGES, ensureImages } from './harness/images.js';
import { describeProcess, leftovers, sharedEntries } from './harness/leftovers.js';
import {
  type NodeCluster,
  nodeClusterRequirements,
  pidsWithArgument,
  startNodeCluster,
} from './harness/node-cluster.js';
import { descendants, isRunning } from './harness/proc.js';
import { missingRequirements } from './harness/requirements.js';

const missing = missingRequirements(nodeClusterRequirements(), 'node cluster');
const PAUSE_IMAGE = IMAGES.pause;

describe.skipIf(missing.length > 0)('a one-node cluster in a network namespace', () => {
  let cluster: NodeCluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
  });

  it('runs a pod, is reachable from the machine, and stop() leaves nothing behind', async () => {
    const sharedBefore = await sharedEntries();
    const images = await ensureImages();
    cluster = await startNodeCluster({ pauseImage: PAUSE_IMAGE, images });
    const traces = {
      dir: cluster.paths.dir,
      netnsName: cluster.network.name,
      hostVeth: cluster.network.hostVeth,
      containerdRoot: cluster.paths.containerdRoot,
    };
    const { kubectl } = cluster;

    // From the machine itself, through the veth: the kubeconfig names the node IP.
    const nodes = await kubectl(['get', 'nodes', '-o', 'jsonpath={.items[*].status.addresses[0].address}']);
    expect(nodes.stdout).toBe(cluster.network.addresses.nodeIp);

    await waitUntil(async () => (await kubectl(['get', 'serviceaccount', 'default'])).exitCode === 0);
    const pod = await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'sleeper', namespace: 'default' },
        spec: {
          containers: [{ name: 'sleeper', image: PAUSE_IMAGE, imagePullPolicy: 'Never' }],
          terminationGracePeriodSeconds: 1,
        },
      }),
    });
    expect(pod.exitCode, pod.stderr).toBe(0);
    const ready = await kubectl(['wait', '--for=condition=Ready', 'pod/sleeper', '--timeout=120s']);
    expect(ready.exitCode, ready.stderr).toBe(0);
    const podIp = await kubectl(['get', 'pod', 'sleeper', '-o', 'jsonpath={.status.podIP}']);
    expect(podIp.stdout).toMatch(
      new RegExp(`^${cluster.network.addresses.podCidr.split('.').slice(0, 3).join('\\.')}\\.`),
    );

    // The pod's processes are children of containerd's shims, which outlive containerd unless stopped.
    const shims = await pidsWithArgument(cluster.paths.containerdSocket);
    const podProcesses = await descendants(shims);
    expect(shims.length).toBeGreaterThan(0);
    expect(podProcesses.length).toBeGreaterThan(0);
    const clusterProcesses = Object.values(cluster.pids);

    await cluster.stop();
    cluster = undefined;

    expect(await leftovers(traces, sharedBefore)).toEqual([]);
    const alive = [...shims, ...podProcesses, ...clusterProcesses].filter(isRunning);
    expect(await Promise.all(alive.map(describeProcess))).toEqual([]);
  }, 600_000);
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not true after ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
