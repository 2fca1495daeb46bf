import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SHIPPED_CONFIG_DIR } from '../test/fixtures/pods.js';
import { runInject } from './inject.js';

const POD = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: b}]\n';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mesh-injector-inject-test-'));
  await writeFile(join(dir, 'pod.yaml'), POD);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function run(options: { file: string; config?: string; revision?: string }, stdin = '') {
  let stdout = '';
  let stderr = '';
  const exitCode = await runInject(
    { config: SHIPPED_CONFIG_DIR, ...options },
    { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) },
    () => Promise.resolve(stdin),
  );
  return { exitCode, stdout, stderr };
}

describe('mesh-injector inject', () => {
  it('injects a file and writes the stream to stdout, nothing to stderr', async () => {
    const { exitCode, stdout, stderr } = await run({ file: join(dir, 'pod.yaml') });
    expect(exitCode).toBe(0);
    expect(stderr).toBe('');
    expect(
      (parse(stdout) as { spec: { containers: { name: string }[] } }).spec.containers.map((c) => c.name),
    ).toEqual(['a', 'istio-proxy']);
  });

  it('reads stdin for -f -, naming it stdin in diagnostics', async () => {
    const optedOut = POD.replace('{name: p}', "{name: p, annotations: {sidecar.istio.io/inject: 'false'}}");
    const { exitCode, stdout, stderr } = await run({ file: '-' }, optedOut);
    expect(exitCode).toBe(0);
    expect(stdout).toBe(optedOut);
    expect(stderr).toBe(
      'skip: stdin: Pod "p" (document 1): not injected: sidecar.istio.io/inject is "false"\n',
    );
  });

  it('records --revision in istio.io/rev and the status annotation', async () => {
    const { stdout } = await run({ file: join(dir, 'pod.yaml'), revision: 'canary' });
    const annotations = (parse(stdout) as { metadata: { annotations: Record<string, string> } }).metadata
      .annotations;
    expect(annotations['istio.io/rev']).toBe('canary');
    expect(JSON.parse(annotations['sidecar.istio.io/status']!)).toMatchObject({ revision: 'canary' });
  });

  it('refuses a --revision that is not a DNS label, saying so', async () => {
    const { exitCode, stdout, stderr } = await run({ file: join(dir, 'pod.yaml'), revision: 'Not_A_Label' });
    expect(exitCode).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(
      'with --revision "Not_A_Label" does not load: values.revision: invalid value; expected a DNS label',
    );
  });

  it('names a missing input file and a missing config directory', async () => {
    const missingFile = await run({ file: join(dir, 'absent.yaml') });
    expect(missingFile).toMatchObject({ exitCode: 1, stdout: '' });
    expect(missingFile.stderr).toContain(`cannot read ${join(dir, 'absent.yaml')}`);
    const missingConfig = await run({ file: join(dir, 'pod.yaml'), config: join(dir, 'no-config') });
    expect(missingConfig).toMatchObject({ exitCode: 1, stdout: '' });
    expect(missingConfig.stderr).toContain(
      `${join(dir, 'no-config', 'template.yaml')} does not exist; fix: pass --config DIR`,
    );
  });

  it('uses the packaged configuration when --config is not given', async () => {
    const { exitCode, stdout } = await run({ file: join(dir, 'pod.yaml'), config: undefined });
    expect(exitCode).toBe(0);
    expect(stdout).toContain('istio-proxy');
  });
});
