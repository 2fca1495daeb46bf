/**
 * `mesh-injector check`, decided: a snapshot of what the cluster holds in, the checks' results out, in the manner
 * of `linkerd check`. Pure (the clock is in the snapshot); cli/check.ts gathers the snapshot and prints the report.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { ANNOTATIONS, CONTAINER_NAMES, IGNORED_NAMESPACES, LABELS } from '../common/constants.js';
import { certificateInfo, verifyIssuedBy } from '../common/pki.js';
import { decideInjection, type DecisionConfig } from '../webhook/decision.js';
import { parseStatus } from '../webhook/status.js';

/** A serving certificate must outlive this many days; the webhook renews its own long before. */
export const MIN_CERTIFICATE_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface CheckNames {
  namespace: string;
  service: string;
  webhookConfiguration: string;
  secret: string;
}

export interface WebhookClient {
  name: string;
  url?: string;
  service?: { namespace: string; name: string };
  /** As stored: base64 of PEM. */
  caBundle?: string;
}

/** The certificate the webhook serves, as fetched for one clientConfig target. */
export interface ServingCertificate {
  /** Where it came from, e.g. `https://127.0.0.1:9443/inject (TLS handshake)` or `Secret mesh-injector/mesh-injector-tls`. */
  source: string;
  /** The name the apiserver checks the certificate against: the url's host or the Service's DNS name. */
  host: string;
  webhooks: string[];
  pem?: string;
  error?: string;
}

export interface ClusterSnapshot {
  now: Date;
  names: CheckNames;
  /** The apiserver's version; undefined when it was not asked. */
  serverVersion?: { major: string; minor: string; gitVersion?: string };
  /** Set when the apiserver could not be asked at all; nothing else is then known. */
  apiError?: string;
  /** undefined: the MutatingWebhookConfiguration does not exist. */
  webhookConfiguration?: { webhooks: WebhookClient[] };
  servingCertificates: ServingCertificate[];
  /** undefined when no webhook calls a Service (url clientConfigs). */
  service?: { exists: boolean; readyEndpoints: number; notReadyEndpoints: number };
  namespaces: { name: string; labels: Record<string, string> }[];
  /** Pods of the namespaces selected for injection. */
  pods: V1Pod[];
  replicaSets: { namespace: string; name: string; ownerReferences?: V1OwnerReference[] }[];
  /** What the webhook injects now, to compare the pods with. */
  injector: { revision: string; templateVersion: string; decision: DecisionConfig; source: string };
}

export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  id: string;
  description: string;
  status: CheckStatus;
  /** What was found: the failure, or the details of a success. */
  details: string[];
  /** What to do about a failure or warning. */
  hint?: string;
}

export type RestartReason = 'no-sidecar' | 'older-template' | 'other-revision';

export interface PodNeedingRestart {
  namespace: string;
  pod: string;
  reason: RestartReason;
  detail: string;
  /** The workload to restart: the Deployment of a ReplicaSet's pod, else the pod's controller. */
  owner?: { kind: string; name: string };
}

export interface CheckReport {
  ok: boolean;
  checks: CheckResult[];
  injectionNamespaces: { name: string; selectedBy: string }[];
  podsNeedingRestart: PodNeedingRestart[];
}

