import { describe, expect, it } from 'vitest';
import { typicalPod } from '../test/fixtures/pods.js';
import { decideInjection, type DecisionConfig } from './decision.js';

const enabled: DecisionConfig = { policy: 'enabled', neverInjectSelector: [], alwaysInjectSelector: [] };
const disabled: DecisionConfig = { ...enabled, policy: 'disabled' };

describe("the injection decision (Istio's injectRequired, in order)", () => {
  it('injects by default when the policy is enabled', () => {
    expect(decideInjection(typicalPod(), 'shop', enabled)).toMatchObject({
      inject: true,
      reason: 'policy-enabled',
    });
  });

  it('skips by default when the policy is disabled', () => {
    expect(decideInjection(typicalPod(), 'shop', disabled)).toMatchObject({
      inject: false,
      reason: 'policy-disabled',
    });
  });

  it('skips host-network pods before anything else, even when they ask for injection', () => {
    const pod = typicalPod({ hostNetwork: true, labels: { 'sidecar.istio.io/inject': 'true' } });
    expect(decideInjection(pod, 'shop', enabled)).toMatchObject({ inject: false, reason: 'host-network' });
  });

  it.each(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'])(
    'skips the ignored namespace %s, even when the pod asks for injection',
    (namespace) => {
      const pod = typicalPod({ labels: { 'sidecar.istio.io/inject': 'true' } });
      expect(decideInjection(pod, namespace, enabled)).toMatchObject({
        inject: false,
        reason: 'ignored-namespace',
      });
    },
  );

  it('does not ignore istio-system', () => {
    expect(decideInjection(typicalPod(), 'istio-system', enabled).inject).toBe(true);
  });

  it('honours the annotation "false" and "true" exactly', () => {
    const off = typicalPod({ annotations: { 'sidecar.istio.io/inject': 'false' } });
    const on = typicalPod({ annotations: { 'sidecar.istio.io/inject': 'true' } });
    expect(decideInjection(off, 'shop', enabled)).toMatchObject({
      inject: false,
      reason: 'explicitly-disabled',
    });
    expect(decideInjection(on, 'shop', disabled)).toMatchObject({
      inject: true,
      reason: 'explicitly-enabled',
    });
  });

  it('lets the label win over the annotation', () => {
    const pod = typicalPod({
      labels: { 'sidecar.istio.io/inject': 'true' },
      annotations: { 'sidecar.istio.io/inject': 'false' },
    });
    expect(decideInjection(pod, 'shop', disabled)).toMatchObject({
      inject: true,
      reason: 'explicitly-enabled',
    });
  });

  it('lets an empty label replace the annotation and fall back to the policy', () => {
    const pod = typicalPod({
      labels: { 'sidecar.istio.io/inject': '' },
      annotations: { 'sidecar.istio.io/inject': 'true' },
    });
    expect(decideInjection(pod, 'shop', disabled)).toMatchObject({
      inject: false,
      reason: 'policy-disabled',
    });
  });

  it.each(['True', 'yes', 'on', '1', 'FALSE'])('treats %j as "use the default" and warns', (value) => {
    const decision = decideInjection(
      typicalPod({ annotations: { 'sidecar.istio.io/inject': value } }),
      'shop',
      disabled,
    );
    expect(decision).toMatchObject({ inject: false, reason: 'policy-disabled' });
    expect(decision.warnings.join()).toContain('only "true" and "false" are accepted');
  });

  it('skips pods matched by neverInjectSelector when no explicit choice is made', () => {
    const config = { ...enabled, neverInjectSelector: [{ matchLabels: { app: 'web' } }] };
    expect(decideInjection(typicalPod(), 'shop', config)).toMatchObject({
      inject: false,
      reason: 'never-inject-selector',
    });
    const explicit = typicalPod({ annotations: { 'sidecar.istio.io/inject': 'true' } });
    expect(decideInjection(explicit, 'shop', config).inject).toBe(true);
  });

  it('injects pods matched by alwaysInjectSelector under a disabled policy', () => {
    const config = {
      ...disabled,
      alwaysInjectSelector: [
        { matchExpressions: [{ key: 'app', operator: 'In' as const, values: ['web', 'api'] }] },
      ],
    };
    expect(decideInjection(typicalPod(), 'shop', config)).toMatchObject({
      inject: true,
      reason: 'always-inject-selector',
    });
  });

  it('lets neverInjectSelector take precedence over alwaysInjectSelector', () => {
    const config = {
      ...enabled,
      neverInjectSelector: [{ matchExpressions: [{ key: 'app', operator: 'Exists' as const }] }],
      alwaysInjectSelector: [{ matchLabels: { app: 'web' } }],
    };
    expect(decideInjection(typicalPod(), 'shop', config).reason).toBe('never-inject-selector');
  });

  it('ignores empty and invalid selectors, with a warning for the invalid one', () => {
    const config = {
      ...enabled,
      neverInjectSelector: [{}, { matchExpressions: [{ key: 'app', operator: 'In' as const, values: [] }] }],
    };
    const decision = decideInjection(typicalPod(), 'shop', config);
    expect(decision.inject).toBe(true);
    expect(decision.warnings.join()).toContain('ignoring invalid selector');
  });

  it('matches NotIn and DoesNotExist selector expressions', () => {
    const config = {
      ...enabled,
      neverInjectSelector: [
        {
          matchExpressions: [
            { key: 'tier', operator: 'NotIn' as const, values: ['frontend'] },
            { key: 'legacy', operator: 'DoesNotExist' as const },
          ],
        },
      ],
    };
    expect(decideInjection(typicalPod(), 'shop', config).inject).toBe(false);
    expect(decideInjection(typicalPod({ labels: { legacy: 'x' } }), 'shop', config).inject).toBe(true);
    expect(decideInjection(typicalPod({ labels: { tier: 'frontend' } }), 'shop', config).inject).toBe(true);
  });
});

