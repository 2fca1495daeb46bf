/**
 * mesh-injector installed as a user installs it (`kubectl apply -k`): two replicas from the built image, Running
 * and Ready; they manage their own certificate and the caBundle; the apiserver calls them through the Service.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deleteNamespace, getJson, must, target } from './target.js';
import { type Pod, clientPod, podsWithLabel } from './workloads.js';

const NAMESPACE = 'mesh-injector';

interface WebhookConfiguration {
  webhooks: {
    name: string;
    clientConfig: { caBundle?: string; url?: string; service?: { name: string; namespace: string } };
  }[];
}

describe.skipIf(target.skip !== undefined)('mesh-injector installed with kubectl apply -k', () => {
  let labelled: string;
  beforeAll(async () => {
    labelled = await createNamespace('e2e-install', { 'istio-injection': 'enabled' });
  });
  afterAll(async () => {
    await deleteNamespace(labelled);
  });

  it('runs two webhook replicas, Running and Ready', async () => {
    const pods = (await podsWithLabel(NAMESPACE, 'app.kubernetes.io/name=mesh-injector')).filter(
      (pod: Pod & { metadata: { deletionTimestamp?: string } }) =>
        pod.metadata.deletionTimestamp === undefined,
    );
    expect(pods).toHaveLength(2);
    for (const pod of pods) {
      expect(
        pod.status.containerStatuses?.map((status) => [status.name, status.ready, !!status.state.running]),
      ).toEqual([['webhook', true, true]]);
    }
  });

  it('holds the CA of the Secret the replicas manage in the caBundle of every webhook', async () => {
    const secret = await getJson<{ data: Record<string, string> }>([
      '-n',
      NAMESPACE,
      'get',
      'secret',
      'mesh-injector-tls',
    ]);
    const ca = Buffer.from(secret.data['ca.crt'] ?? '', 'base64')
      .toString()
      .trim();
    expect(ca).toContain('BEGIN CERTIFICATE');
    const configuration = await getJson<WebhookConfiguration>([
      'get',
      'mutatingwebhookconfiguration',
      'mesh-injector',
    ]);
    expect(configuration.webhooks.length).toBeGreaterThan(0);
    for (const webhook of configuration.webhooks) {
      expect(Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString()).toContain(ca);
    }
  });

  it('is called by the apiserver through its Service: a pod in a labelled namespace is injected', async () => {
    const configuration = await getJson<WebhookConfiguration>([
      'get',
      'mutatingwebhookconfiguration',
      'mesh-injector',
    ]);
    for (const webhook of configuration.webhooks) {
      expect(webhook.clientConfig.url).toBeUndefined();
      expect(webhook.clientConfig.service).toMatchObject({ name: 'mesh-injector', namespace: NAMESPACE });
    }
    const created = JSON.parse(
      await must(
        ['create', '--dry-run=server', '-o', 'json', '-f', '-'],
        JSON.stringify(clientPod(labelled, 'probe', target.demoImage)),
      ),
    ) as Pod;
    expect(created.spec.initContainers?.map((container) => container.name)).toEqual(['istio-init']);
    expect(created.spec.containers.map((container) => container.name)).toContain('istio-proxy');
  });
});
