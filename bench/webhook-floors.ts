/**
 * Section 5's floors: webhooks with no work of their own (bench/baseline-server.ts, a bare Fastify server), so
 * that a create through them costs the apiserver's share of a webhook call, and the floor's HTTP, but nothing of
 * the injector's review.
 *
 * - allow: admits without a patch (the bare baseline server): what calling any webhook costs;
 * - patch: answers with the injector's own answer for the same pod, precomputed, with the review's uid put in
 *   (the size-matched baseline server with `--echo-uid`): what applying this patch costs the apiserver.
 *
 * Each is selected by the namespace label `mesh-injector.io/bench-floor`, with the settings of the injector's own
 * webhook (rules, failure policy, timeout, reinvocation), and neither matches where the injector's webhooks do.
 */
import { INJECT_PATH } from '../common/constants.js';
import type { MutatingWebhookConfiguration } from '../test/harness/webhook-configuration.js';

export const FLOOR_LABEL = 'mesh-injector.io/bench-floor';
export const FLOORS = ['allow', 'patch'] as const;
export type Floor = (typeof FLOORS)[number];

/** The injector's webhook whose settings the floors copy: the one `istio-injection=enabled` selects. */
const MODEL_WEBHOOK = 'namespace.sidecar-injector.mesh-injector.io';

export function floorWebhookName(floor: Floor): string {
  return `${floor}.floor.bench.mesh-injector.io`;
}

/**
 * A MutatingWebhookConfiguration with one webhook per floor, each a copy of the injector's model webhook (from
 * `injector`, the local configuration) selecting its own namespaces and calling its own server.
 */
export function floorWebhookConfiguration(
  injector: MutatingWebhookConfiguration,
  origins: Record<Floor, string>,
): MutatingWebhookConfiguration {
  const model = injector.webhooks.find((webhook) => webhook.name === MODEL_WEBHOOK);
  if (!model) throw new Error(`the injector's webhook configuration has no ${MODEL_WEBHOOK}`);
  return {
    ...injector,
    metadata: { name: 'mesh-injector-bench-floors' },
    webhooks: FLOORS.map((floor) => ({
      ...model,
      name: floorWebhookName(floor),
      clientConfig: { ...model.clientConfig, url: `${origins[floor]}${INJECT_PATH}` },
      namespaceSelector: { matchLabels: { [FLOOR_LABEL]: floor } },
    })),
  };
}
