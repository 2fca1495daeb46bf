/**
 * Whether a pod gets a sidecar: Istio's `injectRequired` (pkg/kube/inject/inject.go), rule for rule and in order.
 * Namespace labels are not read here: the MutatingWebhookConfiguration's selectors decide which namespaces reach
 * the webhook at all.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { ANNOTATIONS, IGNORED_NAMESPACES, LABELS } from '../common/constants.js';
import { matchesSelector, selectorProblem, type LabelSelector } from './label-selector.js';

export type InjectionPolicy = 'enabled' | 'disabled';

export interface DecisionConfig {
  policy: InjectionPolicy;
  neverInjectSelector: readonly LabelSelector[];
  alwaysInjectSelector: readonly LabelSelector[];
}

export type SkipReason =
  'host-network' | 'ignored-namespace' | 'explicitly-disabled' | 'never-inject-selector' | 'policy-disabled';

export type Decision =
  | {
      inject: true;
      reason: 'explicitly-enabled' | 'always-inject-selector' | 'policy-enabled';
      warnings: string[];
    }
  | { inject: false; reason: SkipReason; warnings: string[] };

export function decideInjection(pod: V1Pod, namespace: string, config: DecisionConfig): Decision {
  const warnings: string[] = [];
  if (pod.spec?.hostNetwork === true) return { inject: false, reason: 'host-network', warnings };
  if (IGNORED_NAMESPACES.includes(namespace)) return { inject: false, reason: 'ignored-namespace', warnings };

  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  // A present label replaces the annotation, even when the label is empty.
  const explicit = Object.hasOwn(labels, LABELS.inject)
    ? labels[LABELS.inject]
    : annotations[ANNOTATIONS.inject];

  let explicitChoice: boolean | undefined;
  if (explicit === 'true') explicitChoice = true;
  else if (explicit === 'false') explicitChoice = false;
  else if (explicit !== undefined && explicit !== '') {
    warnings.push(
      `invalid value ${JSON.stringify(explicit)} for ${LABELS.inject}: only "true" and "false" are accepted; ` +
        'falling back to the default injection policy',
    );
  }

  if (explicitChoice === true) return { inject: true, reason: 'explicitly-enabled', warnings };
  if (explicitChoice === false) return { inject: false, reason: 'explicitly-disabled', warnings };

  if (firstMatch(config.neverInjectSelector, labels, warnings)) {
    return { inject: false, reason: 'never-inject-selector', warnings };
  }
  if (firstMatch(config.alwaysInjectSelector, labels, warnings)) {
    return { inject: true, reason: 'always-inject-selector', warnings };
  }
  return config.policy === 'enabled'
    ? { inject: true, reason: 'policy-enabled', warnings }
    : { inject: false, reason: 'policy-disabled', warnings };
}

function firstMatch(
  selectors: readonly LabelSelector[],
  labels: Readonly<Record<string, string>>,
  warnings: string[],
): boolean {
  return selectors.some((selector) => {
    const problem = selectorProblem(selector);
    if (problem !== undefined) {
      warnings.push(`ignoring invalid selector ${JSON.stringify(selector)}: ${problem}`);
      return false;
    }
    return matchesSelector(selector, labels);
  });
}
