/**
 * Every image in one place: a user's kustomize overlay that sets the webhook, init and proxy images with `images:`
 * changes the webhook Deployment and what the webhook injects, with no edit to values.yaml. The webhook runs as the
 * rendered Deployment would run it: the rendered ConfigMap as its config directory, the rendered env as its env.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { V1Container, V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CONTAINER_NAMES, IMAGE_ENV, INJECT_PATH } from '../common/constants.js';
import { loadConfig } from '../webhook/config.js';
import { findKubectl } from './harness/binaries.js';
import { findObject, renderKustomization, type ManifestObject } from './harness/manifests.js';
import { missingRequirements } from './harness/requirements.js';
import { repoPath } from './harness/repo.js';
import { postJson, startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';
import { admissionReview, typicalPod } from './fixtures/pods.js';

const MIRROR = {
  webhook: 'registry.example.com/mesh/webhook:0.1.0-mirrored',
  init: `registry.example.com/mesh/mesh-iptables@sha256:${'0123456789abcdef'.repeat(4)}`,
  proxy: 'registry.example.com/mirror/envoy:v1.39.6-distroless',
};

const OVERLAY_IMAGES = [
  {
    name: 'ghcr.io/mesh-injector/webhook',
    newName: 'registry.example.com/mesh/webhook',
    newTag: '0.1.0-mirrored',
  },
  {
    name: 'ghcr.io/mesh-injector/mesh-iptables',
    newName: 'registry.example.com/mesh/mesh-iptables',
    digest: `sha256:${'0123456789abcdef'.repeat(4)}`,
  },
  {
    name: 'docker.io/envoyproxy/envoy',
    newName: 'registry.example.com/mirror/envoy',
    newTag: 'v1.39.6-distroless',
  },
];

let dir: string;
let webhook: WebhookProcess | undefined;

/** A user's overlay, outside manifests/, as README's install section shows it. */
async function renderOverlay(kustomization: Record<string, unknown>): Promise<ManifestObject[]> {
  const overlay = join(dir, 'overlay');
  await mkdir(overlay, { recursive: true });
  await writeFile(
    join(overlay, 'kustomization.yaml'),
    stringify({ resources: [relative(overlay, repoPath('manifests'))], ...kustomization }),
  );
  return renderKustomization(overlay);
}

function webhookContainer(objects: ManifestObject[]): V1Container {
  const deployment = findObject(objects, 'Deployment', 'mesh-injector') as unknown as V1Deployment;
  const container = deployment.spec?.template.spec?.containers.find((c) => c.name === 'webhook');
  if (!container) throw new Error('the Deployment has no container named webhook');
  return container;
}

function envOf(container: V1Container): Record<string, string> {
  return Object.fromEntries(
    (container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]),
  );
}

/** The rendered ConfigMap's files, written out as the kubelet mounts them. */
async function writeConfigMap(objects: ManifestObject[], target: string): Promise<void> {
  const data = findObject(objects, 'ConfigMap', 'mesh-injector-config').data as Record<string, string>;
  await mkdir(target, { recursive: true });
  for (const [name, text] of Object.entries(data)) await writeFile(join(target, name), text);
}

interface PatchOperation {
  op: string;
  path: string;
  value?: unknown;
}

async function injectedImages(url: string, caPem: string): Promise<Record<string, string | undefined>> {
  const { body } = await postJson(`${url}${INJECT_PATH}`, caPem, admissionReview(typicalPod()));
  const response = (JSON.parse(body) as { response: { allowed: boolean; patch?: string } }).response;
  expect(response.allowed).toBe(true);
  const patch = JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString()) as PatchOperation[];
  const containers = patch
    .filter((op) => op.op === 'add' && /^\/spec\/(initContainers|containers)(\/|$)/.test(op.path))
    .flatMap((op) => (Array.isArray(op.value) ? op.value : [op.value]) as V1Container[]);
  const image = (name: string) => containers.find((c) => c.name === name)?.image;
  return { init: image(CONTAINER_NAMES.init), proxy: image(CONTAINER_NAMES.proxy) };
}

const missing = missingRequirements({ kubectl: findKubectl() !== undefined }, 'kustomize manifests');

describe.skipIf(missing.length > 0)('images set by kustomize', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-injector-images-'));
  });
  afterAll(async () => {
    await webhook?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the base Deployment names the images the shipped configuration would inject without it', async () => {
    const objects = renderKustomization();
    const env = envOf(webhookContainer(objects));
    const configDir = join(dir, 'base-config');
    await writeConfigMap(objects, configDir);
    const { values } = await loadConfig(configDir);
    expect({ proxy: env[IMAGE_ENV.proxy], init: env[IMAGE_ENV.init] }).toEqual(values.images);
  });

  it("an overlay's images: rewrites the webhook image and the images the webhook injects", async () => {
    const objects = await renderOverlay({ images: OVERLAY_IMAGES });
    const container = webhookContainer(objects);
    expect(container.image).toBe(MIRROR.webhook);
    const env = envOf(container);
    expect(env[IMAGE_ENV.init]).toBe(MIRROR.init);
    expect(env[IMAGE_ENV.proxy]).toBe(MIRROR.proxy);
    // The other variables are not images and stay as they were.
    expect(env.NODE_OPTIONS).toBe(envOf(webhookContainer(renderKustomization())).NODE_OPTIONS);

    const configDir = join(dir, 'config');
    await writeConfigMap(objects, configDir);
    webhook = await startWebhookProcess({
      configDir,
      env: { [IMAGE_ENV.init]: env[IMAGE_ENV.init]!, [IMAGE_ENV.proxy]: env[IMAGE_ENV.proxy]! },
    });
    expect(await injectedImages(webhook.url, webhook.ca.cert)).toEqual({
      init: MIRROR.init,
      proxy: MIRROR.proxy,
    });
  });
});
