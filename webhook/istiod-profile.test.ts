/**
 * The shipped istiod profile (manifests/profiles/istiod): it loads, renders Istio's sidecar for a typical pod, and
 * keeps working in the classic layout. Parity with Istio's own goldens is measured by
 * ../shared/checks/istio-injection-goldens.sh (docs/istiod-profile.md).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { typicalPod } from '../test/fixtures/pods.js';
import {
  configFilesFromData,
  loadConfig,
  parseConfig,
  readConfigFiles,
  type InjectorConfig,
} from './config.js';
import { injectPod } from './inject.js';
import { TEMPLATE_DATA_PATHS } from './template-data.js';

const PROFILE_DIR = fileURLToPath(new URL('../manifests/profiles/istiod', import.meta.url));
const SHIPPED_TEMPLATE = fileURLToPath(new URL('../manifests/config/template.yaml', import.meta.url));

describe('the istiod profile', () => {
  let config: InjectorConfig;
  beforeAll(async () => {
    config = await loadConfig(PROFILE_DIR);
  });

  function inject(pod: V1Pod, nativeSidecars = true): V1Pod {
    const result = injectPod(pod, 'shop', { ...config, nativeSidecars });
    if (result.outcome !== 'injected') throw new Error(result.message);
    return result.pod;
  }
  const proxyOf = (pod: V1Pod) =>
    [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
      (c) => c.name === 'istio-proxy',
    );
  const env = (container: V1Container | undefined, name: string) =>
    container?.env?.find((e) => e.name === name)?.value;

  it("runs pilot-agent with Istio's environment, and istio-init with Istio's istio-iptables arguments", () => {
    const pod = inject(typicalPod());
    const proxy = proxyOf(pod);
    expect(proxy?.args?.slice(0, 2)).toEqual(['proxy', 'sidecar']);
    expect(proxy?.restartPolicy).toBe('Always');
    expect(env(proxy, 'CA_ADDR')).toBe('istiod.istio-system.svc:15012');
    expect(env(proxy, 'ISTIO_META_APP_CONTAINERS')).toBe('web');
    expect(env(proxy, 'ISTIO_META_POD_PORTS')).toBe('[\n    {"name":"http","containerPort":8080}\n]');
    expect(env(proxy, 'ISTIO_META_OWNER')).toBe('kubernetes://apis/v1/namespaces/shop/pods/web');
    expect(pod.spec?.initContainers?.[0]?.args?.slice(0, 3)).toEqual(['istio-iptables', '-p', '15001']);
    expect(pod.metadata?.annotations?.['prometheus.io/port']).toBe('15020');
    expect(JSON.parse(pod.metadata?.annotations?.['sidecar.istio.io/status'] ?? '{}')).not.toHaveProperty(
      'version',
    );
  });

  it('rewrites the app probes to 15020 and tells pilot-agent the originals', () => {
    const pod = inject(typicalPod());
    expect(pod.spec?.containers[0]?.readinessProbe?.httpGet).toEqual({
      path: '/app-health/web/readyz',
      port: 15020,
    });
    expect(env(proxyOf(pod), 'ISTIO_KUBE_APP_PROBERS')).toBe(
      '{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080}}}',
    );
    const optOut = inject(typicalPod({ annotations: { 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' } }));
    expect(optOut.spec?.containers[0]?.readinessProbe?.httpGet).toEqual({ path: '/ready', port: 8080 });
  });

  it('renders the classic layout too, the proxy last among containers', () => {
    const pod = inject(typicalPod(), false);
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['web', 'istio-proxy']);
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['istio-init']);
  });

  // Istio's injection-template.yaml: `lifecycle` is global.proxy.lifecycle, else the hold hook (classic only),
  // else the drain hook only `if $nativeSidecar`.
  it('drains a native sidecar on preStop, and gives a classic one no lifecycle, as Istio does', () => {
    const drain = {
      preStop: { exec: { command: ['pilot-agent', 'request', '--debug-port=15020', 'POST', 'drain'] } },
    };
    expect(proxyOf(inject(typicalPod(), true))?.lifecycle).toEqual(drain);
    expect(proxyOf(inject(typicalPod(), false))).not.toHaveProperty('lifecycle');
    const statusPort = typicalPod({ annotations: { 'status.sidecar.istio.io/port': '15999' } });
    expect(proxyOf(inject(statusPort, true))?.lifecycle?.preStop?.exec?.command).toContain(
      '--debug-port=15999',
    );
  });

  // Istio's adjustInitContainerUser: `-u` follows the proxy's runAsUser, and no `-g` is added.
  it("follows a user istio-proxy's uid in istio-init's -u, without a -g, as Istio does", () => {
    const pod = typicalPod();
    pod.spec!.containers.push({
      name: 'istio-proxy',
      image: 'auto',
      securityContext: { runAsUser: 1234, runAsGroup: 4321 },
    });
    const args = inject(pod).spec?.initContainers?.[0]?.args ?? [];
    expect(args[args.indexOf('-u') + 1]).toBe('1234');
    expect(args).not.toContain('-g');
  });

  it('holds the app until the proxy starts in the classic layout only, with pilot-agent wait', () => {
    const hold = typicalPod({
      annotations: { 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true' },
    });
    const classic = inject(hold, false);
    expect(classic.spec?.containers.map((c) => c.name)).toEqual(['istio-proxy', 'web']);
    expect(proxyOf(classic)?.lifecycle).toEqual({
      postStart: { exec: { command: ['pilot-agent', 'wait'] } },
    });
    expect(proxyOf(inject(hold, true))?.lifecycle?.preStop?.exec?.command?.at(-1)).toBe('drain');
  });

  it("writes a pod's proxy.istio.io/config over the mesh's defaultConfig into PROXY_CONFIG and the env", () => {
    expect(env(proxyOf(inject(typicalPod())), 'PROXY_CONFIG')).toBe('{}\n');
    const pod = inject(
      typicalPod({
        annotations: {
          'proxy.istio.io/config':
            '{ "holdApplicationUntilProxyStarts": true, "proxyMetadata": {"DNS_AGENT": ""} }',
        },
      }),
    );
    expect(env(proxyOf(pod), 'PROXY_CONFIG')).toBe(
      '{"proxyMetadata":{"DNS_AGENT":""},"holdApplicationUntilProxyStarts":true}\n',
    );
    const names = proxyOf(pod)?.env?.map((e) => e.name) ?? [];
    expect(names[names.indexOf('TRUST_DOMAIN') + 1]).toBe('DNS_AGENT');
    expect(pod.spec?.initContainers?.[0]?.env).toEqual([{ name: 'DNS_AGENT', value: '' }]);
    const typo = injectPod(
      typicalPod({ annotations: { 'proxy.istio.io/config': 'holdApplicationUntilProxyStart: true' } }),
      'shop',
      {
        ...config,
        nativeSidecars: true,
      },
    );
    expect(typo.outcome === 'denied' && typo.message).toContain(
      'holdApplicationUntilProxyStart: unknown ProxyConfig field',
    );
  });

  it("takes its settings from Istio's files, so values.yaml cannot declare them a second time", async () => {
    const files = await readConfigFiles(PROFILE_DIR);
    expect(files.istio?.values).toContain('"hub"');
    expect(config.values.istio?.caAddress).toBe('istiod.istio-system.svc:15012');
    expect(() =>
      parseConfig({ ...files, valuesText: 'nativeSidecars: "true"\nproxy: {statusPort: 15021}\n' }),
    ).toThrow("values.yaml: proxy comes from Istio's inputs");
    // A ConfigMap holding the profile's files (the webhook's mount, `inject`'s and `check`'s cluster read).
    const data = Object.fromEntries(
      ['template.yaml', 'values.yaml', 'istio-values.json', 'istio-mesh.yaml'].map((name) => [
        name,
        readFileSync(`${PROFILE_DIR}/${name}`, 'utf8'),
      ]),
    );
    expect(parseConfig(configFilesFromData(data)!).values.istio?.clusterId).toBe('Kubernetes');
    // The Deployment's image overrides still apply over the images Istio's values name.
    const mirrored = parseConfig({ ...files, valuesText: 'images: {proxy: mirror.example.com/proxyv2:1}\n' });
    expect(mirrored.values.images).toEqual({
      proxy: 'mirror.example.com/proxyv2:1',
      init: 'ghcr.io/mesh-injector/mesh-iptables:0.1.0',
    });
  });

  it('documents in each shipped template only data that TemplateData has', () => {
    for (const file of [SHIPPED_TEMPLATE, `${PROFILE_DIR}/template.yaml`]) {
      const body = readFileSync(file, 'utf8').replace(/^\s*#.*$/gm, '');
      const used = [...body.matchAll(/\{\{\s*(?:\.\.\.)?([\w.]+)\s*\}\}/g)].map((m) => m[1]!);
      const known = (path: string) =>
        TEMPLATE_DATA_PATHS.includes(path) ||
        TEMPLATE_DATA_PATHS.some(
          (leaf) =>
            leaf.startsWith(`${path}.`) || (leaf.endsWith('.*') && path.startsWith(leaf.slice(0, -1))),
        );
      expect(
        used.filter((path) => !known(path)),
        file,
      ).toEqual([]);
    }
  });
});
