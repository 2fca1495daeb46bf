/**
 * Offline injection, like `istioctl kube-inject`: a multi-document YAML stream in, the same stream out with every
 * pod template injected by the webhook's own code (decideInjection, injectPod). Pure: text and context in, text and
 * diagnostics out.
 *
 * Documents that do not change (unknown kinds, skipped objects, empty documents) are copied byte for byte. An
 * injected document is edited in place, key by key, so its comments and layout survive wherever the edit does not
 * reach. YAML 1.1 is used both ways, as kubectl reads it (`on`, `yes` are booleans there, so such strings are quoted).
 */
import type { V1ObjectMeta, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { isMap, isSeq, Parser, parseAllDocuments, type Document } from 'yaml';
import { decideInjection, type DecisionConfig, type SkipReason } from '../webhook/decision.js';
import { injectPod, type InjectionContext } from '../webhook/inject.js';
import { describeProblem } from '../webhook/pod-settings.js';
import { LABELS } from '../common/constants.js';

export interface Diagnostic {
  severity: 'error' | 'skip' | 'warning';
  /** e.g. `Deployment "shop/web" (document 2)`. */
  object: string;
  message: string;
}

/** What happened to one object of the stream, for summaries. */
export interface ObjectResult {
  kind: string;
  /** `namespace/name`, or `name`; empty when the object has none. */
  name: string;
  /** `skipped`: left alone (with the reason); `denied`: refused, so nothing is written. */
  outcome: 'injected' | 'skipped' | 'denied';
  reason: string;
}

export type InjectManifestsResult =
  | { ok: true; text: string; injected: number; diagnostics: Diagnostic[]; results: ObjectResult[] }
  | { ok: false; diagnostics: Diagnostic[]; results: ObjectResult[] };

/**
 * istioctl kube-inject's decision: the policy is forced to `enabled` and the selectors are not consulted, because
 * asking for injection is the user's explicit choice. The pod's own `sidecar.istio.io/inject`, host networking and
 * the ignored namespaces still skip.
 */
export const OFFLINE_DECISION: DecisionConfig = {
  policy: 'enabled',
  neverInjectSelector: [],
  alwaysInjectSelector: [],
};

type Path = (string | number)[];

/** Where a kind keeps its pod template. The kind's API group must match too, so a CRD named `Job` passes through. */
const POD_TEMPLATE_PATHS: Record<string, { groups: string[]; path: Path }> = {
  Pod: { groups: [''], path: [] },
  ReplicationController: { groups: [''], path: ['spec', 'template'] },
  Deployment: { groups: ['apps', 'extensions'], path: ['spec', 'template'] },
  StatefulSet: { groups: ['apps'], path: ['spec', 'template'] },
  DaemonSet: { groups: ['apps', 'extensions'], path: ['spec', 'template'] },
  ReplicaSet: { groups: ['apps', 'extensions'], path: ['spec', 'template'] },
  Job: { groups: ['batch'], path: ['spec', 'template'] },
  // Istio puts the labels and annotations on spec.jobTemplate.metadata; on the pod template they reach the pods,
  // so the status annotation is there for re-injection and `mesh-injector check`.
  CronJob: { groups: ['batch'], path: ['spec', 'jobTemplate', 'spec', 'template'] },
  // OpenShift's; `v1` without a group is its pre-3.6 form, which Istio's kube-inject also injects.
  DeploymentConfig: { groups: ['apps.openshift.io', ''], path: ['spec', 'template'] },
};

const YAML_OPTIONS = { version: '1.1', prettyErrors: false } as const;

export function injectManifests(text: string, context: InjectionContext): InjectManifestsResult {
  const documents = parseAllDocuments(text, YAML_OPTIONS);
  if (!Array.isArray(documents) || documents.length === 0) {
    return { ok: true, text, injected: 0, diagnostics: [], results: [] };
  }
  const diagnostics: Diagnostic[] = [];
  const results: ObjectResult[] = [];
  const segments = documentSegments(text, documents.length);
  let injected = 0;
  const output: string[] = [];

  documents.forEach((document, index) => {
    const where = `document ${index + 1}`;
    const [error] = document.errors;
    if (error) {
      const offset = error.pos[0];
      const line = text.slice(0, offset).split('\n').length;
      const column = offset - text.lastIndexOf('\n', offset - 1);
      diagnostics.push({
        severity: 'error',
        object: where,
        message:
          `is not valid YAML (line ${line}, column ${column}): ${error.message.split('\n')[0]}; ` +
          'fix: correct the YAML syntax',
      });
      return;
    }
    const changes = injectDocument(document, where, context, { diagnostics, results });
    injected += changes;
    output.push(changes > 0 || segments === undefined ? documentText(document, index) : segments[index]!);
  });

  if (diagnostics.some((diagnostic) => diagnostic.severity === 'error'))
    return { ok: false, diagnostics, results };
  return { ok: true, text: output.join(''), injected, diagnostics, results };
}

interface Report {
  diagnostics: Diagnostic[];
  results: ObjectResult[];
}

/** Injects every pod template in the document, editing it in place; returns how many changed. */
function injectDocument(
  document: Document,
  where: string,
  context: InjectionContext,
  report: Report,
): number {
  const object: unknown = document.toJS();
  if (object === null || object === undefined) return 0;
  if (!isRecord(object)) {
    leftAlone(report, { kind: '', name: '', where }, 'it is not a Kubernetes object (a YAML mapping)');
    return 0;
  }
  if (object.kind === 'List' && apiGroup(object.apiVersion) === '' && Array.isArray(object.items)) {
    let changed = 0;
    object.items.forEach((item: unknown, index) => {
      changed += injectObject(
        document,
        ['items', index],
        item,
        `${where}, item ${index + 1}`,
        context,
        report,
      );
    });
    return changed;
  }
  return injectObject(document, [], object, where, context, report);
}

/** Names an object left alone on stderr, with the reason, and records it. */
function leftAlone(
  { diagnostics, results }: Report,
  object: { kind: string; name: string; where: string },
  reason: string,
): void {
  const description = object.kind
    ? `${object.kind} ${JSON.stringify(object.name)} (${object.where})`
    : object.where;
  diagnostics.push({ severity: 'skip', object: description, message: `not injected: ${reason}` });
  results.push({ kind: object.kind, name: object.name, outcome: 'skipped', reason });
}

/** Injects one object, then, with values.offlineGoFields, writes the fields Go's encoder adds to it. */
function injectObject(
  document: Document,
  objectPath: Path,
  object: unknown,
  where: string,
  context: InjectionContext,
  report: Report,
): number {
  const changed = injectTemplate(document, objectPath, object, where, context, report);
  if (!context.values.offlineGoFields || !isRecord(object) || typeof object.kind !== 'string') return changed;
  const kind = POD_TEMPLATE_PATHS[object.kind];
  if (!kind || !kind.groups.includes(apiGroup(object.apiVersion))) return changed;
  const before = objectPath.length === 0 ? document.toJS() : valueAt(document.toJS(), objectPath);
  if (!isRecord(before)) return changed;
  const after = withGoFields(before, object.kind, kind.path);
  if (deepEqual(before, after)) return changed;
  reconcile(document, objectPath, before, after);
  return changed || 1;
}

/**
 * What Go's encoder writes for a workload's unset fields, as istioctl kube-inject's output has them: `status: {}`,
 * `strategy: {}` (Deployment, DeploymentConfig) or `updateStrategy: {}` (DaemonSet, StatefulSet), the pod
 * template's `metadata: {}`, and `resources: {}` on every container.
 */
function withGoFields(
  object: Record<string, unknown>,
  kind: string,
  templatePath: Path,
): Record<string, unknown> {
  const copy = structuredClone(object);
  copy.status ??= { ...GO_STATUS[kind] };
  const spec = isRecord(copy.spec) ? copy.spec : undefined;
  if (spec && (kind === 'Deployment' || kind === 'DeploymentConfig')) spec.strategy ??= {};
  if (spec && kind === 'DeploymentConfig') {
    if (isRecord(spec.strategy)) spec.strategy.resources ??= {};
    spec.test ??= false;
    if (spec.paused === false) delete spec.paused;
    if (spec.minReadySeconds === 0) delete spec.minReadySeconds;
  }
  if (spec && (kind === 'DaemonSet' || kind === 'StatefulSet')) spec.updateStrategy ??= {};
  const template = templatePath.length === 0 ? copy : valueAt(copy, templatePath);
  if (isRecord(template)) {
    template.metadata ??= {};
    const podSpec = isRecord(template.spec) ? template.spec : undefined;
    for (const list of ['initContainers', 'containers'] as const) {
      const containers = podSpec?.[list];
      if (!Array.isArray(containers)) continue;
      for (const container of containers) if (isRecord(container)) goContainer(container);
    }
  }
  return copy;
}

/** Status fields Go writes even when zero (no omitempty), by kind. */
const GO_STATUS: Record<string, Record<string, number>> = {
  DaemonSet: { currentNumberScheduled: 0, numberMisscheduled: 0, desiredNumberScheduled: 0, numberReady: 0 },
  StatefulSet: { replicas: 0, availableReplicas: 0 },
  DeploymentConfig: {
    latestVersion: 0,
    observedGeneration: 0,
    replicas: 0,
    updatedReplicas: 0,
    availableReplicas: 0,
    unavailableReplicas: 0,
  },
};

const PROBE_INTEGERS = [
  'initialDelaySeconds',
  'timeoutSeconds',
  'periodSeconds',
  'successThreshold',
  'failureThreshold',
];

/** `resources: {}` when unset, canonical quantities, and no zero probe integers (omitempty). */
function goContainer(container: Record<string, unknown>): void {
  container.resources ??= {};
  if (isRecord(container.resources)) {
    for (const kind of ['requests', 'limits']) {
      const quantities = container.resources[kind];
      if (!isRecord(quantities)) continue;
      for (const [name, quantity] of Object.entries(quantities)) {
        if (typeof quantity === 'string') quantities[name] = canonicalQuantity(quantity);
      }
    }
  }
  for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
    const fields = container[probe];
    if (!isRecord(fields)) continue;
    for (const field of PROBE_INTEGERS) if (fields[field] === 0) delete fields[field];
  }
}