describe('a pod another injector has already injected', () => {
  const self = { revision: 'default', templateVersionInStatus: true };
  const istiodStatus =
    '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"default"}';

  it('is skipped when Linkerd injected it, even when the pod asks for injection', () => {
    const linkerd = typicalPod({ labels: { 'sidecar.istio.io/inject': 'true' } });
    linkerd.spec!.containers.push({ name: 'linkerd-proxy', image: 'cr.l5d.io/linkerd/proxy:edge' });
    expect(decideInjection(linkerd, 'shop', enabled, self)).toMatchObject({
      inject: false,
      reason: 'injected-by-another',
      injector: 'linkerd',
    });
    const annotated = typicalPod({ annotations: { 'linkerd.io/proxy-version': 'edge-25.1.1' } });
    expect(decideInjection(annotated, 'shop', enabled, self)).toMatchObject({
      reason: 'injected-by-another',
    });
  });

  it("is skipped when istiod's status (no template version) or another revision's is on it, with a warning", () => {
    const istiod = typicalPod({ annotations: { 'sidecar.istio.io/status': istiodStatus } });
    istiod.spec!.containers.push({ name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.28.0' });
    const decision = decideInjection(istiod, 'shop', enabled, self);
    expect(decision).toMatchObject({ inject: false, reason: 'injected-by-another' });
    expect(decision.warnings.join()).toContain('already injected by istiod');
    const canary = typicalPod({
      annotations: { 'sidecar.istio.io/status': istiodStatus.replace('"default"', '"canary"') },
    });
    expect(decideInjection(canary, 'shop', enabled, self)).toMatchObject({
      reason: 'injected-by-another',
      injector: 'the injector of revision "canary"',
    });
  });

  it('is re-injected when the status is this injector’s own, or istiod’s for the istiod profile', () => {
    const ownStatus = istiodStatus.replace('}', ',"version":"0123456789abcdef"}');
    expect(
      decideInjection(
        typicalPod({ annotations: { 'sidecar.istio.io/status': ownStatus } }),
        'shop',
        enabled,
        self,
      ),
    ).toMatchObject({
      inject: true,
    });
    const profile = { ...self, templateVersionInStatus: false };
    expect(
      decideInjection(
        typicalPod({ annotations: { 'sidecar.istio.io/status': istiodStatus } }),
        'shop',
        enabled,
        profile,
      ),
    ).toMatchObject({ inject: true });
  });

  it('is not what a pod’s own istio-proxy container without a status is (that customises the injected one)', () => {
    const custom = typicalPod();
    custom.spec!.containers.push({ name: 'istio-proxy', image: 'auto' });
    expect(decideInjection(custom, 'shop', enabled, self).inject).toBe(true);
  });
});
