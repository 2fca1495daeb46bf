/**
 * Fuzzing the admission endpoint: generated and mutated AdmissionReviews, pods and annotations (random strings and
 * the known annotation names with random, hostile and valid values). Whatever arrives, the webhook never crashes
 * and never answers 5xx: it answers 400/413/415 with a reason, or an AdmissionReview with the request's uid whose
 * JSONPatch applies cleanly to the pod. In process for volume, over real HTTPS for a sample, and a sample of the
 * patched pods is stored by a real kube-apiserver.
 */
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import jsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { Agent, request } from 'node:https';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../common/constants.js';
import { createMetrics } from '../webhook/metrics.js';
import { buildServer, type InjectorServer } from '../webhook/server.js';
import { shippedConfig } from './fixtures/pods.js';
import { controlPlaneRequirements, startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { missingRequirements } from './harness/requirements.js';
import { startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';

const SEED = 20_260_407;
const KNOWN_ANNOTATIONS = Object.values(ANNOTATIONS);

/** Values that some known annotation accepts, so generated pods also get injected, not only denied. */
const PLAUSIBLE_VALUES = [
  'true',
  'false',
  '',
  '*',
  '0',
  '80',
  '8080,9090',
  ' 80 , 443 ',
  '15020',
  '10.0.0.0/8',
  '10.0.0.0/8,fd00::/8',
  'eth1',
  'net1,net2',
  'REDIRECT',
  'NONE',
  'TPROXY',
  '100m',
  '128Mi',
  '1Gi',
  'info',
  'debug',
  'misc:error',
  'default:info',
  'registry.example.com/proxy:1.2.3',
  'sidecar',
  'holdApplicationUntilProxyStarts: true',
  '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"]}',
];

const HOSTILE_VALUES = [
  '80 -j ACCEPT',
  '80,--to-ports 1',
  '$(id)',
  '`id`',
  ';',
  '{a: b}',
  '"]',
  '\n',
  '\u0000',
];

const annotationKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KNOWN_ANNOTATIONS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);
const annotationValue = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...PLAUSIBLE_VALUES) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_VALUES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
);
/** Random values rarely fit the annotation they land on, so a third of the pods have none (and get injected). */
const annotations = fc.oneof(
  fc.constant({}),
  fc.dictionary(annotationKey, annotationValue, { minKeys: 1, maxKeys: 5 }),
  fc.dictionary(annotationKey, annotationValue, { minKeys: 1, maxKeys: 5 }),
);

const dnsLabel = fc.stringMatching(/^[a-z][a-z0-9-]{0,14}[a-z0-9]$/);
const container = fc.record({
  name: fc.oneof(dnsLabel, fc.constantFrom('istio-proxy', 'istio-init')),
  image: fc.oneof(fc.constant('registry.example.com/app:1'), fc.constant('auto')),
  ports: fc.option(
    fc.array(fc.record({ containerPort: fc.integer({ min: 1, max: 65535 }) }), { maxLength: 3 }),
    {
      nil: undefined,
    },
  ),
});

/** Pods as a user or controller would write them, with arbitrary annotations and labels. */
const pod = fc
  .record({
    name: fc.option(dnsLabel, { nil: undefined }),
    generateName: fc.option(
      dnsLabel.map((name) => `${name}-`),
      { nil: undefined },
    ),
    labels: fc.dictionary(
      fc.oneof(fc.constantFrom('app', 'sidecar.istio.io/inject', 'version'), fc.string({ maxLength: 20 })),
      fc.oneof(fc.constantFrom('true', 'false', 'web'), fc.string({ maxLength: 20 })),
      { maxKeys: 3 },
    ),
    annotations,
    hostNetwork: fc.option(fc.boolean(), { nil: undefined }),
    initContainers: fc.option(fc.array(container, { maxLength: 2 }), { nil: undefined }),
    containers: fc.array(container, { minLength: 1, maxLength: 3 }),
    volumes: fc.option(fc.array(fc.record({ name: dnsLabel, emptyDir: fc.constant({}) }), { maxLength: 2 }), {
      nil: undefined,
    }),
  })
  .map(
    ({
      name,
      generateName,
      labels,
      annotations,
      hostNetwork,
      initContainers,
      containers,
      volumes,
    }): V1Pod => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, generateName, labels, annotations },
      spec: { hostNetwork, initContainers, containers, volumes },
    }),
  )
  .map((value) => JSON.parse(JSON.stringify(value)) as V1Pod);

/** Every path into a JSON value, so a mutation can hit any field, however deep. */
function jsonPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const paths: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((item, i) => paths.push(...jsonPaths(item, [...prefix, i])));
  else if (typeof value === 'object' && value !== null)
    for (const [key, item] of Object.entries(value)) paths.push(...jsonPaths(item, [...prefix, key]));
  return paths;
}

