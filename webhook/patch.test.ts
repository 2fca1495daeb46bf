import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import fc from 'fast-check';
import jsonPatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../common/constants.js';
import { shippedContext, typicalPod } from '../test/fixtures/pods.js';
import { injectPod, type InjectionContext } from './inject.js';
import { injectionPatch } from './patch.js';

const SEED = 20_261_203;

/** What fast-json-patch makes of a pod and a patch: the pod the apiserver would store. */
function applied(pod: unknown, patch: jsonPatch.Operation[]): unknown {
  return jsonPatch.applyPatch(structuredClone(pod), patch, true, false).newDocument;
}

/** The JSON text of a value, as the webhook sends it (undefined properties dropped). */
const json = (value: unknown) => JSON.stringify(value);

const name = fc.constantFrom('web', 'app', 'worker', 'istio-proxy', 'istio-init', 'istio-envoy', 'data');
const container: fc.Arbitrary<V1Container> = fc.record(
  {
    name,
    image: fc.constantFrom('registry.example.com/app:1', 'auto', 'nginx'),
    ports: fc.array(fc.record({ containerPort: fc.integer({ min: 1, max: 65535 }) }), { maxLength: 2 }),
    env: fc.array(fc.record({ name: fc.constantFrom('A', 'B'), value: fc.string({ maxLength: 8 }) }), {
      maxLength: 2,
    }),
  },
  { requiredKeys: ['name'] },
);
const volume: fc.Arbitrary<V1Volume> = fc.record({
  name: fc.constantFrom('data', 'config', 'istio-envoy', 'istio-data', 'tmp'),
  emptyDir: fc.constant({}),
});
/** Annotations injection accepts, so most generated pods are injected rather than denied. */
const annotations = fc.dictionary(
  fc.constantFrom(
    ANNOTATIONS.nativeSidecar,
    'sidecar.istio.io/proxyCPU',
    'traffic.sidecar.istio.io/excludeOutboundPorts',
    'prometheus.io/scrape',
    'kubectl.kubernetes.io/default-container',
    'example.com/owner',
  ),
  fc.constantFrom('true', 'false', '100m', '8080,9090', 'team-a'),
  { maxKeys: 3 },
);

const pod: fc.Arbitrary<V1Pod> = fc
  .record(
    {
      labels: fc.dictionary(
        fc.constantFrom('app', 'version', 'service.istio.io/canonical-name'),
        fc.constantFrom('web', 'v1'),
      ),
      annotations,
      containers: fc.uniqueArray(container, { minLength: 1, maxLength: 3, selector: (c) => c.name }),
      initContainers: fc.option(fc.uniqueArray(container, { maxLength: 2, selector: (c) => c.name }), {
        nil: undefined,
      }),
      volumes: fc.option(fc.uniqueArray(volume, { maxLength: 3, selector: (v) => v.name }), {
        nil: undefined,
      }),
    },
    { requiredKeys: ['containers'] },
  )
  .map(({ labels, annotations: podAnnotations, containers, initContainers, volumes }) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'generated',
      namespace: 'shop',
      ...(labels ? { labels } : {}),
      ...(podAnnotations ? { annotations: podAnnotations } : {}),
    },
    spec: {
      containers,
      ...(initContainers ? { initContainers } : {}),
      ...(volumes ? { volumes } : {}),
    },
  }));

function inject(original: V1Pod, context: InjectionContext): V1Pod | undefined {
  const result = injectPod(original, 'shop', context);
  return result.outcome === 'injected' ? result.pod : undefined;
}

describe('the injection patch', () => {
  it("is fast-json-patch's compare, operation for operation, for a typical pod", async () => {
    const original = typicalPod();
    const injected = inject(original, await shippedContext());
    expect(injected).toBeDefined();
    const patch = injectionPatch(original, injected!);
    expect(json(patch)).toBe(json(jsonPatch.compare(original, injected!)));
    expect(patch.map((op) => `${op.op} ${op.path}`)).toContain('add /spec/containers/1');
  });

  it('applies with fast-json-patch to the same pod as compare, for generated pods, injected once or twice', async () => {
    const classic = await shippedContext();
    const native = await shippedContext({ nativeSidecars: true });
    let injectedCount = 0;
    fc.assert(
      fc.property(pod, fc.boolean(), fc.boolean(), (original, useNative, twice) => {
        const context = useNative ? native : classic;
        const first = inject(original, context);
        if (!first) return;
        // A pod injected before (say under the other layout) is injected again from its stored JSON form.
        const before = twice ? (JSON.parse(json(first)) as V1Pod) : original;
        const injected = twice ? inject(before, useNative ? classic : native) : first;
        if (!injected) return;
        injectedCount++;
        const patch = injectionPatch(before, injected);
        const expected = jsonPatch.compare(before, injected);
        expect(json(patch)).toBe(json(expected));
        expect(applied(before, patch)).toEqual(applied(before, expected));
        expect(applied(before, patch)).toEqual(JSON.parse(json(injected)));
      }),
      { seed: SEED, numRuns: 300 },
    );
    // Most generated pods must be injected, or the property says little.
    expect(injectedCount).toBeGreaterThan(150);
  });

  it('is compare for any two JSON documents, including arrays that shrink, grow or change type', () => {
    const document = fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 3 }), {
      maxKeys: 5,
    });
    fc.assert(
      fc.property(document, document, (before, after) => {
        expect(json(injectionPatch(before, after))).toBe(json(jsonPatch.compare(before, after)));
        expect(applied(before, injectionPatch(before, after))).toEqual(JSON.parse(json(after)));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('shares values with the injected pod instead of copying them, and leaves both pods untouched', async () => {
    const original = typicalPod();
    const frozen = json(original);
    const injected = inject(original, await shippedContext())!;
    const proxy = injected.spec!.containers.at(-1);
    const patch = injectionPatch(original, injected);
    expect(patch.find((op) => op.path === '/spec/containers/1')).toMatchObject({ op: 'add' });
    expect((patch.find((op) => op.path === '/spec/containers/1') as { value: unknown }).value).toBe(proxy);
    expect(json(original)).toBe(frozen);
  });

  it('is empty for a pod and itself, and for two equal pods', () => {
    const original = typicalPod();
    expect(injectionPatch(original, original)).toEqual([]);
    expect(injectionPatch(original, typicalPod())).toEqual([]);
  });
});
