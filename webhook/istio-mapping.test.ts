/**
 * Istio's inputs in Istio's formats (chart values, injector config, mesh config) become the injector's settings and
 * the template's Istio data, with Istio's defaults where the inputs say nothing, and a clear error naming the key
 * where they say something this injector cannot take.
 */
import { describe, expect, it } from 'vitest';
import { parseIstioInputs, proxyConfigJson, type IstioTexts } from './istio-inputs.js';
import { istioSettings } from './istio-mapping.js';
import { parseValues } from './values.js';

const NAMES = { values: 'values.json', injectConfig: 'config.yaml', mesh: 'mesh.yaml' };

function settings(texts: Partial<IstioTexts>) {
  const mapped = istioSettings(
    parseIstioInputs({ values: null, injectConfig: null, mesh: null, ...texts }, NAMES),
  );
  return { ...mapped, injector: parseValues(mapped.values, mapped.template) };
}
const values = (json: unknown) => JSON.stringify(json);

describe("Istio's inputs as the injector's settings", () => {
  it("gives Istio's default settings when the inputs are empty", () => {
    const { injector, template } = settings({ values: '{}', mesh: '' });
    expect(injector).toMatchObject({
      policy: 'enabled',
      revision: 'default',
      templateVersionInStatus: false,
      offlineGoFields: true,
      nativeSidecars: 'auto',
      holdApplicationUntilProxyStarts: false,
      images: {
        proxy: 'registry.istio.io/testing/proxyv2:latest',
        init: 'registry.istio.io/testing/proxyv2:latest',
      },
      imagePullPolicy: null,
      imagePullSecrets: [],
      injectedAnnotations: {},
      proxy: {
        logLevel: 'warning',
        componentLogLevel: 'misc:error',
        statusPort: 15020,
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } },
        readiness: { initialDelaySeconds: 0, periodSeconds: 15, failureThreshold: 4 },
      },
      init: { logLevel: 'default:info', followProxyGroup: false },
      traffic: {
        interceptionMode: 'REDIRECT',
        includeOutboundIPRanges: '*',
        excludeOutboundIPRanges: '',
        includeInboundPorts: '*',
        excludeInboundPorts: '',
      },
      prometheus: { enabled: true, port: 15020, path: '/stats/prometheus' },
      rewriteAppProbes: true,
    });
    expect(template).toMatchObject({
      caAddress: 'istiod.istio-system.svc:15012',
      clusterId: 'Kubernetes',
      meshId: 'cluster.local',
      trustDomain: 'cluster.local',
      network: null,
      networkEnv: [],
      proxyConfigJson: '{}\n',
      proxyMetadataEnv: [],
      initEnv: null,
      localhostProbeEnv: [],
    });
  });

  it('reads the chart values that shape the sidecar', () => {
    const { injector, template } = settings({
      values: values({
        revision: 'canary',
        global: {
          hub: 'mirror.example.com/istio',
          tag: 1.27,
          variant: 'distroless',
          imagePullPolicy: 'Always',
          imagePullSecrets: ['pull-a'],
          istioNamespace: 'mesh',
          meshID: 'mesh-1',
          network: 'net-1',
          multiCluster: { clusterName: 'east' },
          logging: { level: 'default:debug' },
          proxy: {
            autoInject: 'disabled',
            statusPort: 15021,
            readinessPeriodSeconds: 5,
            holdApplicationUntilProxyStarts: true,
            includeIPRanges: '10.0.0.0/8',
            excludeOutboundPorts: '3306',
            logLevel: 'debug',
            resources: { requests: { cpu: '50m' } },
          },
          proxy_init: { image: 'ghcr.io/mesh-injector/mesh-iptables:0.1.0' },
        },
        sidecarInjectorWebhook: {
          rewriteAppHTTPProbe: false,
          neverInjectSelector: [{ matchLabels: { batch: 'true' } }],
          injectedAnnotations: { 'example.com/a': 'b' },
        },
        pilot: { env: { ENABLE_NATIVE_SIDECARS: false } },
      }),
    });
    expect(injector).toMatchObject({
      policy: 'disabled',
      revision: 'canary',
      nativeSidecars: 'false',
      holdApplicationUntilProxyStarts: true,
      images: {
        proxy: 'mirror.example.com/istio/proxyv2:1.27-distroless',
        // A name with a "/" is a whole image reference, as in Istio.
        init: 'ghcr.io/mesh-injector/mesh-iptables:0.1.0',
      },
      imagePullPolicy: 'Always',
      imagePullSecrets: ['pull-a'],
      injectedAnnotations: { 'example.com/a': 'b' },
      neverInjectSelector: [{ matchLabels: { batch: 'true' } }],
      proxy: {
        logLevel: 'debug',
        statusPort: 15021,
        resources: { requests: { cpu: '50m' } },
        readiness: { periodSeconds: 5 },
      },
      init: { logLevel: 'default:debug' },
      traffic: { includeOutboundIPRanges: '10.0.0.0/8', excludeOutboundPorts: '3306' },
      rewriteAppProbes: false,
    });
    expect(template).toMatchObject({
      caAddress: 'istiod-canary.mesh.svc:15012',
      clusterId: 'east',
      meshId: 'mesh-1',
      network: 'net-1',
      networkEnv: [{ name: 'ISTIO_META_NETWORK', value: 'net-1' }],
    });
  });

  it("applies the mesh config over Istio's defaults, defaultConfig field by field", () => {
    const { injector, template } = settings({
      mesh: [
        'trustDomain: example.org',
        'enablePrometheusMerge: false',
        'inboundTrafficPolicy: {mode: LOCALHOST}',
        'defaultConfig:',
        '  interceptionMode: TPROXY',
        '  holdApplicationUntilProxyStarts: true',
        '  concurrency: 0',
        '  discoveryAddress: istiod.mesh.svc:15012',
        '  proxyMetadata: {B_VAR: "2", A_VAR: "1"}',
      ].join('\n'),
    });
    expect(injector.traffic.interceptionMode).toBe('TPROXY');
    expect(injector.holdApplicationUntilProxyStarts).toBe(true);
    expect(injector.prometheus.enabled).toBe(false);
    expect(template.trustDomain).toBe('example.org');
    expect(template.meshId).toBe('example.org');
    expect(template.proxyMetadataEnv).toEqual([
      { name: 'A_VAR', value: '1' },
      { name: 'B_VAR', value: '2' },
    ]);
    expect(template.initEnv).toEqual(template.proxyMetadataEnv);
    expect(template.localhostProbeEnv).toEqual([
      { name: 'REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION', value: 'true' },
    ]);
    // Istio's protoToJSON of cleanProxyConfig: proto field order, defaults and zero enums left out, a set
    // wrapper (concurrency 0) kept, map keys sorted.
    expect(template.proxyConfigJson).toBe(
      '{"discoveryAddress":"istiod.mesh.svc:15012","concurrency":0,"interceptionMode":"TPROXY",' +
        '"proxyMetadata":{"A_VAR":"1","B_VAR":"2"},"holdApplicationUntilProxyStarts":true}\n',
    );
  });

  it("leaves out of PROXY_CONFIG every field equal to Istio's proxy defaults", () => {
    expect(
      proxyConfigJson({
        discoveryAddress: 'istiod.istio-system.svc:15012',
        drainDuration: '45s',
        statusPort: 15020,
        interceptionMode: 'REDIRECT',
        proxyMetadata: {},
      }),
    ).toBe('{}\n');
    expect(proxyConfigJson({ drainDuration: '23s', tracing: {} })).toBe(
      '{"drainDuration":"23s","tracing":{}}\n',
    );
  });

  it("takes policy, selectors and injected annotations from Istio's injector config over the values", () => {
    const { injector } = settings({
      values: values({ global: { proxy: { autoInject: 'enabled' } } }),
      injectConfig: [
        'policy: disabled',
        'alwaysInjectSelector: [{matchLabels: {mesh: "on"}}]',
        'injectedAnnotations: {example.com/x: "y"}',
        'defaultTemplates: [sidecar]',
        // Go templates are not executed: the profile's template.yaml renders Istio's sidecar.
        'templates: {sidecar: "{{ .Values }}"}',
      ].join('\n'),
    });
    expect(injector.policy).toBe('disabled');
    expect(injector.alwaysInjectSelector).toEqual([{ matchLabels: { mesh: 'on' } }]);
    expect(injector.injectedAnnotations).toEqual({ 'example.com/x': 'y' });
  });

  it("accepts a full dump of the ConfigMap's values, keys that configure istiod rather than the sidecar included", () => {
    const dump = {
      global: {
        defaultResources: { requests: { cpu: '10m' } },
        waypoint: { resources: { limits: { cpu: '2' } }, tolerations: [] },
        proxy: {
          enableCoreDump: false,
          tracer: 'zipkin',
          startupProbe: { enabled: true, failureThreshold: 600 },
        },
        multiCluster: { enabled: false, clusterName: '' },
        sts: { servicePort: 0 },
        jwtPolicy: 'third-party-jwt',
        imagePullSecrets: null,
      },
      sidecarInjectorWebhook: {
        enableNamespacesByDefault: false,
        reinvocationPolicy: 'Never',
        templates: {},
      },
      pilot: { cni: { enabled: false, provider: 'default' }, env: {} },
      gateways: { securityContext: {}, seccompProfile: {} },
    };
    expect(settings({ values: values(dump) }).injector.images.proxy).toBe(
      'registry.istio.io/testing/proxyv2:latest',
    );
  });

  it.each([
    [{ global: { proxy: { statusPortt: 1 } } }, 'values.json: global.proxy.statusPortt: unknown key'],
    [
      { global: { proxy: { statusPort: '15020' } } },
      'values.json: global.proxy.statusPort: "15020" is not a whole number',
    ],
    [{ global: { proxy: 'x' } }, 'values.json: global.proxy: expected a mapping'],
    [{ global: { imagePullSecrets: 'a' } }, 'global.imagePullSecrets: "a" is not a list of strings'],
    [{ pilot: { cni: { enabled: true } } }, 'pilot.cni.enabled: true is not supported by mesh-injector yet'],
    [{ global: { logAsJson: true } }, 'global.logAsJson: true is not supported by mesh-injector yet'],
    [
      { sidecarInjectorWebhook: { defaultTemplates: ['gateway'] } },
      'defaultTemplates: ["gateway"] is not supported',
    ],
    [
      { global: { pilotCertProvider: 'kubernetes' } },
      'global.pilotCertProvider: "kubernetes" is not supported',
    ],
    [
      { pilot: { env: { ENABLE_NATIVE_SIDECARS: 'maybe' } } },
      'ENABLE_NATIVE_SIDECARS: "maybe" is not true, false or auto',
    ],
    [
      { sidecarInjectorWebhook: { neverInjectSelector: [{ matchLabels: { a: 1 } }] } },
      'neverInjectSelector[0]: matchLabels.a is not a string',
    ],
  ])('refuses the values %j, naming the key', (raw, message) => {
    expect(() => settings({ values: values(raw) })).toThrow(message);
  });

  it.each([
    ['trustDomains: x', 'mesh.yaml: trustDomains: unknown MeshConfig field'],
    [
      'defaultConfig: {discoveryAdress: x}',
      'mesh.yaml: defaultConfig: discoveryAdress: unknown ProxyConfig field',
    ],
    ['defaultConfig: {interceptionMode: BPF}', 'interceptionMode: "BPF" is not REDIRECT, TPROXY or NONE'],
    ['defaultConfig: {proxyMetadata: {"A B": x}}', '"A B" is not an environment variable name'],
    ['proxyListenPort: 16001', 'proxyListenPort: 16001 is not supported by mesh-injector yet'],
    ['[1, 2]', 'mesh.yaml: expected a mapping of MeshConfig fields'],
  ])('refuses the mesh config %s, naming the field', (mesh, message) => {
    expect(() => settings({ mesh })).toThrow(message);
  });

  it("refuses an injector config key Istio's has not, and a policy it does not know", () => {
    expect(() => settings({ injectConfig: 'polcy: enabled' })).toThrow('config.yaml: polcy: unknown key');
    expect(() => settings({ injectConfig: 'policy: on' })).toThrow('config.yaml: policy: "on" is not');
  });
});