/**
 * `document` with one field replaced or removed. Half the mutations hit a shallow field (the envelope, the pod's
 * metadata and spec and their lists), which the many annotation and container paths would otherwise drown out.
 */
function mutate(document: unknown, { pick, shallow, replacement, remove }: Mutation): unknown {
  const root = structuredClone(document);
  const paths = jsonPaths(root)
    .slice(1)
    .filter((path) => !shallow || path.length <= 4);
  const path = paths[pick % Math.max(paths.length, 1)];
  if (!path) return replacement;
  let parent = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (remove && !Array.isArray(parent)) delete parent[last];
  else parent[last] = replacement;
  return root;
}

interface Mutation {
  pick: number;
  shallow: boolean;
  replacement: unknown;
  remove: boolean;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  pick: fc.nat(),
  shallow: fc.boolean(),
  replacement: fc.jsonValue({ maxDepth: 2 }),
  remove: fc.boolean(),
});

const envelope = fc.record({
  apiVersion: fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1'),
  uid: fc.uuid(),
  operation: fc.oneof(
    { weight: 6, arbitrary: fc.constant('CREATE') },
    { weight: 1, arbitrary: fc.constantFrom('UPDATE', 'DELETE', 'CONNECT') },
  ),
  namespace: fc.oneof(dnsLabel, fc.constantFrom('kube-system', 'default')),
  subResource: fc.oneof(
    { weight: 7, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom('ephemeralcontainers', 'status') },
  ),
});

interface Envelope {
  apiVersion: string;
  uid: string;
  operation: string;
  namespace: string;
  subResource: string | undefined;
}

function reviewOf(fields: Envelope, object: unknown) {
  return {
    apiVersion: fields.apiVersion,
    kind: 'AdmissionReview',
    request: {
      uid: fields.uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      ...(fields.subResource ? { subResource: fields.subResource } : {}),
      namespace: fields.namespace,
      operation: fields.operation,
      object,
    },
  };
}

interface Delivery {
  body: string;
  contentType: string;
  /** The pod the review carried, when the body is a review; the patch must apply to it. */
  pod?: unknown;
  uid?: unknown;
}

/** Whole reviews: well-formed, mutated anywhere (the pod included), or not reviews at all. */
const delivery: fc.Arbitrary<Delivery> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(envelope, pod).map(([fields, p]) => review(reviewOf(fields, p))) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(envelope, pod, fc.array(mutation, { minLength: 1, maxLength: 3 }))
      .map(([fields, p, mutations]) =>
        review(mutations.reduce<unknown>((document, m) => mutate(document, m), reviewOf(fields, p))),
      ),
  },
  {
    weight: 1,
    arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => ({
      body: JSON.stringify(value) ?? 'null',
      contentType: 'application/json',
    })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.constantFrom('application/json', 'text/plain', 'application/yaml', ''),
      )
      .map(([body, contentType]) => ({ body, contentType })),
  },
);

function review(value: unknown): Delivery {
  const request = (value as { request?: { object?: unknown; uid?: unknown } } | null)?.request;
  return {
    body: JSON.stringify(value),
    contentType: 'application/json',
    pod: request?.object,
    uid: request?.uid,
  };
}

interface Answer {
  status: number;
  body: string;
}

/**
 * What every answer must be. Returns the patched pod when the webhook patched, so callers can keep a sample.
 */
function checkAnswer(sent: Delivery, answer: Answer): V1Pod | undefined {
  expect([200, 400, 413, 415], `status for ${sent.body.slice(0, 300)}`).toContain(answer.status);
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  if (answer.status !== 200) {
    expect(typeof body.message === 'string' && body.message.length > 0, answer.body).toBe(true);
    return undefined;
  }
  const response = body.response as { uid: unknown; allowed: unknown; patch?: string; patchType?: string };
  expect(body.kind).toBe('AdmissionReview');
  expect(response.uid).toBe(sent.uid);
  expect(typeof response.allowed).toBe('boolean');
  if (response.patch === undefined) {
    expect(response.patchType).toBeUndefined();
    return undefined;
  }
  expect(response.allowed).toBe(true);
  expect(response.patchType).toBe('JSONPatch');
  const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString()) as Operation[];
  expect(jsonPatch.validate(patch, structuredClone(sent.pod))).toBeUndefined();
  return jsonPatch.applyPatch(structuredClone(sent.pod), patch, true, false).newDocument as V1Pod;
}

/** Wrapped: a Fastify instance is thenable, and an async function would resolve it. */
async function inProcessServer(): Promise<{ app: InjectorServer }> {
  const config = await shippedConfig();
  const app = buildServer({
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
    state: { config: () => config, notReadyReason: () => undefined, nativeSidecars: () => false },
  });
  return { app };
}

