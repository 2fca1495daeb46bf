/**
 * Kubernetes label selectors (metav1.LabelSelector), as the injector's neverInjectSelector and
 * alwaysInjectSelector use them.
 */

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export type Labels = Readonly<Record<string, string>>;

const OPERATORS: readonly string[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/** Why a selector cannot be used, or undefined when it is well formed. Mirrors metav1.LabelSelectorAsSelector. */
export function selectorProblem(selector: LabelSelector): string | undefined {
  // Selectors come from YAML: a number or a bare string where a list belongs would match the wrong pods.
  const labels: unknown = selector.matchLabels ?? {};
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels))
    return 'matchLabels is not a mapping';
  for (const [key, value] of Object.entries(labels)) {
    if (typeof value !== 'string') return `matchLabels.${key} is not a string (quote it)`;
  }
  const expressions: unknown = selector.matchExpressions ?? [];
  if (!Array.isArray(expressions)) return 'matchExpressions is not a list';
  for (const requirement of expressions as LabelSelectorRequirement[]) {
    if (typeof requirement?.key !== 'string') return 'a matchExpressions item has no string key';
    const given: unknown = requirement.values ?? [];
    if (!Array.isArray(given) || given.some((value) => typeof value !== 'string')) {
      return `matchExpressions ${requirement.key}: values is not a list of strings`;
    }
    if (!OPERATORS.includes(requirement.operator)) {
      return `operator ${JSON.stringify(requirement.operator)} is not one of ${OPERATORS.join(', ')}`;
    }
    const values = requirement.values ?? [];
    const needsValues = requirement.operator === 'In' || requirement.operator === 'NotIn';
    if (needsValues && values.length === 0) return `operator ${requirement.operator} needs values`;
    if (!needsValues && values.length > 0) return `operator ${requirement.operator} takes no values`;
  }
  return undefined;
}

/** An empty selector matches nothing here, as in Istio's injector (it skips empty selectors). */
export function isEmptySelector(selector: LabelSelector): boolean {
  return (
    Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0
  );
}

export function matchesSelector(selector: LabelSelector, labels: Labels): boolean {
  if (isEmptySelector(selector)) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, key);
    const value = labels[key];
    switch (operator) {
      case 'In':
        if (!present || !values.includes(value as string)) return false;
        break;
      case 'NotIn':
        if (present && values.includes(value as string)) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
    }
  }
  return true;
}
