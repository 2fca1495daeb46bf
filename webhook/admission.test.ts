import { describe, expect, it } from 'vitest';
import { shippedContext, typicalPod } from '../test/fixtures/pods.js';
import { admissionResponse, admissionResponseJson, type AdmissionReview, type Verdict } from './admission.js';
import { reviewRequest } from './review.js';

const review = (uid: string): AdmissionReview => ({
  apiVersion: 'admission.k8s.io/v1',
  request: {
    uid,
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'shop',
    operation: 'CREATE',
    object: typicalPod(),
  },
});

describe('the answer as JSON text', () => {
  it('is exactly JSON.stringify of the answer, for an injected pod', async () => {
    const request = review('a"uid\\with\nescapes');
    const outcome = reviewRequest(request.request, await shippedContext());
    if (outcome.outcome !== 'injected') throw new Error(outcome.outcome);
    const verdict: Verdict = { allowed: true, patch: outcome.patch };
    const text = admissionResponseJson(request, verdict);
    expect(text).toBe(JSON.stringify(admissionResponse(request, verdict)));
    expect(JSON.parse(text)).toMatchObject({ response: { patchType: 'JSONPatch', allowed: true } });
  });

  it.each<[string, Verdict]>([
    ['an admission without a patch', { allowed: true }],
    ['an admission with an empty patch', { allowed: true, patch: [] }],
    ['a denial', { allowed: false, message: 'invalid "value"' }],
  ])('is exactly JSON.stringify of the answer, for %s', (_name, verdict) => {
    const request = review('uid-1');
    expect(admissionResponseJson(request, verdict)).toBe(JSON.stringify(admissionResponse(request, verdict)));
  });
});

describe('warnings in the answer', () => {
  it('come back for a value Istio treats as no decision and for a deprecated annotation, with the patch', async () => {
    const request = review('uid-2');
    request.request.object = typicalPod({
      annotations: {
        'sidecar.istio.io/inject': 'yes',
        'traffic.sidecar.istio.io/kubevirtInterfaces': 'net1',
      },
    });
    const outcome = reviewRequest(request.request, await shippedContext());
    if (outcome.outcome !== 'injected') throw new Error(outcome.outcome);
    const verdict: Verdict = { allowed: true, patch: outcome.patch, warnings: outcome.warnings };
    const text = admissionResponseJson(request, verdict);
    expect(text).toBe(JSON.stringify(admissionResponse(request, verdict)));
    const warnings = (JSON.parse(text) as { response: { warnings: string[] } }).response.warnings;
    expect(warnings).toEqual([
      expect.stringContaining('invalid value "yes" for sidecar.istio.io/inject'),
      'annotation traffic.sidecar.istio.io/kubevirtInterfaces is deprecated; use istio.io/reroute-virtual-interfaces instead',
    ]);
  });

  it('are one line of printable text each, and absent when there are none', () => {
    const request = review('uid-3');
    const answer = admissionResponse(request, { allowed: true, warnings: ['a\nb\u0000c'] });
    expect(answer.response.warnings).toEqual(['a b c']);
    expect(admissionResponse(request, { allowed: true, warnings: [] }).response).not.toHaveProperty(
      'warnings',
    );
  });
});
