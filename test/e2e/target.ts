/** The cluster the end-to-end suite runs against (test/e2e/global-setup.ts), and kubectl for it. */
import { execa } from 'execa';
import { inject } from 'vitest';
import { findKubectl } from '../harness/binaries.js';

export interface E2eTarget {
  kubeconfig?: string;
  /** Why the suite cannot run here (outside CI only). */
  skip?: string;
  /** The image with /bin/sh, curl and `mesh-demo-echo PORT`. */
  demoImage: string;
  /** A command that SIGKILLs a container, given its runtime id as the last argument. */
  killContainer?: string[];
}

declare module 'vitest' {
  export interface ProvidedContext {
    e2e: E2eTarget;
  }
}

export const target: E2eTarget = inject('e2e');

export interface KubectlResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export async function kubectl(args: string[], input = ''): Promise<KubectlResult> {
  const binary = findKubectl();
  if (!binary || !target.kubeconfig) throw new Error('no kubectl or no cluster for the e2e suite');
  const result = await execa(binary, ['--kubeconfig', target.kubeconfig, ...args], { input, reject: false });
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
}

/** kubectl that throws with its stderr on a non-zero exit, and returns stdout. */
export async function must(args: string[], input = ''): Promise<string> {
  const result = await kubectl(args, input);
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout;
}

export async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await must([...args, '-o', 'json'])) as T;
}

export async function waitUntil(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** A namespace of this run's own (removed afterwards), labelled as given, with its default ServiceAccount. */
export async function createNamespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}`;
  await must(
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }),
  );
  await waitUntil(
    async () => (await kubectl(['-n', name, 'get', 'serviceaccount', 'default'])).exitCode === 0,
    60_000,
    `namespace ${name} has its default ServiceAccount`,
  );
  return name;
}

export async function deleteNamespace(name: string | undefined): Promise<void> {
  if (name) await kubectl(['delete', 'namespace', name, '--wait=false']);
}
