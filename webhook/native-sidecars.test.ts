import { describe, expect, it } from 'vitest';
import { shippedContext, typicalPod } from '../test/fixtures/pods.js';
import { injectPod } from './inject.js';
import {
  kubeletSupportsNativeSidecars,
  resolveNativeSidecars,
  supportsNativeSidecars,
  type ClusterSidecarSupport,
} from './native-sidecars.js';

const cluster = (kubelets: Record<string, string>, apiserverAccepts = true): ClusterSidecarSupport => ({
  apiserverVersion: apiserverAccepts ? 'v1.34.1' : 'v1.20.2',
  apiserverAccepts,
  kubeletVersions: new Map(Object.entries(kubelets)),
});

describe('native sidecars', () => {
  it('are accepted by apiservers from 1.29, including minors such as "29+"', () => {
    expect(supportsNativeSidecars({ major: '1', minor: '28' })).toBe(false);
    expect(supportsNativeSidecars({ major: '1', minor: '29+' })).toBe(true);
    expect(supportsNativeSidecars({ major: '1', minor: '20' })).toBe(false);
  });

  it('run on kubelets from 1.33, whatever the build suffix', () => {
    expect(kubeletSupportsNativeSidecars('v1.32.9')).toBe(false);
    expect(kubeletSupportsNativeSidecars('v1.33.0')).toBe(true);
    expect(kubeletSupportsNativeSidecars('v1.34.2-eks-113cf36')).toBe(true);
    expect(kubeletSupportsNativeSidecars('unknown')).toBe(false);
  });

  describe('in auto mode (Istio rule)', () => {
    it('are on only when every node runs a kubelet of 1.33 or newer', () => {
      expect(
        resolveNativeSidecars(undefined, 'auto', cluster({ a: 'v1.33.1', b: 'v1.34.0' }), undefined),
      ).toEqual({
        native: true,
      });
      expect(
        resolveNativeSidecars(undefined, 'auto', cluster({ a: 'v1.33.1', b: 'v1.31.0' }), undefined),
      ).toEqual({
        native: false,
      });
      expect(resolveNativeSidecars(undefined, 'auto', cluster({}), undefined)).toEqual({ native: false });
    });

    it("follow the pod's own node when spec.nodeName is set", () => {
      const mixed = cluster({ new: 'v1.33.1', old: 'v1.31.0' });
      expect(resolveNativeSidecars(undefined, 'auto', mixed, 'new')).toEqual({ native: true });
      expect(resolveNativeSidecars(undefined, 'auto', mixed, 'old')).toEqual({ native: false });
      expect(resolveNativeSidecars(undefined, 'auto', mixed, 'unknown-node')).toEqual({ native: false });
    });

    it('are off on an apiserver that cannot take them, whatever the kubelets say', () => {
      expect(resolveNativeSidecars(undefined, 'auto', cluster({ a: 'v1.33.1' }, false), undefined)).toEqual({
        native: false,
      });
    });
  });

  it("follow the pod's annotation, then the values' fixed mode", () => {
    const all = cluster({ a: 'v1.34.0' });
    expect(resolveNativeSidecars(false, 'auto', all, undefined)).toEqual({ native: false });
    expect(resolveNativeSidecars(undefined, 'false', all, undefined)).toEqual({ native: false });
    expect(resolveNativeSidecars(undefined, 'true', cluster({ a: 'v1.30.0' }), undefined)).toEqual({
      native: true,
    });
    expect(resolveNativeSidecars(true, 'false', true, undefined)).toEqual({ native: true });
  });

  it('deny a pod asking for them on an apiserver that cannot take them, naming the annotation and the fix', async () => {
    const pod = typicalPod({ annotations: { 'sidecar.istio.io/nativeSidecar': 'true' } });
    const result = injectPod(pod, 'shop', await shippedContext({ nativeSidecars: cluster({}, false) }));
    expect(result.outcome).toBe('denied');
    if (result.outcome !== 'denied') return;
    expect(result.message).toBe(
      'invalid annotation sidecar.istio.io/nativeSidecar: value "true": the apiserver (v1.20.2) cannot take ' +
        'native sidecars, which need Kubernetes 1.29 or newer; fix: remove the annotation (or set it to "false") ' +
        'to get the classic sidecar layout',
    );
    const optOut = typicalPod({ annotations: { 'sidecar.istio.io/nativeSidecar': 'false' } });
    expect(
      injectPod(optOut, 'shop', await shippedContext({ nativeSidecars: cluster({}, false) })).outcome,
    ).toBe('injected');
  });

  it('place the proxy per pod from the nodes the cluster reports', async () => {
    const context = await shippedContext({ nativeSidecars: cluster({ new: 'v1.33.1', old: 'v1.30.0' }) });
    const onNode = (nodeName: string) => {
      const pod = typicalPod();
      pod.spec!.nodeName = nodeName;
      const result = injectPod(pod, 'shop', context);
      if (result.outcome !== 'injected') throw new Error(result.message);
      return result.pod.spec?.initContainers?.map((c) => c.name);
    };
    expect(onNode('new')).toEqual(['istio-init', 'istio-proxy']);
    expect(onNode('old')).toEqual(['istio-init']);
  });
});