export function evaluateChecks(snapshot: ClusterSnapshot): CheckReport {
  const checks: CheckResult[] = [];
  const { names } = snapshot;
  const add = (check: CheckResult) => checks.push(check);
  const skipRest = (reason: string, ...ids: [string, string][]) =>
    ids.forEach(([id, description]) => add({ id, description, status: 'skip', details: [reason] }));

  const injectionNamespaces = selectedNamespaces(snapshot);
  const podsNeedingRestart = snapshot.apiError ? [] : podsToRestart(snapshot, injectionNamespaces);

  if (snapshot.apiError) {
    add({
      id: 'kubernetes-api',
      description: 'the Kubernetes API answers',
      status: 'fail',
      details: [snapshot.apiError],
      hint: 'check the kubeconfig (--kubeconfig or KUBECONFIG) and that the apiserver is reachable: kubectl version',
    });
    skipRest('the Kubernetes API did not answer', KUBERNETES_VERSION_CHECK, ...ALL_CHECKS);
    return report(checks, [], []);
  }
  add(kubernetesVersionCheck(snapshot.serverVersion));

  const configuration = snapshot.webhookConfiguration;
  const webhooks = configuration?.webhooks ?? [];
  add({
    id: 'webhook-configuration',
    description: `the MutatingWebhookConfiguration ${names.webhookConfiguration} exists`,
    status: configuration && webhooks.length > 0 ? 'ok' : 'fail',
    details: !configuration
      ? ['it does not exist']
      : webhooks.length === 0
        ? ['it has no webhooks']
        : [`${webhooks.length} webhooks`],
    hint: `install it: kubectl apply -k manifests/ (or pass --webhook-configuration NAME if it has another name)`,
  });
  if (!configuration || webhooks.length === 0) {
    skipRest(
      `the MutatingWebhookConfiguration ${names.webhookConfiguration} is missing`,
      ...ALL_CHECKS.slice(1, 5),
    );
  } else {
    checkCertificates(snapshot, webhooks, add);
    add(serviceCheck(snapshot, webhooks));
  }

  add({
    id: 'injection-namespaces',
    description: 'namespaces are labelled for injection',
    status: injectionNamespaces.length > 0 ? 'ok' : 'warn',
    details:
      injectionNamespaces.length > 0
        ? injectionNamespaces.map((ns) => `${ns.name} (${ns.selectedBy})`)
        : ['no namespace is labelled istio-injection=enabled or istio.io/rev=' + snapshot.injector.revision],
    hint: 'label a namespace to inject its new pods: kubectl label namespace NAME istio-injection=enabled',
  });
  add(restartCheck(snapshot, podsNeedingRestart));
  return report(checks, injectionNamespaces, podsNeedingRestart);
}

/** The Kubernetes versions mesh-injector supports: manifests/ needs 1.21 (kubernetes.io/metadata.name). */
export const SUPPORTED_KUBERNETES = { major: 1, minor: 21 } as const;
const KUBERNETES_VERSION_CHECK: [string, string] = [
  'kubernetes-version',
  `the Kubernetes version is supported (${SUPPORTED_KUBERNETES.major}.${SUPPORTED_KUBERNETES.minor} or newer)`,
];

export function kubernetesVersionCheck(version: ClusterSnapshot['serverVersion']): CheckResult {
  const [id, description] = KUBERNETES_VERSION_CHECK;
  if (!version)
    return { id, description, status: 'skip', details: ['the apiserver did not say its version'] };
  const major = Number.parseInt(version.major, 10);
  // Managed clusters report minors such as "27+".
  const minor = Number.parseInt(version.minor, 10);
  const supported =
    major > SUPPORTED_KUBERNETES.major ||
    (major === SUPPORTED_KUBERNETES.major && minor >= SUPPORTED_KUBERNETES.minor);
  return {
    id,
    description,
    status: supported ? 'ok' : 'warn',
    details: [`the apiserver is ${version.gitVersion ?? `${version.major}.${version.minor}`}`],
    hint:
      'before 1.21 namespaces do not carry the kubernetes.io/metadata.name label, which the webhook configuration ' +
      'uses to never select kube-system or its own namespace: label those two namespaces with it ' +
      '(kubectl label namespace kube-system kubernetes.io/metadata.name=kube-system), or upgrade the cluster',
  };
}

const ALL_CHECKS: [string, string][] = [
  ['webhook-configuration', 'the MutatingWebhookConfiguration exists'],
  ['ca-bundle', 'every webhook has a caBundle'],
  ['serving-certificate', "the caBundle verifies the webhook's serving certificate"],
  ['certificate-expiry', `the serving certificate is valid for more than ${MIN_CERTIFICATE_DAYS} days`],
  ['service-endpoints', 'the webhook Service has ready endpoints'],
  ['injection-namespaces', 'namespaces are labelled for injection'],
  ['pods-need-restart', 'pods in injection namespaces run the current sidecar'],
];