describe('fuzzing POST /inject in process', () => {
  let app: InjectorServer;
  beforeAll(async () => {
    ({ app } = await inProcessServer());
    await app.ready();
  });
  afterAll(() => app.close());

  it('answers every generated or mutated request with 400/413/415 and a reason, or a patch that applies', async () => {
    const outcomes = { rejected: 0, answered: 0, patched: 0 };
    await fc.assert(
      fc.asyncProperty(delivery, async (sent) => {
        const response = await app.inject({
          method: 'POST',
          url: '/inject',
          headers: sent.contentType ? { 'content-type': sent.contentType } : {},
          payload: sent.body,
        });
        const patched = checkAnswer(sent, { status: response.statusCode, body: response.body });
        if (response.statusCode !== 200) outcomes.rejected++;
        else if (patched) outcomes.patched++;
        else outcomes.answered++;
      }),
      { seed: SEED, numRuns: 3000 },
    );
    console.info(`fuzz outcomes: ${JSON.stringify(outcomes)}`);
    // The generators reach every kind of answer; otherwise the property would prove little.
    expect(outcomes.rejected).toBeGreaterThan(100);
    expect(outcomes.answered).toBeGreaterThan(100);
    expect(outcomes.patched).toBeGreaterThan(100);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

function post(webhook: WebhookProcess, agent: Agent, sent: Delivery): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${webhook.url}/inject`,
      {
        method: 'POST',
        ca: webhook.ca.cert,
        agent,
        headers: sent.contentType ? { 'content-type': sent.contentType } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('error', reject);
    req.end(sent.body);
  });
}

describe('fuzzing the webhook process over HTTPS', () => {
  let webhook: WebhookProcess;
  beforeAll(async () => {
    webhook = await startWebhookProcess();
  });
  afterAll(() => webhook?.stop());

  it('answers a sample of the same inputs the same way, and keeps running', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    await fc.assert(
      fc.asyncProperty(delivery, async (sent) => {
        checkAnswer(sent, await post(webhook, agent, sent));
      }),
      { seed: SEED + 1, numRuns: 300 },
    );
    agent.destroy();
    expect((await webhook.settledLogs()).filter((line) => /"level":"(error|fatal)"/.test(line))).toEqual([]);
    expect((await post(webhook, new Agent(), { body: '{}', contentType: 'application/json' })).status).toBe(
      400,
    );
  });
});

const missing = missingRequirements(controlPlaneRequirements(), 'fuzzed patches against kube-apiserver');

describe.skipIf(missing.length > 0)('patched pods from the fuzzer on a real kube-apiserver', () => {
  let controlPlane: ControlPlane;
  let app: InjectorServer;
  beforeAll(async () => {
    ({ app } = await inProcessServer());
    controlPlane = await startControlPlane();
  });
  afterAll(async () => {
    await app?.close();
    await controlPlane?.stop();
  });

  it('stores 20 patched pods unchanged in a namespace with no webhook', async () => {
    const core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'fuzzed' } } });
    // Pods the apiserver itself would accept: valid names, labels and annotation keys, unique containers.
    const storablePod = fc
      .tuple(
        dnsLabel,
        fc.dictionary(fc.constantFrom(...KNOWN_ANNOTATIONS), fc.constantFrom(...PLAUSIBLE_VALUES), {
          maxKeys: 6,
        }),
        fc.uniqueArray(dnsLabel, { minLength: 1, maxLength: 3 }),
      )
      .map(([name, annotations, names]) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, annotations },
        spec: { containers: names.map((n) => ({ name: n, image: 'registry.example.com/app:1' })) },
      }));
    const candidates = fc.sample(fc.tuple(storablePod, fc.uuid()), { seed: SEED + 2, numRuns: 400 });
    const patched: V1Pod[] = [];
    for (const [candidate, uid] of candidates) {
      if (patched.length === 20) break;
      const sent = review(
        reviewOf(
          {
            apiVersion: 'admission.k8s.io/v1',
            uid,
            operation: 'CREATE',
            namespace: 'fuzzed',
            subResource: undefined,
          },
          candidate,
        ),
      );
      const response = await app.inject({
        method: 'POST',
        url: '/inject',
        headers: { 'content-type': 'application/json' },
        payload: sent.body,
      });
      const pod = checkAnswer(sent, { status: response.statusCode, body: response.body });
      if (pod && !patched.some((p) => p.metadata?.name === pod.metadata?.name)) patched.push(pod);
    }
    expect(patched).toHaveLength(20);
    for (const body of patched) {
      const stored = await core.createNamespacedPod({ namespace: 'fuzzed', body });
      expect(stored.spec?.containers.map((c) => c.name)).toEqual(body.spec?.containers.map((c) => c.name));
      expect(stored.spec?.initContainers?.map((c) => c.name)).toEqual(
        body.spec?.initContainers?.map((c) => c.name),
      );
    }
  });
});