const BINARY = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

/** resource.Quantity's canonical form for the common cases: "1000m" is "1", "1024Mi" is "1Gi". */
export function canonicalQuantity(quantity: string): string {
  const milli = /^(\d+)m$/.exec(quantity);
  if (milli && Number(milli[1]) % 1000 === 0) return String(Number(milli[1]) / 1000);
  const binary = /^(\d+)(Ki|Mi|Gi|Ti|Pi)$/.exec(quantity);
  if (binary) {
    let value = Number(binary[1]);
    let unit = BINARY.indexOf(binary[2]!);
    while (value >= 1024 && value % 1024 === 0 && unit < BINARY.length - 1) {
      value /= 1024;
      unit++;
    }
    return `${value}${BINARY[unit]}`;
  }
  return quantity;
}

function injectTemplate(
  document: Document,
  objectPath: Path,
  object: unknown,
  where: string,
  context: InjectionContext,
  report: Report,
): number {
  const { diagnostics, results } = report;
  if (!isRecord(object) || typeof object.kind !== 'string') {
    leftAlone(report, { kind: '', name: '', where }, 'it has no kind');
    return 0;
  }
  const group = apiGroup(object.apiVersion);
  const kind = POD_TEMPLATE_PATHS[object.kind];
  if (!kind || !kind.groups.includes(group)) {
    const meta = isRecord(object.metadata) ? object.metadata : {};
    const name = [meta.namespace, meta.name].filter((part) => typeof part === 'string' && part).join('/');
    leftAlone(
      report,
      { kind: object.kind, name, where },
      kind
        ? `${object.kind} of API group ${JSON.stringify(group)} is not the workload kind (${kind.groups.map((g) => JSON.stringify(g)).join(' or ')})`
        : `${object.kind} has no pod template to inject`,
    );
    return 0;
  }

  const metadata = isRecord(object.metadata) ? (object.metadata as V1ObjectMeta) : {};
  const namespace = metadata.namespace ?? '';
  const name = namespace ? `${namespace}/${metadata.name ?? ''}` : (metadata.name ?? '');
  const description = `${object.kind} ${JSON.stringify(name)} (${where})`;
  const record = (outcome: ObjectResult['outcome'], reason: string) =>
    results.push({ kind: object.kind as string, name, outcome, reason });
  const templatePath = [...objectPath, ...kind.path];
  const template = kind.path.length === 0 ? object : valueAt(object, kind.path);
  if (!isRecord(template)) {
    diagnostics.push({
      severity: 'error',
      object: description,
      message: `has no pod template at ${kind.path.join('.')}; fix: add the pod template (metadata and spec)`,
    });
    record('denied', `no pod template at ${kind.path.join('.')}`);
    return 0;
  }
  const templateMetadata = isRecord(template.metadata) ? (template.metadata as V1ObjectMeta) : undefined;
  const spec = isRecord(template.spec) ? (template.spec as unknown as V1PodSpec) : undefined;
  // The workload's name stands in for the pod's, as Istio's DeploymentMeta does (workload and canonical names).
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...templateMetadata, name: templateMetadata?.name ?? metadata.name, namespace },
    spec: spec as V1PodSpec,
  };

  const decision = decideInjection(pod, namespace, OFFLINE_DECISION, context.values);
  for (const warning of decision.warnings)
    diagnostics.push({ severity: 'warning', object: description, message: warning });
  if (!decision.inject) {
    const reason = `${SKIP_REASONS[decision.reason]}${decision.injector ? ` (${decision.injector})` : ''}`;
    diagnostics.push({ severity: 'skip', object: description, message: `not injected: ${reason}` });
    record('skipped', reason);
    return 0;
  }
  if (!spec || !Array.isArray(spec.containers)) {
    diagnostics.push({
      severity: 'error',
      object: description,
      message: `has no containers at ${[...kind.path, 'spec', 'containers'].join('.')}; fix: add the pod's containers`,
    });
    record('denied', `no containers at ${[...kind.path, 'spec', 'containers'].join('.')}`);
    return 0;
  }

  // A bare Pod's workload is its controller, as the webhook sees it (template-data.ts).
  const workload =
    object.kind === 'Pod'
      ? undefined
      : {
          apiVersion: String(object.apiVersion ?? ''),
          kind: object.kind,
          name: metadata.name ?? '',
          namespace,
        };
  const result = injectPod(pod, namespace, context, workload);
  if (result.outcome === 'denied') {
    const at = [...kind.path, 'metadata', 'annotations'].join('.');
    for (const problem of result.problems) {
      diagnostics.push({
        severity: 'error',
        object: description,
        message: `${describeProblem(problem)} (in ${at})`,
      });
    }
    record('denied', result.message);
    return 0;
  }

  for (const warning of result.warnings)
    diagnostics.push({ severity: 'warning', object: description, message: warning });
  const injectedMetadata: V1ObjectMeta = { ...result.pod.metadata };
  if (templateMetadata?.name === undefined) delete injectedMetadata.name;
  if (templateMetadata?.namespace === undefined) delete injectedMetadata.namespace;
  if (deepEqual(templateMetadata, injectedMetadata) && deepEqual(spec, result.pod.spec)) {
    const reason = 'it is already injected with this configuration; injecting again changes nothing';
    diagnostics.push({ severity: 'skip', object: description, message: `not injected: ${reason}` });
    record('skipped', reason);
    return 0;
  }
  if (object.kind === 'CronJob' && context.values.offlineGoFields) {
    // As istioctl kube-inject writes it: the pod's labels and annotations on the Job template's metadata.
    const jobPath = [...objectPath, 'spec', 'jobTemplate', 'metadata'];
    const jobMetadata = valueAt(object, ['spec', 'jobTemplate', 'metadata']);
    const { labels, annotations } = injectedMetadata;
    const jobBefore = isRecord(jobMetadata) ? jobMetadata : undefined;
    reconcile(document, jobPath, jobBefore, { ...jobBefore, labels, annotations });
  } else {
    reconcile(document, [...templatePath, 'metadata'], templateMetadata, injectedMetadata);
  }
  reconcile(document, [...templatePath, 'spec'], spec, result.pod.spec);
  record('injected', decision.reason);
  return 1;
}

