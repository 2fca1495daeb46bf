/**
 * What `mesh-injector serve` loads: @peculiar/x509 (about 20 MiB of RSS) only with --manage-certificates, the one
 * path that uses it, and @kubernetes/client-node (about 75 MiB) only when there is a kubeconfig to reach a cluster
 * with (the apiserver's version and the node watch; no request needs it otherwise). Runs the built serve() in a child Node process
 * whose module resolution is recorded (module.registerHooks, Node 22.15 and newer).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as nodeModule from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueServingCert } from '../common/pki.js';
import { repoPath } from './harness/repo.js';

const SERVE_MODULE = pathToFileURL(repoPath('dist', 'cli', 'serve.js')).href;
const hasRegisterHooks = 'registerHooks' in nodeModule;
const X509 = '/node_modules/@peculiar/x509/';
const CLIENT_NODE = '/node_modules/@kubernetes/client-node/';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mesh-injector-startup-'));
  const ca = await createCA({ commonName: 'startup-test-ca', validityDays: 1 });
  const serving = await issueServingCert(ca, { ipAddresses: ['127.0.0.1'], validityDays: 1 });
  await writeFile(join(dir, 'tls.crt'), serving.cert);
  await writeFile(join(dir, 'tls.key'), serving.key, { mode: 0o600 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts and stops serve() in a fresh process; returns every module URL it resolved. */
async function modulesLoadedByServe(kubeconfig: string): Promise<string[]> {
  const script = `
    import { registerHooks } from 'node:module';
    const resolved = new Set();
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); resolved.add(r.url); return r; } });
    const { serve } = await import(${JSON.stringify(SERVE_MODULE)});
    const running = await serve({
      port: 0, host: '127.0.0.1', tlsCert: ${JSON.stringify(join(dir, 'tls.crt'))},
      tlsKey: ${JSON.stringify(join(dir, 'tls.key'))}, config: ${JSON.stringify(repoPath('manifests', 'config'))},
      kubeconfig: ${JSON.stringify(kubeconfig)}, shutdownDelayMs: 0, logLevel: 'silent',
    });
    await running.shutdown();
    process.stdout.write(JSON.stringify([...resolved]));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    timeout: 60_000,
  });
  return JSON.parse(stdout) as string[];
}

describe.skipIf(!hasRegisterHooks)(
  'modules loaded at start (needs module.registerHooks, Node ≥ 22.15)',
  () => {
    it('serves without loading @peculiar/x509 when certificates are not managed', async () => {
      const modules = await modulesLoadedByServe(join(dir, 'missing-kubeconfig'));
      expect(modules.some((url) => url.includes('/node_modules/fastify/'))).toBe(true);
      expect(modules.filter((url) => url.includes(X509))).toEqual([]);
    });

    it('serves without loading @kubernetes/client-node when the kubeconfig does not exist', async () => {
      const modules = await modulesLoadedByServe(join(dir, 'missing-kubeconfig'));
      expect(modules.some((url) => url.includes('/node_modules/fastify/'))).toBe(true);
      expect(modules.filter((url) => url.includes(CLIENT_NODE))).toEqual([]);
    });

    it('loads @kubernetes/client-node when a kubeconfig names a cluster to ask', async () => {
      // A cluster on a closed loopback port: the version call fails fast, but the client had to be loaded for it.
      const kubeconfig = join(dir, 'kubeconfig');
      await writeFile(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
          users: [{ name: 'u', user: { token: 'unused' } }],
          contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'x',
        }),
      );
      const modules = await modulesLoadedByServe(kubeconfig);
      expect(modules.some((url) => url.includes(CLIENT_NODE))).toBe(true);
    });
  },
);
