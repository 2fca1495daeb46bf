/**
 * SIGTERM to the `npm start` process alone (as `timeout` or a supervisor sends it, not to the process group) stops
 * everything it started. npm forwards the signal to its child; package.json's `exec` makes that child the demo
 * itself, not a shell that would die and leave the demo, etcd and kube-apiserver running.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { controlPlaneRequirements } from './harness/control-plane.js';
import { describeProcess, leftovers, sharedEntries } from './harness/leftovers.js';
import { nodeClusterRequirements } from './harness/node-cluster.js';
import { descendants, isRunning } from './harness/proc.js';
import { REPO_ROOT } from './harness/repo.js';
import { missingRequirements } from './harness/requirements.js';

const missingForControlPlane = missingRequirements(controlPlaneRequirements(), 'npm start (control plane)');
const missingForNode = missingRequirements(nodeClusterRequirements(), 'npm start (node)');

describe('npm start', () => {
  it.skipIf(missingForControlPlane.length > 0)(
    'stops etcd, kube-apiserver and the webhook when the npm process alone gets SIGTERM (control plane only)',
    async () => {
      const npm = startNpm({ MESH_INJECTOR_START: 'control-plane' });
      const { kubeconfig } = await upToKubeconfigLine(npm);
      const started = await descendants([npm.process.pid ?? -1]);
      expect(started.length).toBeGreaterThanOrEqual(3);

      await terminate(npm.process, started);

      expect(await Promise.all(started.filter(isRunning).map(describeProcess))).toEqual([]);
      expect(existsSync(dirname(kubeconfig))).toBe(false);
    },
    300_000,
  );

  it.skipIf(missingForNode.length > 0)(
    'runs the demo on the node, prints export KUBECONFIG=, and leaves nothing behind after SIGTERM to npm',
    async () => {
      const sharedBefore = await sharedEntries();
      const npm = startNpm({});
      const { kubeconfig, output } = await upToKubeconfigLine(npm);
      const network = /network namespace (mesh-node-\w+), node [\d.]+, veth (\w+)/.exec(output);
      expect(output).toMatch(/istio-init Completed \(exit 0\)/);
      expect(output).toMatch(/answered: peer=127\.0\.0\.6/);
      const started = await descendants([npm.process.pid ?? -1]);

      await terminate(npm.process, started);

      const traces = {
        dir: dirname(kubeconfig),
        netnsName: network?.[1] ?? '?',
        hostVeth: network?.[2] ?? '?',
      };
      expect(await leftovers(traces, sharedBefore)).toEqual([]);
      expect(await Promise.all(started.filter(isRunning).map(describeProcess))).toEqual([]);
    },
    900_000,
  );
});

function startNpm(env: Record<string, string>): {
  process: ChildProcessWithoutNullStreams;
  output: () => string;
} {
  const child = spawn('npm', ['start'], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { process: child, output: () => output };
}

/** Resolves with the path `export KUBECONFIG=` names once npm start prints it; rejects if npm exits first. */
function upToKubeconfigLine(
  npm: ReturnType<typeof startNpm>,
): Promise<{ kubeconfig: string; output: string }> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = /^export KUBECONFIG=(.+)$/m.exec(npm.output());
      if (match?.[1]) resolve({ kubeconfig: match[1], output: npm.output() });
    };
    npm.process.stdout.on('data', check);
    npm.process.stderr.on('data', check);
    npm.process.once('exit', (code) =>
      reject(new Error(`npm start exited (${code}) before it was up:\n${npm.output()}`)),
    );
  });
}

/** SIGTERM to npm only; resolves once npm and every process it had started have exited. */
async function terminate(npm: ChildProcessWithoutNullStreams, started: number[]): Promise<void> {
  const exited = new Promise((resolve) => npm.once('exit', resolve));
  npm.kill('SIGTERM');
  await exited;
  const deadline = Date.now() + 30_000;
  while (started.some(isRunning) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 200));
}
