/**
 * SIGTERM to the `npm start` process alone (as `timeout` or a supervisor sends it, not to the process group) stops
 * everything it started. npm forwards the signal to its child; package.json's `exec` makes that child the demo
 * itself, not a shell that would die and leave the demo, etcd and kube-apiserver running. This runs the control
 * plane fallback (MESH_INJECTOR_START=control-plane); the node's own signal handling is in node-cluster.test.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { controlPlaneRequirements } from './harness/control-plane.js';
import { descendants, isAlive } from './harness/leftovers.js';
import { REPO_ROOT } from './harness/repo.js';
import { missingRequirements } from './harness/requirements.js';

const missing = missingRequirements(controlPlaneRequirements(), 'npm start');

describe.skipIf(missing.length > 0)('npm start', () => {
  it('stops etcd, kube-apiserver and the webhook when the npm process alone gets SIGTERM', async () => {
    const npm = spawn('npm', ['start'], {
      cwd: REPO_ROOT,
      env: { ...process.env, MESH_INJECTOR_START: 'control-plane' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const kubeconfig = await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /^export KUBECONFIG=(.+)$/m.exec(output);
        if (match?.[1]) resolve(match[1]);
      };
      npm.stdout.on('data', onData);
      npm.stderr.on('data', onData);
      npm.once('exit', (code) =>
        reject(new Error(`npm start exited (${code}) before it was up:\n${output}`)),
      );
    });
    const started = await descendants([npm.pid ?? -1]);
    expect(started.length).toBeGreaterThanOrEqual(3);

    const exited = new Promise((resolve) => npm.once('exit', resolve));
    process.kill(npm.pid ?? -1, 'SIGTERM');
    await exited;
    await waitUntil(() => started.every((pid) => !isAlive(pid)), 15_000);

    expect(started.filter(isAlive)).toEqual([]);
    expect(existsSync(dirname(kubeconfig))).toBe(false);
  }, 300_000);
});

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
}
