import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueServingCert } from '../common/pki.js';
import { localWebhookConfiguration } from '../test/harness/webhook-configuration.js';
import { postJson } from './https-client.js';
import { admissionReview, typicalPod } from './pods.js';
import { startBaselineServer, type BaselineServer } from './processes.js';
import { FLOOR_LABEL, FLOORS, floorWebhookConfiguration, floorWebhookName } from './webhook-floors.js';

describe('the floors of section 5', () => {
  const injector = localWebhookConfiguration({ url: 'https://127.0.0.1:9443', caPem: 'CA' });
  const floors = floorWebhookConfiguration(injector, {
    allow: 'https://127.0.0.1:1001',
    patch: 'https://127.0.0.1:1002',
  });

  it("are called as the injector's own webhook is: same rules, failure policy, timeout and reinvocation", () => {
    const model = injector.webhooks.find((w) => w.name === 'namespace.sidecar-injector.mesh-injector.io')!;
    const { name: _name, clientConfig: _client, namespaceSelector: _selector, ...settings } = model;
    expect(floors.webhooks).toHaveLength(FLOORS.length);
    for (const webhook of floors.webhooks) expect(webhook).toMatchObject(settings);
  });

  it('each select only the namespaces labelled for them, and call their own server with the same CA', () => {
    expect(floors.metadata.name).not.toBe(injector.metadata.name);
    expect(floors.webhooks.map((w) => [w.name, w.namespaceSelector, w.clientConfig])).toEqual([
      [
        floorWebhookName('allow'),
        { matchLabels: { [FLOOR_LABEL]: 'allow' } },
        { url: 'https://127.0.0.1:1001/inject', caBundle: Buffer.from('CA').toString('base64') },
      ],
      [
        floorWebhookName('patch'),
        { matchLabels: { [FLOOR_LABEL]: 'patch' } },
        { url: 'https://127.0.0.1:1002/inject', caBundle: Buffer.from('CA').toString('base64') },
      ],
    ]);
  });
});

describe('the patch floor server (baseline-server --response FILE --echo-uid)', () => {
  const answer = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'uid-of-the-recorded-review', allowed: true, patchType: 'JSONPatch', patch: 'W10=' },
  };
  let dir: string;
  let caPem: string;
  let floor: BaselineServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-injector-floor-'));
    const ca = await createCA({ commonName: 'floor-test-ca', validityDays: 1 });
    const serving = await issueServingCert(ca, { dnsNames: [], ipAddresses: ['127.0.0.1'], validityDays: 1 });
    caPem = ca.cert;
    await writeFile(join(dir, 'tls.crt'), serving.cert);
    await writeFile(join(dir, 'tls.key'), serving.key, { mode: 0o600 });
    await writeFile(join(dir, 'answer.json'), JSON.stringify(answer));
    floor = await startBaselineServer(join(dir, 'tls.crt'), join(dir, 'tls.key'), {
      responseFile: join(dir, 'answer.json'),
      echoUid: true,
    });
  });

  afterAll(async () => {
    await floor?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers each review with the recorded answer and the review's own uid, as the apiserver requires", async () => {
    for (const uid of ['6d1c1a8e-0000-4c8e-9a2e-3f0b8f2b7a11', 'another "quoted" uid']) {
      const { status, text } = await postJson(
        `${floor.origin}/inject`,
        caPem,
        JSON.stringify(admissionReview(typicalPod(), uid)),
      );
      expect(status).toBe(200);
      expect(text).toBe(JSON.stringify({ ...answer, response: { ...answer.response, uid } }));
    }
  });
});
