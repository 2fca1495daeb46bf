/**
 * The MutatingWebhookConfiguration from manifests/, pointed at a webhook outside the cluster: each service
 * clientConfig becomes a `url:` with the given CA, as controller-runtime's envtest does.
 */
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { INJECT_PATH } from '../../common/constants.js';
import { repoPath } from './repo.js';

export const MUTATING_WEBHOOK_MANIFEST = repoPath('manifests', 'mutating-webhook.yaml');

interface Webhook {
  name: string;
  clientConfig: { service?: unknown; url?: string; caBundle?: string };
  namespaceSelector?: unknown;
  timeoutSeconds?: number;
  failurePolicy?: string;
}

export interface MutatingWebhookConfiguration {
  metadata: { name: string };
  webhooks: Webhook[];
}

export function localWebhookConfiguration(options: {
  url: string;
  caPem: string;
  timeoutSeconds?: number;
  failurePolicy?: 'Fail' | 'Ignore';
}): MutatingWebhookConfiguration {
  const configuration = parse(readFileSync(MUTATING_WEBHOOK_MANIFEST, 'utf8'), {
    merge: true,
  }) as MutatingWebhookConfiguration;
  for (const webhook of configuration.webhooks) {
    webhook.clientConfig = {
      url: `${options.url}${INJECT_PATH}`,
      caBundle: Buffer.from(options.caPem).toString('base64'),
    };
    if (options.timeoutSeconds !== undefined) webhook.timeoutSeconds = options.timeoutSeconds;
    if (options.failurePolicy !== undefined) webhook.failurePolicy = options.failurePolicy;
  }
  return configuration;
}

export function toYamlDocument(object: unknown): string {
  return stringify(object, { aliasDuplicateObjects: false });
}
