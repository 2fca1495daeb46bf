import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { SHIPPED_CONFIG_DIR } from '../test/fixtures/pods.js';
import { readConfigFiles } from '../webhook/config.js';
import { injectedObjects, runInject, type InjectIo, type InjectOptions } from './inject.js';

const POD = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: b}]\n';
const OPTED_OUT = POD.replace('{name: p}', "{name: q, annotations: {sidecar.istio.io/inject: 'false'}}");
const NO_CLUSTER = () => Promise.reject(new Error('no kubeconfig: KUBECONFIG is not set'));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mesh-injector-inject-test-'));
  await writeFile(join(dir, 'pod.yaml'), POD);
  await mkdir(join(dir, 'tree', 'nested'), { recursive: true });
  await writeFile(join(dir, 'tree', 'a.yaml'), POD);
  await writeFile(join(dir, 'tree', 'nested', 'b.yml'), OPTED_OUT);
  await writeFile(
    join(dir, 'tree', 'nested', 'c.json'),
    JSON.stringify(parse(POD.replace('{name: p}', '{name: c}'))),
  );
  await writeFile(join(dir, 'tree', 'README.md'), '# not a manifest\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function run(options: Partial<InjectOptions>, io: Partial<InjectIo> = {}) {
  let stdout = '';
  let stderr = '';
  const exitCode = await runInject(
    { files: [join(dir, 'pod.yaml')], config: SHIPPED_CONFIG_DIR, ...options },
    {
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
      stdin: () => Promise.resolve(''),
      installedConfig: NO_CLUSTER,
      ...io,
    },
  );
  return { exitCode, stdout, stderr, lines: stderr.split('\n').filter(Boolean) };
}

const containers = (text: string) =>
  (parse(text) as { spec: { containers: { name: string; image: string }[] } }).spec.containers;