const SKIP_REASONS: Record<SkipReason, string> = {
  'host-network': 'it uses the host network (spec.hostNetwork: true)',
  'ignored-namespace': 'its namespace is never injected',
  'injected-by-another': 'another injector already injected it',
  'explicitly-disabled': `${LABELS.inject} is "false"`,
  'never-inject-selector': 'it matches neverInjectSelector',
  'policy-disabled': 'the injection policy is disabled',
};

/** Changes the document at `path` from `before` to `after`, touching as little of it as it can. */
function reconcile(document: Document, path: Path, before: unknown, after: unknown): void {
  if (deepEqual(before, after)) return;
  const node = document.getIn(path, true);
  if (isRecord(before) && isRecord(after) && isMap(node)) {
    for (const key of Object.keys(before)) if (!(key in after)) document.deleteIn([...path, key]);
    for (const [key, value] of Object.entries(after)) reconcile(document, [...path, key], before[key], value);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after) && isSeq(node) && !node.flow && isPrefix(before, after)) {
    for (const item of after.slice(before.length)) node.add(document.createNode(item));
    return;
  }
  if (after === undefined) document.deleteIn(path);
  else document.setIn(path, document.createNode(after));
}

/**
 * Each document's exact source text: from its start (or the stream's, for the first) to the next one's start, so
 * that the pieces put together give the input back.
 */
