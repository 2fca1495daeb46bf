/**
 * Annotation values built to break out of where they land: extra iptables arguments in the init container's
 * command line, shell syntax, YAML/JSON structure in the proxy's arguments, line breaks, NUL and oversized values.
 * Every annotation whose value reaches the init container or the proxy gets every such value, through the
 * admission handler, and each must be denied with a message naming the annotation, before anything is rendered.
 */
import { describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../common/constants.js';
import { admissionReview, shippedContext, typicalPod } from '../test/fixtures/pods.js';
import type { AdmissionRequest } from './admission.js';
import { ANNOTATION_ROWS } from './annotations.js';
import { MAX_SETTING_VALUE_LENGTH, SETTINGS_ANNOTATIONS } from './pod-settings.js';
import { reviewRequest, type ReviewOutcome } from './review.js';

const A = ANNOTATIONS;

/**
 * Annotations whose value becomes istio-iptables arguments, proxy arguments, the proxy image or its resources: every
 * row of the annotation table that reaches a container. proxy.istio.io/config is YAML by design and gets its own
 * hostile values below.
 */
const RENDERED_ANNOTATIONS = ANNOTATION_ROWS.filter((row) => row.reaches === 'container')
  .map((row) => row.name)
  .filter((name) => name !== A.proxyConfig);

const HOSTILE_VALUES: Record<string, string[]> = {
  'iptables arguments': [
    '80 -j ACCEPT',
    '80,--to-ports 1',
    '-j ACCEPT',
    '0.0.0.0/0 -j RETURN',
    '15001 -A OUTPUT -j ACCEPT',
  ],
  'shell syntax': ['$(id)', '`id`', '80;id', '80 && reboot', 'info|sh', "'; rm -rf / #"],
  'YAML and JSON structure': ['{a: b}', '"]', '["80"]', '{"cpu":"1"}', 'a: b', '- 80'],
  'line breaks': ['80\n-j ACCEPT', '80\r\n--to-ports 1', 'info\n--config-path /etc/passwd', '80\n81'],
  NUL: ['80\u0000', '\u0000', 'info\u0000-l trace'],
  oversized: ['8'.repeat(100 * 1024), '80,'.repeat(34 * 1024) + '80'],
};

/** proxy.istio.io/config is YAML by design; a structure that is not a mapping, or a wrong field type, is hostile. */
const PROXY_CONFIG_HOSTILE = [
  ...Object.entries(HOSTILE_VALUES)
    .filter(([category]) => category !== 'YAML and JSON structure')
    .flatMap(([, values]) => values),
  '"]',
  '["80"]',
  '- 80',
  'holdApplicationUntilProxyStarts: $(id)',
  '{holdApplicationUntilProxyStarts: [true]}',
  '&a [*a]',
];

async function review(annotations: Record<string, string>): Promise<ReviewOutcome> {
  const request = admissionReview(typicalPod({ annotations })).request as AdmissionRequest;
  return reviewRequest(request, await shippedContext());
}

function expectDenied(outcome: ReviewOutcome, annotation: string) {
  expect(outcome.outcome).toBe('denied');
  expect(outcome).not.toHaveProperty('patch');
  if (outcome.outcome !== 'denied') return;
  expect(outcome.message).toContain(`annotation ${annotation}:`);
  expect(outcome.message).toContain('fix:');
  // The value is quoted and cut in the message, so the denial itself smuggles nothing either.
  for (const raw of ['\n', '\r', '\u0000']) expect(outcome.message).not.toContain(raw);
  expect(outcome.message.length).toBeLessThan(1000);
}

describe('hostile annotation values', () => {
  it('covers every annotation the settings reader reads, except the one that never reaches a container', () => {
    const covered = new Set<string>([...RENDERED_ANNOTATIONS, A.proxyConfig]);
    // nativeSidecar only chooses the layout (exactly "true"/"false", anything else is ignored, as in Istio).
    expect(SETTINGS_ANNOTATIONS.filter((annotation) => !covered.has(annotation))).toEqual([A.nativeSidecar]);
    expect(RENDERED_ANNOTATIONS.length).toBeGreaterThan(20);
  });

  for (const [category, values] of Object.entries(HOSTILE_VALUES)) {
    describe(category, () => {
      it.each(RENDERED_ANNOTATIONS.flatMap((annotation) => values.map((value) => [annotation, value])))(
        '%s = %j is denied',
        async (annotation, value) => {
          expectDenied(await review({ [annotation]: value }), annotation);
        },
      );
    });
  }

  it.each(PROXY_CONFIG_HOSTILE.map((value) => [value]))(`${A.proxyConfig} = %j is denied`, async (value) => {
    expectDenied(await review({ [A.proxyConfig]: value }), A.proxyConfig);
  });

  it('names every hostile annotation of a pod at once', async () => {
    const annotations = Object.fromEntries(RENDERED_ANNOTATIONS.map((annotation) => [annotation, '$(id)']));
    const outcome = await review(annotations);
    expect(outcome.outcome).toBe('denied');
    // kubevirtInterfaces is read only when reroute-virtual-interfaces is absent.
    for (const annotation of RENDERED_ANNOTATIONS.filter((a) => a !== A.kubevirtInterfaces)) {
      expect(outcome.outcome === 'denied' && outcome.message).toContain(`annotation ${annotation}:`);
    }
  });

  it('says how long an oversized value is and what the limit is', async () => {
    const outcome = await review({ [A.excludeOutboundPorts]: '8'.repeat(100 * 1024) });
    expect(outcome.outcome === 'denied' && outcome.message).toContain(
      `it is ${100 * 1024} characters long, over the limit of ${MAX_SETTING_VALUE_LENGTH}`,
    );
  });

  it('refuses a value that is not a string as a malformed review naming it (only a hand-made one has it)', async () => {
    const pod = typicalPod();
    pod.metadata!.annotations = { [A.excludeInboundPorts]: 80 } as unknown as Record<string, string>;
    const outcome = reviewRequest(admissionReview(pod).request as AdmissionRequest, await shippedContext());
    expect(outcome).toEqual({
      outcome: 'malformed',
      reason: `malformed AdmissionReview: request.object.metadata.annotations["${A.excludeInboundPorts}"] is not a string`,
    });
  });

  it('renders a padded but valid value in canonical form, so no whitespace reaches the command line', async () => {
    const outcome = await review({
      [A.excludeOutboundPorts]: ' 80 ,\n81\t',
      [A.statusPort]: '15020\n',
    });
    if (outcome.outcome !== 'injected') throw new Error(`expected injection, got ${outcome.outcome}`);
    const args = outcome.patch
      .filter((op) => op.op === 'add' && op.path.startsWith('/spec/initContainers'))
      .flatMap((op) => ('value' in op ? JSON.stringify(op.value) : ''));
    expect(args.join('')).toContain('"-o","80,81"');
    expect(args.join('')).not.toMatch(/\\n|\\t| 80/);
  });
});
