import { describe, expect, it } from 'vitest';
import { shippedContext, typicalPod } from '../test/fixtures/pods.js';
import {
  admissionResponse,
  admissionResponseJson,
  longStringMarker,
  type AdmissionReview,
  type Verdict,
} from './admission.js';
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
    expect(JSON.parse(text)).toMatchObject({
      response: { patchType: 'JSONPatch', allowed: true },
    });
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

describe('the patch in the answer', () => {
  const patchOf = (text: string) =>
    JSON.parse(
      Buffer.from((JSON.parse(text) as { response: { patch: string } }).response.patch, 'base64').toString(),
    ) as unknown;

  it('decodes to the patch, whatever the answers before it, for small, non-ASCII and megabyte patches', () => {
    const request = review('uid-2');
    const patches = [
      [{ op: 'add', path: '/metadata/labels/a', value: 'x' }],
      [{ op: 'add', path: '/metadata/annotations/note', value: 'café ☕ 𝄞 — \u0000 "quoted"' }],
      [{ op: 'add', path: '/metadata/annotations/big', value: 'é'.repeat(600_000) }],
      [{ op: 'add', path: '/metadata/labels/b', value: 'y' }],
    ] as const;
    for (const patch of patches) {
      const verdict: Verdict = { allowed: true, patch: [...patch] };
      const text = admissionResponseJson(request, verdict);
      expect(patchOf(text)).toEqual(patch);
      expect(text).toBe(JSON.stringify(admissionResponse(request, verdict)));
    }
  });
});

describe('long strings in the patch', () => {
  const patchText = (text: string) =>
    Buffer.from((JSON.parse(text) as { response: { patch: string } }).response.patch, 'base64').toString();

  it('are written exactly as JSON.stringify writes them, the first time and when they come back, and stay unchanged in the patch', () => {
    const request = review('uid-long');
    const quoted = `{"config":"${'a\\"b\n\t\u0001'.repeat(300)}"} é ☕ 𝄞`;
    const huge = 'x"'.repeat(40_000);
    class Stamp {
      toJSON() {
        return 'stamped';
      }
    }
    const patch = [
      {
        op: 'add',
        path: '/spec/containers/1',
        value: { env: [{ name: 'A', value: quoted }], args: [quoted, 'short'] },
      },
      { op: 'add', path: '/metadata/annotations/huge', value: huge },
      { op: 'add', path: '/metadata/annotations/stamp', value: new Stamp() },
      { op: 'add', path: '/metadata/annotations/list', value: [undefined, quoted] },
    ];
    const before = JSON.stringify(patch);
    for (let round = 0; round < 3; round++) {
      const verdict = { allowed: true, patch } as Verdict;
      const text = admissionResponseJson(request, verdict);
      expect(patchText(text)).toBe(before);
      expect(text).toBe(JSON.stringify(admissionResponse(request, verdict)));
    }
    expect(JSON.stringify(patch)).toBe(before);
    expect(patch[0]!.value).toEqual({ env: [{ name: 'A', value: quoted }], args: [quoted, 'short'] });
  });

  it('are right when a string in the patch spells the marker that stands for one while it is serialised', () => {
    const request = review('uid-forged');
    const long = `"${'b'.repeat(2000)}"`;
    for (const forged of [longStringMarker(0), `${longStringMarker(1)}${'c'.repeat(2000)}`]) {
      const patch = [
        { op: 'add' as const, path: '/metadata/annotations/long', value: long },
        { op: 'add' as const, path: '/metadata/annotations/forged', value: forged },
        { op: 'add' as const, path: `/metadata/annotations/${forged}`, value: 'key' },
      ];
      expect(patchText(admissionResponseJson(request, { allowed: true, patch }))).toBe(JSON.stringify(patch));
    }
  });

  it('are right when many different ones pass, more than are kept', () => {
    const request = review('uid-many');
    for (let i = 0; i < 40; i++) {
      const value = `${i}:${'"q"'.repeat(400 + i)}`;
      const patch = [{ op: 'add' as const, path: '/metadata/annotations/a', value }];
      expect(patchText(admissionResponseJson(request, { allowed: true, patch }))).toBe(JSON.stringify(patch));
    }
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