function report(
  checks: CheckResult[],
  injectionNamespaces: CheckReport['injectionNamespaces'],
  podsNeedingRestart: PodNeedingRestart[],
): CheckReport {
  return {
    ok: checks.every((check) => check.status !== 'fail'),
    checks,
    injectionNamespaces,
    podsNeedingRestart,
  };
}

function checkCertificates(
  snapshot: ClusterSnapshot,
  webhooks: WebhookClient[],
  add: (check: CheckResult) => void,
): void {
  const { names } = snapshot;
  const withoutBundle = webhooks.filter((webhook) => !webhook.caBundle);
  add({
    id: 'ca-bundle',
    description: 'every webhook has a caBundle',
    status: withoutBundle.length === 0 ? 'ok' : 'fail',
    details:
      withoutBundle.length === 0
        ? [`${webhooks.length} of ${webhooks.length} webhooks have one`]
        : withoutBundle.map((webhook) => `webhook ${webhook.name} has no clientConfig.caBundle`),
    hint:
      `the webhook fills in the caBundle of ${names.webhookConfiguration} when it starts with ` +
      "--manage-certificates (cert-manager's CA injector does with the cert-manager overlay): check that it runs, " +
      `and its logs: kubectl -n ${names.namespace} logs deploy/${names.service}`,
  });

  const problems: string[] = [];
  const verified: string[] = [];
  const certificates: { source: string; info: ReturnType<typeof certificateInfo> }[] = [];
  for (const serving of snapshot.servingCertificates) {
    if (serving.pem === undefined) {
      problems.push(
        `could not read the serving certificate from ${serving.source}: ${serving.error ?? 'no certificate'}`,
      );
      continue;
    }
    let info: ReturnType<typeof certificateInfo>;
    try {
      info = certificateInfo(serving.pem);
    } catch (error) {
      problems.push(
        `the serving certificate from ${serving.source} does not parse: ${(error as Error).message}`,
      );
      continue;
    }
    certificates.push({ source: serving.source, info });
    const nameProblem = hostProblem(serving.pem, serving.host);
    if (nameProblem) problems.push(`the serving certificate from ${serving.source} ${nameProblem}`);
    for (const name of serving.webhooks) {
      const webhook = webhooks.find((candidate) => candidate.name === name);
      if (!webhook?.caBundle) continue;
      const authorities = splitPem(Buffer.from(webhook.caBundle, 'base64').toString());
      if (authorities.length === 0) {
        problems.push(`webhook ${name}: the caBundle holds no PEM certificate`);
      } else if (!authorities.some((ca) => issuedBy(serving.pem as string, ca))) {
        problems.push(
          `webhook ${name}: no CA in its caBundle (${authorities.length} certificates) issued the serving ` +
            `certificate from ${serving.source} (issuer ${info.issuer})`,
        );
      } else {
        verified.push(`webhook ${name}: verified (${serving.source}, issuer ${info.issuer})`);
      }
    }
  }
  add({
    id: 'serving-certificate',
    description: "the caBundle verifies the webhook's serving certificate",
    status: problems.length > 0 ? 'fail' : verified.length > 0 ? 'ok' : 'skip',
    details:
      problems.length > 0
        ? problems
        : verified.length > 0
          ? verified
          : ['no webhook has a caBundle to verify with'],
    hint:
      'the apiserver rejects a certificate its caBundle does not verify, and pods in selected namespaces then fail to ' +
      `be created. With self-managed certificates, restart the webhook so it re-publishes its CA: kubectl -n ${names.namespace} ` +
      `rollout restart deploy/${names.service}; with cert-manager, check the Certificate and the cainjector`,
  });

  const expiring = certificates.filter(
    ({ info }) => info.notAfter.getTime() - snapshot.now.getTime() <= MIN_CERTIFICATE_DAYS * DAY_MS,
  );
  const notYetValid = certificates.filter(({ info }) => info.notBefore > snapshot.now);
  // A webhook reached by url is not the installed Deployment (npm start's local webhook, or one run elsewhere):
  // its certificate is whoever serves it's to renew, and a short-lived one there is a choice, not a fault.
  const byUrl = webhooks.every((webhook) => webhook.url !== undefined);
  const expiryProblem = expiring.length + notYetValid.length > 0;
  add({
    id: 'certificate-expiry',
    description: `the serving certificate is valid for more than ${MIN_CERTIFICATE_DAYS} days`,
    status:
      certificates.length === 0
        ? 'skip'
        : expiryProblem
          ? byUrl && notYetValid.length === 0 && expiring.every(({ info }) => info.notAfter > snapshot.now)
            ? 'warn'
            : 'fail'
          : 'ok',
    details:
      certificates.length === 0
        ? ['no serving certificate could be read']
        : [
            ...expiring.map(
              ({ source, info }) =>
                `the serving certificate from ${source} ${expiry(info.notAfter, snapshot.now)}`,
            ),
            ...notYetValid.map(
              ({ source, info }) =>
                `the serving certificate from ${source} is not valid before ${info.notBefore.toISOString()}`,
            ),
            ...(expiring.length + notYetValid.length === 0
              ? certificates.map(({ source, info }) => `${source}: ${expiry(info.notAfter, snapshot.now)}`)
              : []),
          ],
    hint: byUrl
      ? 'the webhook is reached by url, so it is not the installed Deployment: renew the certificate where that ' +
        'webhook is served (npm start issues a fresh one each time it starts), then update the caBundle'
      : 'the webhook renews its self-managed certificate when a third of its lifetime is left; if it has not, look for ' +
        `"certificate reconcile failed" in its logs (kubectl -n ${names.namespace} logs deploy/${names.service}), or ` +
        'renew it with cert-manager (cmctl renew) when cert-manager issues it',
  });
}

