import { describe, expect, it } from 'vitest';
import { describeProblem, readPodSettings, type SettingsResult } from './pod-settings.js';
import { DEFAULT_VALUES } from './values.js';

function read(annotations: Record<string, string>): SettingsResult {
  return readPodSettings(annotations, DEFAULT_VALUES);
}

function problemFor(annotations: Record<string, string>) {
  const result = read(annotations);
  if (result.ok) throw new Error(`expected ${JSON.stringify(annotations)} to be rejected`);
  return result.problems;
}

function settingsFor(annotations: Record<string, string>) {
  const result = read(annotations);
  if (!result.ok) throw new Error(result.problems.map(describeProblem).join('; '));
  return result.settings;
}

describe('pod settings from annotations', () => {
  it('falls back to the values for every setting', () => {
    const settings = settingsFor({});
    expect(settings).toMatchObject({
      interceptionMode: 'REDIRECT',
      includeOutboundIPRanges: '*',
      excludeOutboundIPRanges: [],
      includeInboundPorts: '*',
      excludeInboundPorts: [],
      includeOutboundPorts: undefined,
      excludeOutboundPorts: undefined,
      statusPort: 15020,
      readiness: { initialDelaySeconds: 0, periodSeconds: 15, failureThreshold: 4 },
      resources: DEFAULT_VALUES.proxy.resources,
      proxyImage: DEFAULT_VALUES.images.proxy,
    });
  });

  describe('accepts what Istio accepts', () => {
    it.each([
      ['traffic.sidecar.istio.io/includeOutboundIPRanges', '*'],
      ['traffic.sidecar.istio.io/includeOutboundIPRanges', ''],
      ['traffic.sidecar.istio.io/includeOutboundIPRanges', '10.0.0.0/8,127.0.0.1/24,fd00::/8'],
      ['traffic.sidecar.istio.io/excludeOutboundIPRanges', '169.254.169.254/32'],
      ['traffic.sidecar.istio.io/includeInboundPorts', '*'],
      ['traffic.sidecar.istio.io/includeInboundPorts', '0, 80 ,65535'],
      ['traffic.sidecar.istio.io/excludeInboundPorts', ''],
      ['traffic.sidecar.istio.io/excludeOutboundPorts', '3306'],
      ['traffic.sidecar.istio.io/excludeInterfaces', 'eth1, net-2.a_b'],
      ['istio.io/reroute-virtual-interfaces', 'net1'],
      ['status.sidecar.istio.io/port', '0'],
      ['readiness.status.sidecar.istio.io/periodSeconds', '4294967295'],
      ['sidecar.istio.io/proxyCPU', '1500m'],
      ['sidecar.istio.io/proxyMemoryLimit', '1.5Gi'],
      ['prometheus.istio.io/merge-metrics', 'F'],
      ['sidecar.istio.io/interceptionMode', 'NONE'],
    ])('%s: %j', (annotation, value) => {
      expect(read({ [annotation]: value }).ok).toBe(true);
    });
  });

  describe('rejects what Istio rejects, naming the annotation, the value and the fix', () => {
    it.each([
      ['traffic.sidecar.istio.io/includeOutboundIPRanges', 'bad', 'is not a CIDR'],
      ['traffic.sidecar.istio.io/includeOutboundIPRanges', '10.0.0.0/8, 11.0.0.0/8', 'is not a CIDR'],
      ['traffic.sidecar.istio.io/includeOutboundIPRanges', '10.0.0.1', 'is not a CIDR'],
      ['traffic.sidecar.istio.io/excludeOutboundIPRanges', '*', 'is not a CIDR'],
      ['traffic.sidecar.istio.io/includeInboundPorts', 'bad', 'is not a port'],
      ['traffic.sidecar.istio.io/includeInboundPorts', '65536', 'is not a port'],
      ['traffic.sidecar.istio.io/excludeInboundPorts', '*', 'is not a port'],
      ['traffic.sidecar.istio.io/excludeOutboundPorts', 'bad', 'is not a port'],
      ['traffic.sidecar.istio.io/excludeOutboundPorts', '80,,81', 'is not a port'],
      ['traffic.sidecar.istio.io/excludeInterfaces', '1eth', 'is not an interface name'],
      ['traffic.sidecar.istio.io/excludeInterfaces', 'averyveryverylongname', 'is not an interface name'],
      ['traffic.sidecar.istio.io/kubevirtInterfaces', 'net 1', 'is not an interface name'],
      ['status.sidecar.istio.io/port', '70000', 'is not a port'],
      ['readiness.status.sidecar.istio.io/initialDelaySeconds', '', 'is not a whole number'],
      ['readiness.status.sidecar.istio.io/failureThreshold', ' 3', 'is not a whole number'],
      ['sidecar.istio.io/proxyCPU', 'lots', 'is not a resource quantity'],
      ['sidecar.istio.io/proxyMemory', '', 'is not a resource quantity'],
      ['prometheus.istio.io/merge-metrics', 'yes', 'is not a boolean'],
      ['sidecar.istio.io/interceptionMode', 'redirect', 'is not an interception mode'],
    ])('%s: %j', (annotation, value, reason) => {
      const [problem] = problemFor({ [annotation]: value });
      expect(problem).toMatchObject({ annotation, value });
      const message = describeProblem(problem!);
      expect(message).toContain(annotation);
      expect(message).toContain(JSON.stringify(value));
      expect(message).toContain(reason);
      expect(message).toMatch(/fix: use /);
    });

    it('reports every invalid annotation, not only the first', () => {
      const problems = problemFor({
        'traffic.sidecar.istio.io/excludeInboundPorts': 'x',
        'traffic.sidecar.istio.io/excludeOutboundPorts': 'y',
      });
      expect(problems.map((p) => p.annotation).sort()).toEqual([
        'traffic.sidecar.istio.io/excludeInboundPorts',
        'traffic.sidecar.istio.io/excludeOutboundPorts',
      ]);
    });
  });

  describe('is stricter than Istio wherever a value reaches a command line', () => {
    it.each([
      ['traffic.sidecar.istio.io/includeOutboundPorts', '80 -j ACCEPT'],
      ['traffic.sidecar.istio.io/includeOutboundPorts', '80\n-A OUTPUT -j ACCEPT'],
      ['sidecar.istio.io/logLevel', 'debug --admin-address-path /tmp/x'],
      ['sidecar.istio.io/componentLogLevel', 'misc:error;rm -rf /'],
      ['sidecar.istio.io/agentLogLevel', 'default:info --dry-run'],
      ['sidecar.istio.io/proxyImage', 'evil.example.com/x:1 --privileged'],
      ['sidecar.istio.io/proxyImage', 'registry.example.com/$(whoami)'],
      ['sidecar.istio.io/interceptionMode', 'TPROXY'],
      ['proxy.istio.io/config', '{holdApplicationUntilProxyStarts: "yes"}'],
      ['proxy.istio.io/config', '- a list'],
      ['inject.istio.io/templates', 'gateway'],
      ['proxy.istio.io/overrides', '{bad'],
      ['proxy.istio.io/overrides', '["istio-proxy"]'],
      ['proxy.istio.io/overrides', '{"containers":{"name":"istio-proxy"}}'],
      ['proxy.istio.io/overrides', '{"containers":[{"image":"auto"}]}'],
      ['proxy.istio.io/overrides', '{"containers":[{"name":"istio-proxy","image":42}]}'],
      ['proxy.istio.io/overrides', '{"containers":[{"name":"istio-proxy","image":"x:1 --privileged"}]}'],
      ['proxy.istio.io/overrides', '{"volumes":[{"name":"host","hostPath":{"path":"/"}}]}'],
    ])('%s: %j', (annotation, value) => {
      const [problem] = problemFor({ [annotation]: value });
      expect(problem?.annotation).toBe(annotation);
    });

    it('cuts long values in messages so a denial stays readable', () => {
      const [problem] = problemFor({ 'traffic.sidecar.istio.io/excludeOutboundPorts': 'x'.repeat(10_000) });
      expect(describeProblem(problem!).length).toBeLessThan(400);
    });
  });

  it('reads the overrides the injector wrote, keeping each container whole', () => {
    const overrides = [{ name: 'istio-proxy', image: 'auto', resources: { limits: { memory: '256Mi' } } }];
    expect(
      settingsFor({ 'proxy.istio.io/overrides': JSON.stringify({ containers: overrides }) })
        .containerOverrides,
    ).toEqual(overrides);
  });

  it('uses only the exact strings "true" and "false" for the native-sidecar override', () => {
    expect(settingsFor({ 'sidecar.istio.io/nativeSidecar': 'true' }).nativeSidecar).toBe(true);
    expect(settingsFor({ 'sidecar.istio.io/nativeSidecar': 'false' }).nativeSidecar).toBe(false);
    expect(settingsFor({ 'sidecar.istio.io/nativeSidecar': 'True' }).nativeSidecar).toBeUndefined();
  });

  it('lets any resource annotation replace the whole values block', () => {
    expect(settingsFor({ 'sidecar.istio.io/proxyCPU': '4000m' }).resources).toEqual({
      requests: { cpu: '4000m' },
    });
  });

  it('ignores a proxy image without "/", as Istio does', () => {
    expect(settingsFor({ 'sidecar.istio.io/proxyImage': 'envoy' }).proxyImage).toBe(
      DEFAULT_VALUES.images.proxy,
    );
    expect(settingsFor({ 'sidecar.istio.io/proxyImage': 'mirror.example.com/envoy:v1' }).proxyImage).toBe(
      'mirror.example.com/envoy:v1',
    );
  });

  it('prefers reroute-virtual-interfaces over the deprecated kubevirtInterfaces', () => {
    const settings = settingsFor({
      'istio.io/reroute-virtual-interfaces': 'net1',
      'traffic.sidecar.istio.io/kubevirtInterfaces': 'net2',
    });
    expect(settings.rerouteVirtualInterfaces).toEqual(['net1']);
  });

  it('reads holdApplicationUntilProxyStarts from proxy.istio.io/config', () => {
    expect(
      settingsFor({ 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true' })
        .holdApplicationUntilProxyStarts,
    ).toBe(true);
  });
});
