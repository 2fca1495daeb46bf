/**
 * Every pod the istiod profile renders is one the real apiserver accepts: the workloads of test/fixtures/all-kinds.yaml
 * (every kind inject handles, with probes rewritten) are injected with manifests/profiles/istiod and created with
 * a server-side dry run. The apiserver is v1.20, which has no native sidecars (initContainers[].restartPolicy), so
 * the classic layout is what is dry-run here; the native layout differs only by that field and the proxy's place.
 * Two adjustments for this control plane, both outside what the profile renders: its apiserver runs without the
 * ServiceAccount admission plugin (no controller creates `default`), which in a cluster sets
 * `serviceAccountName: default` that Istio's projected token volume needs, so the pods name it; and kubectl's
 * client-side schema is v1.20's, which lacks status fields Go's newer types write (StatefulSet
 * `status.availableReplicas`), so it runs with --validate=false; the apiserver still validates every object.
 */
import { readFile } from 'node:fs/promises';
import { isMap, parseAllDocuments, type YAMLMap } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { injectManifests } from '../cli/inject-manifests.js';
import { loadConfig } from '../webhook/config.js';
import { startControlPlane, controlPlaneRequirements, type ControlPlane } from './harness/control-plane.js';
import { repoPath } from './harness/repo.js';
import { missingRequirements } from './harness/requirements.js';

const missing = missingRequirements(
  controlPlaneRequirements(),
  'istiod profile dry run against kube-apiserver',
);

describe.skipIf(missing.length > 0)('pods rendered by the istiod profile, on a real kube-apiserver', () => {
  let controlPlane: ControlPlane;

  beforeAll(async () => {
    controlPlane = await startControlPlane();
  });

  afterAll(async () => {
    await controlPlane?.stop();
  });

  it('are accepted by a server-side dry run (classic layout), every workload kind', async () => {
    const config = await loadConfig(repoPath('manifests', 'profiles', 'istiod'));
    const manifest = withServiceAccount(
      await readFile(repoPath('test', 'fixtures', 'all-kinds.yaml'), 'utf8'),
    );
    const result = injectManifests(manifest, { ...config, nativeSidecars: false });
    if (!result.ok) throw new Error(JSON.stringify(result.diagnostics));
    expect(result.results.filter((r) => r.outcome === 'injected').length).toBeGreaterThanOrEqual(9);
    const applied = await controlPlane.kubectl(
      ['apply', '--dry-run=server', '--validate=false', '-n', 'default', '-f', '-'],
      {
        input: result.text,
      },
    );
    expect(applied.stderr).toBe('');
    expect(applied.exitCode).toBe(0);
    expect(applied.stdout).toContain('deployment.apps/hello-deployment created (server dry run)');
    expect(applied.stdout).toContain('cronjob.batch/hello-cronjob created (server dry run)');
  });
});

/** Every pod spec in the stream (any depth) names the `default` ServiceAccount. */
function withServiceAccount(text: string): string {
  const visit = (node: unknown): void => {
    if (!isMap(node)) {
      if (
        node &&
        typeof node === 'object' &&
        'items' in node &&
        Array.isArray((node as { items: unknown[] }).items)
      )
        (node as { items: unknown[] }).items.forEach(visit);
      return;
    }
    const map = node as YAMLMap;
    if (map.has('containers') && !map.has('serviceAccountName')) map.set('serviceAccountName', 'default');
    for (const pair of map.items) visit(pair.value);
  };
  return parseAllDocuments(text, { version: '1.1' })
    .map((document) => {
      visit(document.contents);
      return document.toString();
    })
    .join('---\n');
}