function serviceCheck(snapshot: ClusterSnapshot, webhooks: WebhookClient[]): CheckResult {
  const { names } = snapshot;
  const description = `the Service ${names.namespace}/${names.service} has ready endpoints`;
  const id = 'service-endpoints';
  if (!webhooks.some((webhook) => webhook.service) || snapshot.service === undefined) {
    return { id, description, status: 'skip', details: ['n/a: webhook configured by url'] };
  }
  const { exists, readyEndpoints, notReadyEndpoints } = snapshot.service;
  const hint =
    `the apiserver calls the webhook through this Service: kubectl -n ${names.namespace} get deploy,pods,endpoints ` +
    `${names.service}; a pod that is not ready fails /readyz (its logs say why)`;
  if (!exists) return { id, description, status: 'fail', details: ['the Service does not exist'], hint };
  return {
    id,
    description,
    status: readyEndpoints > 0 ? 'ok' : 'fail',
    details: [`${readyEndpoints} ready, ${notReadyEndpoints} not ready`],
    hint,
  };
}

/** The namespaces the webhook configuration selects by label, as manifests/mutating-webhook.yaml does. */
export function selectedNamespaces(snapshot: ClusterSnapshot): CheckReport['injectionNamespaces'] {
  const revision = snapshot.injector.revision;
  const selected: CheckReport['injectionNamespaces'] = [];
  for (const { name, labels } of snapshot.namespaces) {
    if (name === snapshot.names.namespace || IGNORED_NAMESPACES.includes(name)) continue;
    if (labels[LABELS.injection] === 'enabled')
      selected.push({ name, selectedBy: `${LABELS.injection}=enabled` });
    else if (labels[LABELS.injection] === undefined && labels[LABELS.revision] === revision) {
      selected.push({ name, selectedBy: `${LABELS.revision}=${revision}` });
    }
  }
  return selected;
}

