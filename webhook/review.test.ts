import jsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { admissionReview, shippedContext, typicalPod } from '../test/fixtures/pods.js';
import type { AdmissionRequest } from './admission.js';
import { injectPod } from './inject.js';
import { reviewRequest } from './review.js';

async function review(request: AdmissionRequest) {
  return reviewRequest(request, await shippedContext());
}

const requestFor = (pod: unknown, overrides: Record<string, unknown> = {}) =>
  admissionReview(pod, overrides).request as AdmissionRequest;

describe('reviewing an admission request', () => {
  it('answers a pod CREATE with a patch that turns the pod into the injected pod', async () => {
    const pod = typicalPod();
    const outcome = await review(requestFor(pod));
    if (outcome.outcome !== 'injected') throw new Error(outcome.outcome);
    const patched = jsonPatch.applyPatch(structuredClone(pod), outcome.patch, true, false).newDocument;
    const expected = injectPod(pod, 'shop', await shippedContext());
    expect(expected.outcome === 'injected' && patched).toEqual(
      expected.outcome === 'injected' && expected.pod,
    );
  });

  it('keeps the patch minimal: no operation replaces the spec, metadata or an existing container', async () => {
    const outcome = await review(requestFor(typicalPod()));
    if (outcome.outcome !== 'injected') throw new Error(outcome.outcome);
    const paths = outcome.patch.map((op: Operation) => `${op.op} ${op.path}`);
    expect(paths).not.toContain('replace /spec');
    expect(paths).not.toContain('replace /metadata');
    expect(paths.filter((p) => p.startsWith('replace /spec/containers/0') || p.startsWith('remove'))).toEqual(
      [],
    );
    expect(paths).toContain('add /spec/containers/1');
    expect(paths).toContain('add /spec/initContainers');
  });

  it('answers an already injected pod with an empty patch', async () => {
    const first = injectPod(typicalPod(), 'shop', await shippedContext());
    if (first.outcome !== 'injected') throw new Error(first.message);
    const outcome = await review(requestFor(first.pod));
    expect(outcome.outcome === 'injected' && outcome.patch).toEqual([]);
  });

  it('takes the namespace from the request when the pod has none', async () => {
    const pod = typicalPod();
    delete pod.metadata!.namespace;
    const outcome = await review(requestFor(pod, { namespace: 'kube-system' }));
    expect(outcome).toMatchObject({
      outcome: 'skipped',
      reason: 'ignored-namespace',
      namespace: 'kube-system',
    });
  });

  it.each([
    ['an UPDATE', { operation: 'UPDATE' }],
    ['a subresource', { subResource: 'ephemeralcontainers' }],
    ['another kind', { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }],
    ['another resource', { resource: { group: '', version: 'v1', resource: 'services' } }],
  ])('passes %s through unchanged', async (_what, overrides) => {
    expect(await review(requestFor(typicalPod(), overrides))).toEqual({ outcome: 'passthrough' });
  });

  it('calls a pod CREATE without a pod object malformed', async () => {
    expect(await review(requestFor('not a pod'))).toMatchObject({ outcome: 'malformed' });
    expect(await review(requestFor({ spec: [] }))).toMatchObject({ outcome: 'malformed' });
  });

  it('denies with the annotation message and no patch', async () => {
    const outcome = await review(
      requestFor(typicalPod({ annotations: { 'traffic.sidecar.istio.io/includeInboundPorts': 'bad' } })),
    );
    expect(outcome).toMatchObject({ outcome: 'denied' });
    expect(outcome.outcome === 'denied' && outcome.message).toContain(
      'traffic.sidecar.istio.io/includeInboundPorts',
    );
  });
});
