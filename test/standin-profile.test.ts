/**
 * The stand-in profile (manifests/profiles/standin): the sidecar template swap that runs the stand-in proxy image
 * in Envoy's place with no code change. A kustomize Component merges its template.yaml into the shipped ConfigMap;
 * the images come from the Deployment's environment, as on any install. Injected through the webhook's own code,
 * its pods differ from the shipped configuration's only in the proxy's image, command and arguments: the same init
 * container, probes, hardening and volumes.
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONTAINER_NAMES, PORTS } from '../common/constants.js';
import { CONFIG_FILES, loadConfig, readConfigFiles, type InjectorConfig } from '../webhook/config.js';
import { injectPod } from '../webhook/inject.js';
import { findKubectl } from './harness/binaries.js';
import { IMAGES } from './harness/images.js';
import { findObject, renderKustomization } from './harness/manifests.js';
import { repoPath } from './harness/repo.js';
import { missingRequirements } from './harness/requirements.js';
import { proxyHardeningGaps } from './harness/sidecar-hardening.js';
import { STANDIN_PROFILE_DIR, loadStandinConfig } from './harness/standin-profile.js';
import { SHIPPED_CONFIG_DIR } from './harness/webhook-process.js';

const POD: V1Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'app', namespace: 'demo', labels: { app: 'app' } },
  spec: { containers: [{ name: 'app', image: IMAGES.demo, ports: [{ containerPort: 8080 }] }] },
};

function inject(config: InjectorConfig, nativeSidecars: boolean): V1Pod {
  const result = injectPod(POD, 'demo', { ...config, nativeSidecars });
  if (result.outcome !== 'injected') throw new Error(`not injected: ${JSON.stringify(result)}`);
  return result.pod;
}

function proxyOf(pod: V1Pod): V1Container {
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const proxy = all.find((container) => container.name === CONTAINER_NAMES.proxy);
  if (!proxy) throw new Error('no proxy container');
  return proxy;
}

const STATUS_ANNOTATION = 'sidecar.istio.io/status';

/**
 * The pod with the proxy's image, command, arguments and environment taken out, and the status annotation's
 * template version (a hash of the template, which differs by design).
 */
function withoutProxyProgram(pod: V1Pod): V1Pod {
  const copy = structuredClone(pod);
  const annotations = copy.metadata?.annotations ?? {};
  const status = JSON.parse(annotations[STATUS_ANNOTATION] ?? 'null') as { version?: string } | null;
  expect(status?.version).toMatch(/^[0-9a-f]+$/);
  delete status?.version;
  annotations[STATUS_ANNOTATION] = JSON.stringify(status);
  for (const container of [...(copy.spec?.initContainers ?? []), ...(copy.spec?.containers ?? [])]) {
    if (container.name !== CONTAINER_NAMES.proxy) continue;
    delete container.image;
    delete container.command;
    delete container.args;
    delete container.env;
  }
  return copy;
}

let standin: InjectorConfig;
let shipped: InjectorConfig;

beforeAll(async () => {
  [standin, shipped] = await Promise.all([loadStandinConfig(), loadConfig(SHIPPED_CONFIG_DIR)]);
});

describe('the stand-in profile', () => {
  it('loads as an injector configuration of its own (the webhook validates it with a trial injection)', async () => {
    const alone = await loadConfig(STANDIN_PROFILE_DIR);
    expect(alone.proxyBootstrap).toBeNull();
    expect(alone.template).toEqual(standin.template);
  });

  it.each([false, true])(
    'runs the stand-in proxy image with the ports of the sidecar contract (native sidecars: %s)',
    (nativeSidecars) => {
      const proxy = proxyOf(inject(standin, nativeSidecars));
      expect(proxy.image).toBe(IMAGES.proxy);
      expect(proxy.command).toEqual(['mesh-standin-proxy']);
      expect(proxy.args).toEqual([
        `--outbound-port=${PORTS.outboundCapture}`,
        `--inbound-port=${PORTS.inboundCapture}`,
        `--readiness-port=${PORTS.readiness}`,
        `--stats-port=${PORTS.proxyStats}`,
        `--concurrency=${shipped.values.proxy.concurrency}`,
      ]);
      // The pod spec takes only strings here.
      for (const arg of proxy.args ?? []) expect(typeof arg).toBe('string');
    },
  );

  it('uses the init image the local node has', () => {
    const init = inject(standin, false).spec?.initContainers?.find((c) => c.name === CONTAINER_NAMES.init);
    expect(init?.image).toBe(IMAGES.init);
  });

  it.each([false, true])(
    "keeps the proxy's hardening: uid 1337, non-root, read-only root, no added capabilities (native sidecars: %s)",
    (nativeSidecars) => {
      expect(proxyHardeningGaps(proxyOf(inject(standin, nativeSidecars)).securityContext)).toEqual([]);
    },
  );

  it.each([false, true])(
    "injects what the shipped configuration injects, but for the proxy's image and program (native sidecars: %s)",
    (nativeSidecars) => {
      const local = withoutProxyProgram(inject(standin, nativeSidecars));
      const reference = withoutProxyProgram(inject(shipped, nativeSidecars));
      // The init image differs by design (the local one); everything else must not.
      for (const pod of [local, reference]) {
        for (const init of pod.spec?.initContainers ?? []) {
          if (init.name === CONTAINER_NAMES.init) delete init.image;
        }
      }
      expect(local).toEqual(reference);
    },
  );
});

const missingKubectl = missingRequirements(
  { kubectl: findKubectl() !== undefined },
  'kustomize the e2e overlay',
);

describe.skipIf(missingKubectl.length > 0)('the stand-in profile as a kustomize Component', () => {
  it("renders with plain `kubectl kustomize` (no load-restrictor flag): the shipped ConfigMap with the profile's template", async () => {
    const objects = renderKustomization(repoPath('test', 'e2e', 'overlay'));
    const data = findObject(objects, 'ConfigMap', 'mesh-injector-config').data as Record<string, string>;
    const [shippedFiles, profileTemplate] = await Promise.all([
      readConfigFiles(SHIPPED_CONFIG_DIR),
      readFile(join(STANDIN_PROFILE_DIR, CONFIG_FILES.template), 'utf8'),
    ]);
    expect(data['template.yaml']).toBe(profileTemplate);
    expect(data['values.yaml']).toBe(shippedFiles.valuesText);
    expect(data['envoy.yaml']).toBe(shippedFiles.proxyBootstrap);
  });
});
