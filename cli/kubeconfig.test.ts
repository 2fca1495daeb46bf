import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadCliKubeConfig } from './kubeconfig.js';

let dir: string;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mesh-injector-kubeconfig-'));
  file = join(dir, 'kubeconfig');
  const cluster = (name: string, port: number) => ({
    name,
    cluster: { server: `https://127.0.0.1:${port}` },
  });
  await writeFile(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [cluster('one', 6443), cluster('two', 7443)],
      users: [{ name: 'admin', user: { token: 'x' } }],
      contexts: [
        { name: 'one', context: { cluster: 'one', user: 'admin' } },
        { name: 'two', context: { cluster: 'two', user: 'admin' } },
      ],
      'current-context': 'one',
    }),
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the CLI kubeconfig', () => {
  it('says there is none, and how to give one, when nothing names one', () => {
    const result = loadCliKubeConfig({}, {}, dir);
    expect(result).toEqual({ ok: false, reason: expect.stringContaining('no kubeconfig') });
    expect(!result.ok && result.reason).toContain('--kubeconfig FILE or KUBECONFIG=FILE');
  });

  it('names a KUBECONFIG or --kubeconfig that does not exist', () => {
    expect(loadCliKubeConfig({}, { KUBECONFIG: join(dir, 'gone') }, dir)).toMatchObject({
      ok: false,
      reason: expect.stringContaining(join(dir, 'gone')),
    });
    expect(loadCliKubeConfig({ kubeconfig: join(dir, 'gone') }, {}, dir)).toMatchObject({
      ok: false,
      reason: `kubeconfig ${join(dir, 'gone')} does not exist`,
    });
  });

  it('uses the current context, or the one --context names', () => {
    const current = loadCliKubeConfig({ kubeconfig: file }, {}, dir);
    expect(current.ok && current.kubeConfig.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
    const two = loadCliKubeConfig({ kubeconfig: file, context: 'two' }, {}, dir);
    expect(two.ok && two.kubeConfig.getCurrentCluster()?.server).toBe('https://127.0.0.1:7443');
    const viaEnv = loadCliKubeConfig({ context: 'two' }, { KUBECONFIG: file }, dir);
    expect(viaEnv.ok && viaEnv.kubeConfig.getCurrentCluster()?.server).toBe('https://127.0.0.1:7443');
  });

  it('refuses an unknown context, listing the known ones', () => {
    expect(loadCliKubeConfig({ kubeconfig: file, context: 'three' }, {}, dir)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('(it has: one, two)'),
    });
  });
});
