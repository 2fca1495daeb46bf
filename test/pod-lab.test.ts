/**
 * The pod lab: pods exactly as a real kube-apiserver stored them after the webhook injected them, each run as a
 * network namespace with processes: `mesh-iptables` with the stored istio-init container's args, HAProxy for
 * istio-proxy (the same sidecar contract: the container's user, 15001 outbound, 15006 inbound, source 127.0.0.6)
 * and a small HTTP app. Each proxy a request passes adds a header, so the app reports the proxies in order.
 */
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANNOTATIONS,
  CONTAINER_NAMES,
  INBOUND_PASSTHROUGH_SOURCE_IPV4,
  LABELS,
  PORTS,
  PROXY_UID,
} from '../common/constants.js';
import { controlPlaneRequirements, startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { missingRequirements } from './harness/requirements.js';
import { startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';
import { localWebhookConfiguration, toYamlDocument } from './harness/webhook-configuration.js';
import type { Lab, Pod } from './lab/index.js';
import { createLab, httpGet, injectedInitContainer, labRequirements, runStoredPod } from './lab/index.js';

const missing = missingRequirements(
  { ...controlPlaneRequirements(), ...labRequirements() },
  'pod lab (kube-apiserver and network namespaces)',
);

const MESH_NAMESPACE = 'mesh';
const PLAIN_NAMESPACE = 'plain';
/** Every app serves both ports; the annotated pod excludes the second from capture. */
const APP_PORT = 8080;
const EXCLUDED_PORT = 8081;

/** An app pod as a user writes it. */
function appPod(name: string, annotations: Record<string, string> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name }, annotations },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'registry.example.com/app:1',
          ports: [{ containerPort: APP_PORT }, { containerPort: EXCLUDED_PORT }],
        },
      ],
    },
  };
}

