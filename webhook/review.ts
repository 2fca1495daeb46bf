/**
 * One admission request, decided: pass through what is not a pod CREATE, skip what Istio would skip, deny what
 * has invalid annotations, and otherwise answer with the minimal JSON patch from the pod to the injected pod.
 */
import type { V1Pod } from '@kubernetes/client-node';
import jsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { isPodCreate, podOf, type AdmissionRequest } from './admission.js';
import { decideInjection, type SkipReason } from './decision.js';
import { injectPod, type InjectionContext } from './inject.js';

export type ReviewOutcome =
  | { outcome: 'passthrough' }
  | { outcome: 'malformed'; reason: string }
  | { outcome: 'skipped'; reason: SkipReason; pod: V1Pod; namespace: string; warnings: string[] }
  | { outcome: 'denied'; message: string; pod: V1Pod; namespace: string; warnings: string[] }
  | { outcome: 'injected'; patch: Operation[]; pod: V1Pod; namespace: string; warnings: string[] };

export function reviewRequest(request: AdmissionRequest, context: InjectionContext): ReviewOutcome {
  if (!isPodCreate(request)) return { outcome: 'passthrough' };
  const parsed = podOf(request);
  if (!parsed.ok) return { outcome: 'malformed', reason: parsed.reason };
  const pod = parsed.pod;
  // The object of a CREATE often has no namespace yet; the request always does.
  const namespace = pod.metadata?.namespace || request.namespace || 'default';

  const decision = decideInjection(pod, namespace, context.values);
  const { warnings } = decision;
  if (!decision.inject) return { outcome: 'skipped', reason: decision.reason, pod, namespace, warnings };

  const injected = injectPod(pod, namespace, context);
  if (injected.outcome === 'denied')
    return { outcome: 'denied', message: injected.message, pod, namespace, warnings };
  return { outcome: 'injected', patch: jsonPatch.compare(pod, injected.pod), pod, namespace, warnings };
}

/** The pod's name for logs: a CREATE from a controller has only a generateName. */
export function podName(pod: V1Pod): string {
  return pod.metadata?.name || (pod.metadata?.generateName ? `${pod.metadata.generateName}*` : '');
}
