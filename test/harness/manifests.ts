/**
 * manifests/ as kustomize renders it, for tests: the objects, and the same objects applied to a test control plane.
 * The test kube-apiserver is v1.20, older than the clusters the manifests target; where an API version it lacks
 * has an older equivalent with the same fields, the object is sent in that version (see forServedVersions).
 */
import { execFileSync } from 'node:child_process';
import { parseAllDocuments, stringify } from 'yaml';
import { findKubectl } from './binaries.js';
import type { ControlPlane } from './control-plane.js';
import { repoPath } from './repo.js';

export interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** `kubectl kustomize <dir>`, parsed; `dir` is relative to the repository unless absolute. */
export function renderKustomization(dir = repoPath('manifests')): ManifestObject[] {
  const kubectl = findKubectl();
  if (!kubectl) throw new Error('kubectl not found: put it on PATH or set TEST_ASSET_KUBECTL');
  const output = execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8' });
  return parseAllDocuments(output).map((document) => document.toJS() as ManifestObject);
}

export function findObject(objects: ManifestObject[], kind: string, name: string): ManifestObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) {
    const present = objects.map((object) => `${object.kind}/${object.metadata.name}`).join(', ');
    throw new Error(`no ${kind}/${name} among the rendered objects (${present})`);
  }
  return found;
}

/** policy/v1 PodDisruptionBudget became GA in 1.21; v1beta1 has the same fields for minAvailable. */
export function forServedVersions(objects: ManifestObject[], served: Set<string>): ManifestObject[] {
  return objects.map((object) =>
    object.kind === 'PodDisruptionBudget' && object.apiVersion === 'policy/v1' && !served.has('policy/v1')
      ? { ...object, apiVersion: 'policy/v1beta1' }
      : object,
  );
}

export function toYamlStream(objects: ManifestObject[]): string {
  return objects.map((object) => stringify(object, { aliasDuplicateObjects: false })).join('---\n');
}

/** Applies the objects (as admin) and returns what kubectl printed; throws with kubectl's stderr on failure. */
export async function applyObjects(
  controlPlane: ControlPlane,
  objects: ManifestObject[],
  extraArgs: string[] = [],
): Promise<string> {
  const versions = await controlPlane.kubectl(['api-versions']);
  if (versions.exitCode !== 0) throw new Error(`kubectl api-versions failed: ${versions.stderr}`);
  const served = new Set(versions.stdout.split('\n').map((line) => line.trim()));
  const yaml = toYamlStream(forServedVersions(objects, served));
  const result = await controlPlane.kubectl(['apply', ...extraArgs, '-f', '-'], { input: yaml });
  if (result.exitCode !== 0) throw new Error(`kubectl apply ${extraArgs.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}
