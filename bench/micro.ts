/**
 * Section 2: where a request's time goes inside the webhook, per pod, with tinybench: the JSON parse of the
 * AdmissionReview, the decision (webhook/decision.ts), the rendering (webhook/inject.ts injectPod), the patch
 * (webhook/patch.ts, as webhook/review.ts does, beside fast-json-patch's compare that it replaced), the answer's
 * bytes, and the whole review for comparison.
 */
import type { V1Pod } from '@kubernetes/client-node';
import jsonPatch from 'fast-json-patch';
import { Bench } from 'tinybench';
import { admissionResponseJson, type AdmissionRequest, type AdmissionReview } from '../webhook/admission.js';
import { loadConfig } from '../webhook/config.js';
import { decideInjection } from '../webhook/decision.js';
import { injectPod, type InjectionContext } from '../webhook/inject.js';
import { injectionPatch } from '../webhook/patch.js';
import { reviewRequest } from '../webhook/review.js';
import { SHIPPED_CONFIG_DIR } from '../test/harness/webhook-process.js';
import { admissionReview, POD_KINDS, podOfKind, type PodKind } from './pods.js';
import { formatNumber, type Report } from './report.js';

const SECTION = '2. Where the time goes';

const OPERATIONS = [
  'parse AdmissionReview (JSON.parse)',
  'decision (decideInjection)',
  'rendering (injectPod)',
  'patch (injectionPatch, the hot path)',
  'patch (fast-json-patch compare, before)',
  'answer text (admissionResponseJson)',
  'whole review (reviewRequest)',
] as const;
type Operation = (typeof OPERATIONS)[number];

export async function benchMicro(report: Report, timeMs: number): Promise<void> {
  report.section(SECTION);
  const config = await loadConfig(SHIPPED_CONFIG_DIR);
  const context: InjectionContext = { ...config, nativeSidecars: false };
  const micros = new Map<string, number>();

  for (const kind of POD_KINDS) {
    const bench = new Bench({ name: kind, time: timeMs, warmupTime: Math.min(200, timeMs / 2) });
    for (const [operation, fn] of Object.entries(tasksFor(kind, context))) bench.add(operation, fn);
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result;
      if (result.state !== 'completed') {
        throw new Error(`micro-benchmark ${kind}/${task.name} ended ${result.state}`);
      }
      const microseconds = result.period * 1000;
      micros.set(`${kind}/${task.name}`, microseconds);
      report.figure(SECTION, `${kind} pod: ${task.name}`, microseconds, 'µs/op');
    }
  }

  report.table({
    title: 'Where the time goes (tinybench, µs per operation, mean)',
    header: ['Operation', ...POD_KINDS.map((kind) => `${kind} pod`)],
    rows: OPERATIONS.map((operation) => [
      operation,
      ...POD_KINDS.map((kind) => formatNumber(micros.get(`${kind}/${operation}`) ?? Number.NaN)),
    ]),
    notes: ['In-process, single thread; the shipped manifests/config; classic (non-native) sidecar layout.'],
  });
}

function tasksFor(kind: PodKind, context: InjectionContext): Record<Operation, () => unknown> {
  const pod: V1Pod = podOfKind(kind);
  const namespace = pod.metadata?.namespace ?? 'default';
  const reviewText = JSON.stringify(admissionReview(pod));
  const request = admissionReview(pod).request as unknown as AdmissionRequest;
  const injected = injectPod(pod, namespace, context);
  if (injected.outcome !== 'injected')
    throw new Error(`the ${kind} pod was not injected: ${injected.message}`);
  const review = admissionReview(pod) as unknown as AdmissionReview;
  const patch = injectionPatch(pod, injected.pod);
  return {
    'parse AdmissionReview (JSON.parse)': () => JSON.parse(reviewText) as unknown,
    'decision (decideInjection)': () => decideInjection(pod, namespace, context.values),
    'rendering (injectPod)': () => injectPod(pod, namespace, context),
    'patch (injectionPatch, the hot path)': () => injectionPatch(pod, injected.pod),
    'patch (fast-json-patch compare, before)': () => jsonPatch.compare(pod, injected.pod),
    'answer text (admissionResponseJson)': () => admissionResponseJson(review, { allowed: true, patch }),
    'whole review (reviewRequest)': () => reviewRequest(request, context),
  };
}
