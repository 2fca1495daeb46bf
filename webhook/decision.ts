/**
 * Whether a pod gets a sidecar: Istio's `injectRequired` (pkg/kube/inject/inject.go), rule for rule and in order.
 * Namespace labels are not read here: the MutatingWebhookConfiguration's selectors decide which namespaces reach
 * the webhook at all.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { ANNOTATIONS, IGNORED_NAMESPACES, LABELS } from '../common/constants.js';
import { matchesSelector, selectorProblem, type LabelSelector } from './label-selector.js';
import { parseStatus } from './status.js';

export type InjectionPolicy = 'enabled' | 'disabled';

export interface DecisionConfig {
  policy: InjectionPolicy;
  neverInjectSelector: readonly LabelSelector[];
  alwaysInjectSelector: readonly LabelSelector[];
}

/** What tells this injector's status annotation from another's (InjectorValues has both). */
export interface InjectorIdentity {
  revision: string;
  /** Whether the status annotation carries the template version (the istiod profile's does not). */
  templateVersionInStatus: boolean;
}

export type SkipReason =
  | 'host-network'
  | 'ignored-namespace'
  | 'injected-by-another'
  | 'explicitly-disabled'
  | 'never-inject-selector'
  | 'policy-disabled';

export type Decision =
  | {
      inject: true;
      reason: 'explicitly-enabled' | 'always-inject-selector' | 'policy-enabled';
      warnings: string[];
    }
  | { inject: false; reason: SkipReason; warnings: string[]; injector?: string };

/** With `self`, a pod another injector has already injected is skipped (otherInjector). */
export function decideInjection(
  pod: V1Pod,
  namespace: string,
  config: DecisionConfig,
  self?: InjectorIdentity,
): Decision {
  const warnings: string[] = [];
  if (pod.spec?.hostNetwork === true) return { inject: false, reason: 'host-network', warnings };
  if (IGNORED_NAMESPACES.includes(namespace)) return { inject: false, reason: 'ignored-namespace', warnings };
  if (self !== undefined) {
    // Before the pod's own choice: a second proxy beside another mesh's would capture its traffic twice.
    const injector = otherInjector(pod, self);
    if (injector !== undefined) {
      warnings.push(
        `the pod is already injected by ${injector}; a second proxy would capture its traffic twice`,
      );
      return { inject: false, reason: 'injected-by-another', warnings, injector };
    }
  }

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

/**
 * Which other injector already injected the pod, if any: Linkerd (its proxy container or its proxy-version
 * annotation), or an Istio-style injector whose status annotation is not this one's: another revision, or, when
 * this injector stamps its template version into the status, a status without one (istiod's). A status of this
 * injector is re-injected instead, which gives the same pod, as in Istio. A pod's own `istio-proxy` container
 * without a status is a customisation, not an injection.
 */
export function otherInjector(pod: V1Pod, self: InjectorIdentity): string | undefined {
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const annotations = pod.metadata?.annotations ?? {};
  if (
    containers.some((c) => c.name === 'linkerd-proxy') ||
    Object.hasOwn(annotations, 'linkerd.io/proxy-version')
  ) {
    return 'linkerd';
  }
  const status = parseStatus(annotations[ANNOTATIONS.status]);
  if (status === undefined) return undefined;
  const statusRevision = status.revision || 'default';
  if (statusRevision !== self.revision) return `the injector of revision ${JSON.stringify(statusRevision)}`;
  if (self.templateVersionInStatus && status.version === undefined)
    return 'istiod (a status annotation without a template version)';
  return undefined;
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