describe.skipIf(missing.length > 0)('injected pods run in network namespaces', () => {
  let controlPlane: ControlPlane;
  let webhook: WebhookProcess;
  let core: CoreV1Api;
  let lab: Lab;
  const stored: Record<string, V1Pod> = {};
  /** Lab pods by stored pod name. */
  const pods: Record<string, Pod> = {};

  beforeAll(async () => {
    controlPlane = await startControlPlane();
    webhook = await startWebhookProcess({ kubeconfigPath: controlPlane.kubeconfigPath });
    core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
    const configuration = localWebhookConfiguration({ url: webhook.url, caPem: webhook.ca.cert });
    const applied = await controlPlane.kubectl(['apply', '-f', '-'], {
      input: toYamlDocument(configuration),
    });
    if (applied.exitCode !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
    await core.createNamespace({
      body: { metadata: { name: MESH_NAMESPACE, labels: { [LABELS.injection]: 'enabled' } } },
    });
    await core.createNamespace({ body: { metadata: { name: PLAIN_NAMESPACE } } });
    await untilWebhookActive();

    const excluded = String(EXCLUDED_PORT);
    stored.a = await create(MESH_NAMESPACE, appPod('a'));
    stored.b = await create(MESH_NAMESPACE, appPod('b'));
    stored.annotated = await create(
      MESH_NAMESPACE,
      appPod('annotated', {
        [ANNOTATIONS.excludeInboundPorts]: excluded,
        [ANNOTATIONS.excludeOutboundPorts]: excluded,
      }),
    );
    stored.outside = await create(PLAIN_NAMESPACE, appPod('outside'));

    lab = await createLab();
    for (const [name, pod] of Object.entries(stored)) pods[name] = await runStoredPod(lab, pod);
  });

  afterAll(async () => {
    lab?.destroy();
    await webhook?.stop();
    await controlPlane?.stop();
  });

  async function create(namespace: string, body: V1Pod): Promise<V1Pod> {
    await core.createNamespacedPod({ namespace, body });
    return core.readNamespacedPod({ namespace, name: body.metadata?.name ?? '' });
  }

  /** The apiserver learns of a new webhook configuration asynchronously; wait until a pod is injected. */
  async function untilWebhookActive(): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const probe = await create(MESH_NAMESPACE, appPod(`probe-${attempt}`));
      await core.deleteNamespacedPod({
        namespace: MESH_NAMESPACE,
        name: probe.metadata?.name ?? '',
        gracePeriodSeconds: 0,
      });
      if (injectedInitContainer(probe)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the webhook configuration never took effect');
  }

  function labPod(name: string): Pod {
    const pod = pods[name];
    if (!pod) throw new Error(`no lab pod for the stored pod ${name}`);
    return pod;
  }

  /** Sends GET from one pod's app to another pod's IPv4 address and returns the proxies it passed. */
  async function proxiesOnTheWay(from: string, to: string, port: number): Promise<string[]> {
    const server = labPod(to);
    const view = await httpGet(labPod(from), server.ipv4, port);
    expect(view.app).toBe(server.name);
    expect(view.local).toEqual({ address: server.ipv4, port });
    return view.proxies;
  }

  const proxy = (pod: string, direction: 'outbound' | 'inbound') => `${labPod(pod).name} ${direction}`;

  it("stores the injected pods with an init container running mesh-iptables with the annotations' args", () => {
    for (const name of ['a', 'b', 'annotated']) {
      const init = injectedInitContainer(stored[name] ?? {});
      expect(init?.command).toEqual(['mesh-iptables']);
      expect(init?.args).toEqual(
        expect.arrayContaining([
          ...['-p', String(PORTS.outboundCapture), '-z', String(PORTS.inboundCapture)],
          ...['-u', String(PROXY_UID)],
        ]),
      );
    }
    const annotatedArgs = injectedInitContainer(stored.annotated ?? {})?.args ?? [];
    expect(annotatedArgs).toContain(
      [PORTS.proxyStats, PORTS.readiness, EXCLUDED_PORT, PORTS.status].join(','),
    );
    expect(annotatedArgs).toEqual(expect.arrayContaining(['-o', String(EXCLUDED_PORT)]));
  });

  it('two injected pods reach each other through both proxies', async () => {
    expect(await proxiesOnTheWay('a', 'b', APP_PORT)).toEqual([
      proxy('a', 'outbound'),
      proxy('b', 'inbound'),
    ]);
    expect(await proxiesOnTheWay('b', 'a', APP_PORT)).toEqual([
      proxy('b', 'outbound'),
      proxy('a', 'inbound'),
    ]);
  });

  it('the inbound proxy reaches the app from the passthrough source', async () => {
    const view = await httpGet(labPod('a'), labPod('b').ipv4, APP_PORT);
    expect(view.peer.address).toBe(INBOUND_PASSTHROUGH_SOURCE_IPV4);
  });

  it('an excluded inbound port of an annotated pod bypasses its proxy', async () => {
    expect(await proxiesOnTheWay('b', 'annotated', EXCLUDED_PORT)).toEqual([proxy('b', 'outbound')]);
    expect(await proxiesOnTheWay('b', 'annotated', APP_PORT)).toEqual([
      proxy('b', 'outbound'),
      proxy('annotated', 'inbound'),
    ]);
  });

  it('an excluded outbound port of an annotated pod bypasses its proxy', async () => {
    expect(await proxiesOnTheWay('annotated', 'b', EXCLUDED_PORT)).toEqual([proxy('b', 'inbound')]);
    expect(await proxiesOnTheWay('annotated', 'b', APP_PORT)).toEqual([
      proxy('annotated', 'outbound'),
      proxy('b', 'inbound'),
    ]);
  });

  it('a pod in an unlabelled namespace is stored without a sidecar and is not captured', async () => {
    expect(stored.outside?.spec?.initContainers ?? []).toEqual([]);
    expect(stored.outside?.spec?.containers.map((container) => container.name)).not.toContain(
      CONTAINER_NAMES.proxy,
    );
    expect(await proxiesOnTheWay('outside', 'a', APP_PORT)).toEqual([proxy('a', 'inbound')]);
    expect(await proxiesOnTheWay('a', 'outside', APP_PORT)).toEqual([proxy('a', 'outbound')]);
  });
});
