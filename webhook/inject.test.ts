import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { shippedConfig, shippedContext, typicalPod } from '../test/fixtures/pods.js';
import { injectPod, type InjectionContext } from './inject.js';
import { parseStatus, templateVersion } from './status.js';

async function inject(pod: V1Pod, overrides: Partial<InjectionContext> = {}): Promise<V1Pod> {
  const result = injectPod(pod, 'shop', await shippedContext(overrides));
  if (result.outcome !== 'injected') throw new Error(result.message);
  return result.pod;
}

const names = (containers: { name: string }[] | undefined) => (containers ?? []).map((c) => c.name);

describe('injecting a pod', () => {
  it('adds istio-init and, last among containers, istio-proxy (classic layout)', async () => {
    const pod = await inject(typicalPod());
    expect(names(pod.spec?.initContainers)).toEqual(['istio-init']);
    expect(names(pod.spec?.containers)).toEqual(['web', 'istio-proxy']);
  });

  it('shares no object with the configuration, so changing one injected pod changes nothing else', async () => {
    const first = await inject(typicalPod());
    const proxy = first.spec?.containers.at(-1);
    const before = JSON.stringify(proxy?.resources);
    proxy!.resources!.limits = { memory: '1Ti' };
    const second = await inject(typicalPod());
    expect(JSON.stringify(second.spec?.containers.at(-1)?.resources)).toBe(before);
    expect(JSON.stringify(second.spec?.initContainers?.[0]?.resources)).toBe(before);
  });

  it('runs mesh-iptables with the rendered capture arguments', async () => {
    const pod = await inject(
      typicalPod({ annotations: { 'traffic.sidecar.istio.io/excludeInboundPorts': '9090' } }),
    );
    const init = pod.spec?.initContainers?.[0];
    expect(init?.command).toEqual(['mesh-iptables']);
    expect(init?.args).toContain('15090,15021,9090,15020');
  });

  it('gives the init container only NET_ADMIN and NET_RAW, and the proxy no capability as uid 1337', async () => {
    const pod = await inject(typicalPod());
    const init = pod.spec?.initContainers?.[0];
    const proxy = pod.spec?.containers.at(-1);
    expect(init?.securityContext?.capabilities).toEqual({ add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
    expect(init?.securityContext?.privileged).toBe(false);
    expect(proxy?.securityContext).toMatchObject({
      runAsUser: 1337,
      runAsGroup: 1337,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(proxy?.securityContext?.capabilities?.add).toBeUndefined();
  });

  it('puts the user init containers before istio-init, so they are not captured', async () => {
    const original = typicalPod();
    original.spec!.initContainers = [{ name: 'migrate', image: 'registry.example.com/shop/migrate:1' }];
    const pod = await inject(original);
    expect(names(pod.spec?.initContainers)).toEqual(['migrate', 'istio-init']);
  });

  it('makes the proxy a native sidecar right after istio-init when native sidecars are on', async () => {
    const original = typicalPod();
    original.spec!.initContainers = [{ name: 'migrate', image: 'registry.example.com/shop/migrate:1' }];
    const pod = await inject(original, { nativeSidecars: true });
    expect(names(pod.spec?.initContainers)).toEqual(['istio-init', 'istio-proxy', 'migrate']);
    expect(pod.spec?.initContainers?.[1]?.restartPolicy).toBe('Always');
    expect(names(pod.spec?.containers)).toEqual(['web']);
    expect(pod.spec?.initContainers?.[1]?.lifecycle).toBeUndefined();
  });

  it('lets the pod annotation override the native-sidecar setting both ways', async () => {
    const optIn = await inject(typicalPod({ annotations: { 'sidecar.istio.io/nativeSidecar': 'true' } }));
    expect(names(optIn.spec?.initContainers)).toEqual(['istio-init', 'istio-proxy']);
    const optOut = await inject(typicalPod({ annotations: { 'sidecar.istio.io/nativeSidecar': 'false' } }), {
      nativeSidecars: true,
    });
    expect(names(optOut.spec?.containers)).toEqual(['web', 'istio-proxy']);
  });

  it('puts the proxy first with a postStart wait when the app must wait for it (classic layout)', async () => {
    const pod = await inject(
      typicalPod({ annotations: { 'proxy.istio.io/config': '{"holdApplicationUntilProxyStarts": true}' } }),
    );
    expect(names(pod.spec?.containers)).toEqual(['istio-proxy', 'web']);
    expect(pod.spec?.containers[0]?.lifecycle?.postStart?.exec?.command?.join(' ')).toContain(
      '/dev/tcp/127.0.0.1/15021',
    );
  });

  it('ignores holdApplicationUntilProxyStarts for native sidecars, which start first anyway', async () => {
    const context = await shippedContext({ nativeSidecars: true });
    const values = { ...context.values, holdApplicationUntilProxyStarts: true };
    const result = injectPod(typicalPod(), 'shop', { ...context, values });
    expect(result.outcome === 'injected' && result.pod.spec?.initContainers?.[1]?.lifecycle).toBeUndefined();
  });

  it('adds no init container when interception is NONE', async () => {
    const pod = await inject(typicalPod({ annotations: { 'sidecar.istio.io/interceptionMode': 'NONE' } }));
    expect(pod.spec?.initContainers).toBeUndefined();
    expect(names(pod.spec?.containers)).toEqual(['web', 'istio-proxy']);
  });

  it('drops the proxy probes when the status port is 0', async () => {
    const pod = await inject(typicalPod({ annotations: { 'status.sidecar.istio.io/port': '0' } }));
    const proxy = pod.spec?.containers.at(-1);
    expect(proxy?.readinessProbe).toBeUndefined();
    expect(proxy?.startupProbe).toBeUndefined();
  });

  it('applies the readiness annotations to the proxy probe', async () => {
    const pod = await inject(
      typicalPod({
        annotations: {
          'readiness.status.sidecar.istio.io/initialDelaySeconds': '100',
          'readiness.status.sidecar.istio.io/periodSeconds': '200',
          'readiness.status.sidecar.istio.io/failureThreshold': '300',
        },
      }),
    );
    expect(pod.spec?.containers.at(-1)?.readinessProbe).toMatchObject({
      initialDelaySeconds: 100,
      periodSeconds: 200,
      failureThreshold: 300,
      httpGet: { port: 15021, path: '/healthz/ready' },
    });
  });

  it("records what it added in sidecar.istio.io/status, in Istio's key order", async () => {
    const pod = await inject(typicalPod());
    const status = pod.metadata?.annotations?.['sidecar.istio.io/status'] ?? '';
    expect(Object.keys(JSON.parse(status))).toEqual([
      'initContainers',
      'containers',
      'volumes',
      'imagePullSecrets',
      'revision',
      'version',
    ]);
    expect(parseStatus(status)).toEqual({
      initContainers: ['istio-init'],
      containers: ['istio-proxy'],
      volumes: ['istio-envoy'],
      imagePullSecrets: [],
      revision: 'default',
      version: templateVersion(await shippedConfig()),
    });
  });

  it('sets the default container only when absent, and the scrape annotations only when the app has none', async () => {
    const plain = await inject(typicalPod());
    expect(plain.metadata?.annotations).toMatchObject({
      'kubectl.kubernetes.io/default-container': 'web',
      'kubectl.kubernetes.io/default-logs-container': 'web',
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '15090',
      'prometheus.io/path': '/stats/prometheus',
    });
    const own = await inject(
      typicalPod({
        annotations: { 'kubectl.kubernetes.io/default-container': 'other', 'prometheus.io/port': '9102' },
      }),
    );
    expect(own.metadata?.annotations?.['kubectl.kubernetes.io/default-container']).toBe('other');
    expect(own.metadata?.annotations?.['prometheus.io/port']).toBe('9102');
    expect(own.metadata?.annotations?.['prometheus.io/scrape']).toBeUndefined();
  });

  it("adds Istio's workload labels without overwriting the pod's own", async () => {
    const pod = await inject(
      typicalPod({ labels: { app: 'web', version: 'v2', 'security.istio.io/tlsMode': 'disabled' } }),
    );
    expect(pod.metadata?.labels).toMatchObject({
      app: 'web',
      'security.istio.io/tlsMode': 'disabled',
      'service.istio.io/canonical-name': 'web',
      'service.istio.io/canonical-revision': 'v2',
    });
  });

  it('leaves the original pod object untouched', async () => {
    const original = typicalPod();
    const copy = structuredClone(original);
    await inject(original);
    expect(original).toEqual(copy);
  });

  it('denies a pod with an invalid annotation, adding nothing', async () => {
    const result = injectPod(
      typicalPod({ annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': '80 -j ACCEPT' } }),
      'shop',
      await shippedContext(),
    );
    expect(result.outcome).toBe('denied');
    expect(result.outcome === 'denied' && result.message).toContain(
      'traffic.sidecar.istio.io/excludeOutboundPorts',
    );
  });

  describe('re-injection', () => {
    it.each([
      ['classic', false],
      ['native', true],
    ])('gives the same pod when the pod is already injected (%s)', async (_layout, nativeSidecars) => {
      const original = typicalPod();
      original.spec!.initContainers = [{ name: 'migrate', image: 'registry.example.com/shop/migrate:1' }];
      original.spec!.volumes = [{ name: 'data', emptyDir: {} }];
      const once = await inject(original, { nativeSidecars });
      const twice = await inject(once, { nativeSidecars });
      expect(twice).toEqual(once);
    });

    it('moves a classic sidecar into the native layout without duplicating it', async () => {
      const classic = await inject(typicalPod());
      const native = await inject(classic, { nativeSidecars: true });
      expect(names(native.spec?.initContainers)).toEqual(['istio-init', 'istio-proxy']);
      expect(names(native.spec?.containers)).toEqual(['web']);
      expect(native.spec?.volumes?.filter((v) => v.name === 'istio-envoy')).toHaveLength(1);
    });

    it('follows changed annotations on re-injection', async () => {
      const once = await inject(typicalPod());
      once.metadata!.annotations!['traffic.sidecar.istio.io/excludeInboundPorts'] = '9000';
      const twice = await inject(once);
      expect(twice.spec?.initContainers?.[0]?.args).toContain('15090,15021,9000,15020');
      expect(names(twice.spec?.initContainers)).toEqual(['istio-init']);
    });
  });

  describe("the pod's own container with an injected name (customizing injection)", () => {
    it('overlays its fields on the injected container and keeps the injected image for image "auto"', async () => {
      const original = typicalPod();
      original.spec!.containers.push({
        name: 'istio-proxy',
        image: 'auto',
        resources: { limits: { memory: '256Mi' } },
      });
      const pod = await inject(original);
      const proxy = pod.spec?.containers.find((c) => c.name === 'istio-proxy');
      expect(names(pod.spec?.containers)).toEqual(['web', 'istio-proxy']);
      expect(proxy?.image).toMatch(/envoy/);
      expect(proxy?.resources).toEqual({
        requests: { cpu: '100m', memory: '128Mi' },
        limits: { cpu: '2', memory: '256Mi' },
      });
      expect(proxy?.securityContext?.runAsUser).toBe(1337);
      expect(JSON.parse(pod.metadata?.annotations?.['proxy.istio.io/overrides'] ?? '{}')).toEqual({
        containers: [{ name: 'istio-proxy', resources: { limits: { memory: '256Mi' } } }],
      });
      expect(await inject(pod)).toEqual(pod);
    });

    const withProxy = (proxy: Omit<V1Container, 'name'>) => {
      const original = typicalPod();
      original.spec!.containers.push({ name: 'istio-proxy', ...proxy });
      return original;
    };
    const proxyOf = (pod: V1Pod) =>
      [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
        (c) => c.name === 'istio-proxy',
      );
    const initArgs = (pod: V1Pod) =>
      pod.spec?.initContainers?.find((c) => c.name === 'istio-init')?.args ?? [];
    const flag = (args: string[], name: string) =>
      args.includes(name) ? args[args.indexOf(name) + 1] : undefined;

    it('keeps the injected hardening when the pod sets only the user and group', async () => {
      const pod = await inject(withProxy({ securityContext: { runAsUser: 1234, runAsGroup: 4321 } }));
      expect(proxyOf(pod)?.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
        readOnlyRootFilesystem: true,
        runAsGroup: 4321,
        runAsNonRoot: true,
        runAsUser: 1234,
        seccompProfile: { type: 'RuntimeDefault' },
      });
    });

    it('changes nothing for empty objects and keeps the other resource when one is set', async () => {
      const injected = proxyOf(await inject(typicalPod()));
      const empty = await inject(withProxy({ image: 'auto', resources: {}, securityContext: {} }));
      expect(proxyOf(empty)?.resources).toEqual(injected?.resources);
      expect(proxyOf(empty)?.securityContext).toEqual(injected?.securityContext);
      const cpu = await inject(withProxy({ resources: { requests: { cpu: '1' } } }));
      expect(proxyOf(cpu)?.resources?.requests).toEqual({ cpu: '1', memory: '128Mi' });
    });

    it('merges env, ports and volumeMounts by their keys, adding the new ones after the injected', async () => {
      const pod = await inject(
        withProxy({
          env: [
            { name: 'POD_NAME', value: 'fixed' },
            { name: 'EXTRA', value: '1' },
          ],
          ports: [{ containerPort: 15090, name: 'metrics' }],
          volumeMounts: [
            { name: 'istio-envoy', mountPath: '/tmp', readOnly: true },
            { name: 'certs', mountPath: '/etc/certs' },
          ],
        }),
      );
      const proxy = proxyOf(pod);
      expect(proxy?.env?.map((e) => e.name)).toEqual([
        'MESH_PROXY_BOOTSTRAP',
        'POD_NAME',
        'POD_NAMESPACE',
        'EXTRA',
      ]);
      expect(proxy?.env?.find((e) => e.name === 'POD_NAME')).toMatchObject({ value: 'fixed' });
      expect(proxy?.ports).toEqual([{ name: 'metrics', containerPort: 15090, protocol: 'TCP' }]);
      expect(proxy?.volumeMounts).toEqual([
        { name: 'istio-envoy', mountPath: '/tmp', readOnly: true },
        { name: 'certs', mountPath: '/etc/certs' },
      ]);
    });

    it('points istio-init -u and -g at the uid and gid the pod gives its proxy', async () => {
      expect(flag(initArgs(await inject(typicalPod())), '-u')).toBe('1337');
      expect(initArgs(await inject(typicalPod()))).not.toContain('-g');
      const runAs = await inject(withProxy({ securityContext: { runAsUser: 1234, runAsGroup: 4321 } }));
      expect(flag(initArgs(runAs), '-u')).toBe('1234');
      expect(flag(initArgs(runAs), '-g')).toBe('4321');
      const sameGroup = await inject(withProxy({ securityContext: { runAsUser: 1234, runAsGroup: 1234 } }));
      expect(flag(initArgs(sameGroup), '-u')).toBe('1234');
      expect(initArgs(sameGroup)).not.toContain('-g');
      expect(await inject(runAs)).toEqual(runAs);
    });
  });

  describe('TPROXY interception, where the configuration supports it', () => {
    it('runs the proxy as uid 0 with NET_ADMIN, as Istio does, and keeps -u 1337', async () => {
      const config = await shippedConfig();
      const values = structuredClone(config.values);
      values.traffic.supportedInterceptionModes = ['REDIRECT', 'TPROXY', 'NONE'];
      const pod = await inject(
        typicalPod({ annotations: { 'sidecar.istio.io/interceptionMode': 'TPROXY' } }),
        {
          values,
        },
      );
      const proxy = pod.spec?.containers.find((c) => c.name === 'istio-proxy');
      expect(proxy?.securityContext).toMatchObject({
        runAsUser: 0,
        runAsGroup: 1337,
        runAsNonRoot: false,
        capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
      });
      const args = pod.spec?.initContainers?.[0]?.args ?? [];
      expect(args.slice(args.indexOf('-u'), args.indexOf('-u') + 4)).toEqual(['-u', '1337', '-m', 'TPROXY']);
    });
  });
});
