/**
 * The webhook process's two ports, as the Deployment exposes them: admission reviews and probes over HTTPS, and
 * Prometheus metrics over plain HTTP on the monitoring port, which takes no admission traffic.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INJECT_PATH } from '../common/constants.js';
import { admissionReview, typicalPod } from './fixtures/pods.js';
import { postJson, startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';

let webhook: WebhookProcess;

beforeAll(async () => {
  webhook = await startWebhookProcess();
});
afterAll(async () => {
  await webhook?.stop();
});

describe('the monitoring port', () => {
  it('counts the reviews the HTTPS port answered, in plain HTTP, with no TLS configuration', async () => {
    const before = await scrape();
    const review = await postJson(
      `${webhook.url}${INJECT_PATH}`,
      webhook.ca.cert,
      admissionReview(typicalPod()),
    );
    expect(review.status).toBe(200);
    const after = await scrape();
    expect(counter(after, 'sidecar_injection_requests_total')).toBe(
      counter(before, 'sidecar_injection_requests_total') + 1,
    );
  });

  it('refuses admission reviews and serves nothing but /metrics', async () => {
    const inject = await fetch(`${webhook.monitoringUrl}${INJECT_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(admissionReview(typicalPod())),
    });
    expect(inject.status).toBe(404);
    expect((await fetch(`${webhook.monitoringUrl}/readyz`)).status).toBe(404);
  });
});

async function scrape(): Promise<string> {
  const response = await fetch(`${webhook.monitoringUrl}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

function counter(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  if (!match) throw new Error(`no ${name} in the scrape`);
  return Number(match[1]);
}