function podsToRestart(
  snapshot: ClusterSnapshot,
  namespaces: CheckReport['injectionNamespaces'],
): PodNeedingRestart[] {
  const selected = new Set(namespaces.map((ns) => ns.name));
  const { injector } = snapshot;
  const found: PodNeedingRestart[] = [];
  for (const pod of snapshot.pods) {
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    if (!selected.has(namespace) || pod.metadata?.deletionTimestamp) continue;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
    if (!decideInjection(pod, namespace, injector.decision).inject) continue;
    const restart = (reason: RestartReason, detail: string) =>
      found.push({ namespace, pod: name, reason, detail, ...ownerOf(pod, snapshot) });

    const status = parseStatus(pod.metadata?.annotations?.[ANNOTATIONS.status]);
    const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map(
      (c) => c.name,
    );
    if (!status || !containers.includes(CONTAINER_NAMES.proxy)) {
      restart(
        'no-sidecar',
        'runs without a sidecar: it was created before injection was enabled, or while the webhook was not called',
      );
    } else if (status.revision !== injector.revision) {
      restart(
        'other-revision',
        `was injected by revision ${JSON.stringify(status.revision)}, the namespace selects ${JSON.stringify(injector.revision)}`,
      );
    } else if (status.version !== undefined && status.version !== injector.templateVersion) {
      restart(
        'older-template',
        `runs a sidecar from template version ${status.version}; the current one is ${injector.templateVersion}`,
      );
    }
  }
  return found;
}

function ownerOf(pod: V1Pod, snapshot: ClusterSnapshot): { owner?: PodNeedingRestart['owner'] } {
  const controller = pod.metadata?.ownerReferences?.find((owner) => owner.controller);
  if (!controller) return {};
  if (controller.kind === 'ReplicaSet') {
    const replicaSet = snapshot.replicaSets.find(
      (rs) => rs.namespace === pod.metadata?.namespace && rs.name === controller.name,
    );
    const deployment = replicaSet?.ownerReferences?.find(
      (owner) => owner.controller && owner.kind === 'Deployment',
    );
    if (deployment) return { owner: { kind: 'Deployment', name: deployment.name } };
  }
  return { owner: { kind: controller.kind, name: controller.name } };
}

function restartCheck(snapshot: ClusterSnapshot, pods: PodNeedingRestart[]): CheckResult {
  const restartable = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);
  const commands = new Set(
    pods.map(({ namespace, pod, owner }) =>
      owner && restartable.has(owner.kind)
        ? `kubectl -n ${namespace} rollout restart ${owner.kind.toLowerCase()}/${owner.name}`
        : `kubectl -n ${namespace} delete pod ${pod} (and create it again${owner ? `; its ${owner.kind} ${owner.name} may do that` : ''})`,
    ),
  );
  return {
    id: 'pods-need-restart',
    description: 'pods in injection namespaces run the current sidecar',
    status: pods.some((pod) => pod.reason === 'no-sidecar') ? 'fail' : pods.length > 0 ? 'warn' : 'ok',
    details:
      pods.length === 0
        ? [`compared with the configuration from ${snapshot.injector.source}`]
        : pods.map(
            ({ namespace, pod, owner, detail }) =>
              `pod ${namespace}/${pod}${owner ? ` (${owner.kind} ${owner.name})` : ''} ${detail}`,
          ),
    ...(pods.length > 0
      ? { hint: `restart them to inject the current sidecar: ${[...commands].join('; ')}` }
      : {}),
  };
}

function hostProblem(pem: string, host: string): string | undefined {
  const certificate = new X509Certificate(pem);
  const matched = isIP(host) ? certificate.checkIP(host) : certificate.checkHost(host);
  return matched ? undefined : `is not valid for ${host}, the name the apiserver connects to`;
}

function issuedBy(certPem: string, caPem: string): boolean {
  try {
    return verifyIssuedBy(certPem, caPem);
  } catch {
    return false;
  }
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
}

function expiry(notAfter: Date, now: Date): string {
  const left = notAfter.getTime() - now.getTime();
  const days = Math.floor(left / DAY_MS);
  const hours = Math.floor(left / (60 * 60 * 1000));
  const within = days >= 1 ? `${days} days` : hours >= 1 ? `${hours} hours` : 'less than an hour';
  return notAfter <= now
    ? `expired at ${notAfter.toISOString()}`
    : `expires at ${notAfter.toISOString()} (in ${within})`;
}