describe('mesh-injector inject', () => {
  it('injects a file to stdout, and says on stderr which configuration it used and what it injected', async () => {
    const { exitCode, stdout, lines } = await run({});
    expect(exitCode).toBe(0);
    expect(containers(stdout).map((c) => c.name)).toEqual(['a', 'istio-proxy']);
    expect(lines).toEqual([
      `config: ${SHIPPED_CONFIG_DIR} (--config)`,
      `injected: ${join(dir, 'pod.yaml')}: Pod "p" (document 1)`,
    ]);
  });

  it('reads stdin for -f -, naming it stdin, one line per object', async () => {
    const { exitCode, stdout, lines } = await run(
      { files: ['-'] },
      { stdin: () => Promise.resolve(`${OPTED_OUT}---\n${POD}`) },
    );
    expect(exitCode).toBe(0);
    expect(parseAllDocuments(stdout)).toHaveLength(2);
    expect(lines.slice(1)).toEqual([
      'skip: stdin: Pod "q" (document 1): not injected: sidecar.istio.io/inject is "false"',
      'injected: stdin: Pod "p" (document 2)',
    ]);
  });

  it('walks a directory for *.yaml, *.yml and *.json, in name order, into one stream', async () => {
    const { exitCode, stdout, lines } = await run({ files: [join(dir, 'tree')] });
    expect(exitCode).toBe(0);
    const documents = parseAllDocuments(stdout).map((d) => d.toJS() as { metadata: { name: string } });
    expect(documents.map((d) => d.metadata.name)).toEqual(['p', 'q', 'c']);
    expect(lines.slice(1).map((line) => line.split(':')[0])).toEqual(['injected', 'skip', 'injected']);
    expect(lines.join('\n')).not.toContain('README.md');
  });

  it('writes -o FILE instead of stdout', async () => {
    const output = join(dir, 'out.yaml');
    const { exitCode, stdout } = await run({ output });
    expect(exitCode).toBe(0);
    expect(stdout).toBe('');
    expect(containers(await readFile(output, 'utf8')).map((c) => c.name)).toContain('istio-proxy');
  });

  it('writes nothing when an object is denied, naming the annotation', async () => {
    const output = join(dir, 'denied.yaml');
    const bad = POD.replace(
      '{name: p}',
      "{name: p, annotations: {sidecar.istio.io/proxyImage: 'Not An Image'}}",
    );
    const { exitCode, stdout, stderr } = await run(
      { files: ['-'], output },
      { stdin: () => Promise.resolve(bad) },
    );
    expect(exitCode).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^error: stdin: Pod "p" \(document 1\): .*sidecar\.istio\.io\/proxyImage/m);
    await expect(readFile(output, 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it("uses the cluster's installed configuration by default, with the images its Deployment sets", async () => {
    const files = await readConfigFiles(SHIPPED_CONFIG_DIR);
    const { exitCode, stdout, lines } = await run(
      { config: undefined },
      {
        installedConfig: () =>
          Promise.resolve({
            config: { files, images: { proxy: 'mirror.example.com/envoy:1' } },
            where: 'ConfigMap mesh-injector/mesh-injector-config in context test',
          }),
      },
    );
    expect(exitCode).toBe(0);
    expect(lines[0]).toBe(
      "config: the cluster's, ConfigMap mesh-injector/mesh-injector-config in context test",
    );
    expect(containers(stdout).find((c) => c.name === 'istio-proxy')?.image).toBe(
      'mirror.example.com/envoy:1',
    );
  });

  it('falls back to the packaged configuration when no cluster answers, saying why', async () => {
    const { exitCode, lines } = await run({ config: undefined });
    expect(exitCode).toBe(0);
    expect(lines[0]).toMatch(
      /^config: the packaged .*manifests\/config \(no installed configuration: no kubeconfig: KUBECONFIG is not set\)$/,
    );
  });

  it('never asks the cluster with --offline', async () => {
    let asked = false;
    const { exitCode, lines } = await run(
      { config: undefined, offline: true },
      {
        installedConfig: () => {
          asked = true;
          return NO_CLUSTER();
        },
      },
    );
    expect(exitCode).toBe(0);
    expect(asked).toBe(false);
    expect(lines[0]).toMatch(/^config: the packaged .* \(--offline\)$/);
  });

  it("reads istioctl's --valuesFile, --meshConfigFile and --injectConfigFile in Istio's formats, with the istiod profile", async () => {
    // What `kubectl get cm istio-sidecar-injector -o jsonpath='{.data.values}'` (and `{.data.config}`, and the
    // istio ConfigMap's `{.data.mesh}`) print.
    const values = join(dir, 'values.json');
    const mesh = join(dir, 'mesh.yaml');
    const injectConfig = join(dir, 'config.yaml');
    await writeFile(values, JSON.stringify({ global: { hub: 'mirror.example.com/istio', tag: '1.27.0' } }));
    await writeFile(mesh, 'defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: "true"\n');
    await writeFile(
      injectConfig,
      'policy: enabled\ninjectedAnnotations:\n  example.com/injected: "yes"\ntemplates:\n  sidecar: "{{ .Values }}"\n',
    );
    const { exitCode, stdout, lines } = await run({
      config: undefined,
      valuesFile: values,
      meshConfigFile: mesh,
      injectConfigFile: injectConfig,
    });
    expect(exitCode).toBe(0);
    expect(lines[0]).toMatch(
      /^config: profile istiod \(.*\), with --injectConfigFile .*config\.yaml, --valuesFile .*values\.json, --meshConfigFile .*mesh\.yaml$/,
    );
    const pod = parse(stdout) as {
      metadata: { annotations: Record<string, string> };
      spec: { initContainers: { name: string; image: string; env?: { name: string; value: string }[] }[] };
    };
    const proxy = pod.spec.initContainers.find((c) => c.name === 'istio-proxy');
    expect(proxy?.image).toBe('mirror.example.com/istio/proxyv2:1.27.0');
    expect(proxy?.env?.at(-1)).toEqual({ name: 'ISTIO_META_DNS_CAPTURE', value: 'true' });
    expect(pod.metadata.annotations['example.com/injected']).toBe('yes');
  });

  it("names the key of Istio's values it cannot take, and refuses Istio's flags with a configuration without Istio's inputs", async () => {
    const values = join(dir, 'bad-values.json');
    await writeFile(values, JSON.stringify({ global: { proxy: { statusPortt: 15020 } } }));
    const unknown = await run({ config: undefined, valuesFile: values });
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toContain(`--valuesFile ${values}: global.proxy.statusPortt: unknown key`);

    const mismatch = await run({ valuesFile: values });
    expect(mismatch.exitCode).toBe(1);
    expect(mismatch.stderr).toContain(
      "--valuesFile take Istio's formats, which only a configuration with Istio's inputs reads",
    );
  });

  it('records --revision in istio.io/rev and the status annotation', async () => {
    const { stdout } = await run({ revision: 'canary' });
    const annotations = (parse(stdout) as { metadata: { annotations: Record<string, string> } }).metadata
      .annotations;
    expect(annotations['istio.io/rev']).toBe('canary');
    expect(JSON.parse(annotations['sidecar.istio.io/status']!)).toMatchObject({ revision: 'canary' });
  });

  it('refuses a --revision that is not a DNS label, saying so', async () => {
    const { exitCode, stdout, stderr } = await run({ revision: 'Not_A_Label' });
    expect(exitCode).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(
      'with --revision "Not_A_Label" does not load: values.revision: invalid value; expected a DNS label',
    );
  });

  it('names a missing input, a missing config directory and a missing profile', async () => {
    const missingFile = await run({ files: [join(dir, 'absent.yaml')] });
    expect(missingFile).toMatchObject({ exitCode: 1, stdout: '' });
    expect(missingFile.stderr).toContain(`cannot read ${join(dir, 'absent.yaml')}`);
    const missingConfig = await run({ config: join(dir, 'no-config') });
    expect(missingConfig).toMatchObject({ exitCode: 1, stdout: '' });
    expect(missingConfig.stderr).toContain(`${join(dir, 'no-config', 'template.yaml')} does not exist`);
    const missingProfile = await run({ config: undefined, profile: 'no-such-profile' });
    expect(missingProfile.stderr).toContain('no profile "no-such-profile" in this package');
  });
});

describe('injectedObjects', () => {
  it('names the documents and List items whose content changed', () => {
    const before = `${POD}---\nkind: List\napiVersion: v1\nitems: [{kind: A, metadata: {name: x}}, {kind: B, metadata: {name: web, namespace: ns}}]\n`;
    const after = `${POD.replace('image: b', 'image: c')}---\nkind: List\napiVersion: v1\nitems: [{kind: A, metadata: {name: x}}, {kind: B, metadata: {name: web, namespace: ns}, spec: {}}]\n`;
    expect(injectedObjects(before, after)).toEqual([
      'Pod "p" (document 1)',
      'B "ns/web" (document 2, item 2)',
    ]);
  });
});