function documentSegments(text: string, count: number): string[] | undefined {
  const starts = [...new Parser().parse(text)]
    .filter((token) => token.type === 'document')
    .map((token) => token.offset);
  if (starts.length !== count) return undefined;
  starts[0] = 0;
  return starts.map((start, index) => text.slice(start, starts[index + 1] ?? text.length));
}

/** A re-written document; every one but the first needs its `---`, which the library writes only if it had one. */
function documentText(document: Document, index: number): string {
  if (index === 0) return document.toString({ lineWidth: 0 });
  if (document.directives) document.directives.docStart = true;
  const text = document.toString({ lineWidth: 0 });
  return document.directives ? text : `---\n${text}`;
}

function apiGroup(apiVersion: unknown): string {
  if (typeof apiVersion !== 'string') return '';
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function valueAt(object: unknown, path: Path): unknown {
  return path.reduce<unknown>((value, key) => (isRecord(value) ? value[key as string] : undefined), object);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPrefix(prefix: unknown[], list: unknown[]): boolean {
  return prefix.length <= list.length && prefix.every((item, index) => deepEqual(item, list[index]));
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => deepEqual(item, b[index]));
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = Object.keys(a).filter((key) => a[key] !== undefined);
    const otherKeys = Object.keys(b).filter((key) => b[key] !== undefined);
    return keys.length === otherKeys.length && keys.every((key) => deepEqual(a[key], b[key]));
  }
  return false;
}
