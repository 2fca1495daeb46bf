import { readFileSync } from 'node:fs';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { shippedContext } from '../test/fixtures/pods.js';
import type { InjectionContext } from '../webhook/inject.js';
import { parseStatus } from '../webhook/status.js';
import { injectManifests, type InjectManifestsResult } from './inject-manifests.js';

const ALL_KINDS = readFileSync(new URL('../test/fixtures/all-kinds.yaml', import.meta.url), 'utf8');

let context: InjectionContext;
beforeAll(async () => {
  context = await shippedContext();
});

function inject(text: string): Extract<InjectManifestsResult, { ok: true }> {
  const result = injectManifests(text, context);
  if (!result.ok) throw new Error(`injection failed: ${JSON.stringify(result.diagnostics)}`);
  return result;
}

/** Every document of the output, as plain objects (YAML 1.1, as kubectl reads it). */
function objects(text: string): Record<string, unknown>[] {
  return parseAllDocuments(text, { version: '1.1' }).map((document) => {
    expect(document.errors).toEqual([]);
    return document.toJS() as Record<string, unknown>;
  });
}

function at(object: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown>)?.[key], object);
}

function expectInjected(template: unknown) {
  const { metadata, spec } = template as V1PodTemplateSpec;
  expect(spec?.initContainers?.map((c) => c.name)).toEqual(['istio-init']);
  expect(spec?.containers.map((c) => c.name)).toEqual(['hello', 'istio-proxy']);
  expect(spec?.volumes?.map((v) => v.name)).toEqual(['istio-envoy']);
  expect(parseStatus(metadata?.annotations?.['sidecar.istio.io/status'])).toMatchObject({
    initContainers: ['istio-init'],
    containers: ['istio-proxy'],
    revision: 'default',
  });
  expect(metadata?.labels?.['security.istio.io/tlsMode']).toBe('istio');
}

function document(kind: string, name: string, body: string): string {
  return `apiVersion: ${kind === 'Pod' ? 'v1' : 'apps/v1'}\nkind: ${kind}\nmetadata:\n  name: ${name}\n${body}`;
}

const DEPLOYMENT_SPEC = (annotations = '', podSpecExtra = '') => `spec:
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
${annotations ? `      annotations:\n${annotations}` : ''}    spec:
${podSpecExtra}      containers:
        - name: hello
          image: registry.example.com/hello:1
`;

const POD_SPEC = 'spec:\n  containers:\n    - name: hello\n      image: registry.example.com/hello:1\n';

describe('injectManifests on every workload kind', () => {
  const templatePaths: [string, string][] = [
    ['Pod', ''],
    ['Deployment', 'spec.template'],
    ['StatefulSet', 'spec.template'],
    ['DaemonSet', 'spec.template'],
    ['ReplicaSet', 'spec.template'],
    ['ReplicationController', 'spec.template'],
    ['Job', 'spec.template'],
    ['CronJob', 'spec.jobTemplate.spec.template'],
  ];

  it.each(templatePaths)('injects the pod template of a %s at %s', (kind, path) => {
    const output = objects(inject(ALL_KINDS).text);
    const object = output.find((o) => o.kind === kind);
    expect(object).toBeDefined();
    expectInjected(path === '' ? object : at(object, path));
  });

  it("puts the status on the pod template's metadata and uses the workload's name for the canonical name", () => {
    const output = objects(inject(ALL_KINDS).text);
    const job = output.find((o) => o.kind === 'Job');
    const template = at(job, 'spec.template') as V1PodTemplateSpec;
    expect(template.metadata?.labels?.['service.istio.io/canonical-name']).toBe('hello-job');
    // The name stood in for rendering only; a pod template has none.
    expect(template.metadata?.name).toBeUndefined();
    expect(at(job, 'metadata.annotations')).toBeUndefined();
  });

  it('injects the workloads inside a List and leaves its other items alone', () => {
    const list = objects(inject(ALL_KINDS).text).find((o) => o.kind === 'List');
    const [deployment, service] = list?.items as Record<string, unknown>[];
    expectInjected(at(deployment, 'spec.template'));
    expect(service).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'hello-listed' },
      spec: { selector: { app: 'hello-listed' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
  });

  it('counts the injected objects: eight kinds plus the Deployment in the List', () => {
    expect(inject(ALL_KINDS).injected).toBe(9);
  });

  it('uses the classic layout offline unless values say nativeSidecars: "true"', () => {
    const classic = objects(inject(document('Pod', 'p', POD_SPEC)).text)[0];
    expect(at(classic, 'spec.containers')).toMatchObject([{ name: 'hello' }, { name: 'istio-proxy' }]);
    const native = injectManifests(document('Deployment', 'web', DEPLOYMENT_SPEC()), {
      ...context,
      nativeSidecars: true,
    });
    expect(native.ok).toBe(true);
    const template = at(objects(native.ok ? native.text : '')[0], 'spec.template') as V1PodTemplateSpec;
    expect(template.spec?.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([
      ['istio-init', undefined],
      ['istio-proxy', 'Always'],
    ]);
  });
});

describe('injectManifests on a stream', () => {
  it('keeps the order of the documents', () => {
    const kinds = objects(inject(ALL_KINDS).text).map((o) => o.kind);
    expect(kinds).toEqual(objects(ALL_KINDS).map((o) => o.kind));
  });

  it('keeps comments outside what injection rewrote', () => {
    const { text } = inject(ALL_KINDS);
    expect(text.startsWith('# Every kind `mesh-injector inject` handles')).toBe(true);
    expect(text).toContain("name: hello-deployment # the workload's name");
    expect(text).toContain('# the application container\n        - name: hello');
  });

  it('copies an unknown kind byte for byte', () => {
    const configMap = ALL_KINDS.slice(
      ALL_KINDS.indexOf('# An unknown kind'),
      ALL_KINDS.lastIndexOf('---\napiVersion'),
    );
    expect(inject(ALL_KINDS).text).toContain(configMap);
    expect(objects(inject(ALL_KINDS).text).find((o) => o.kind === 'ConfigMap')?.data).toEqual({
      greeting: 'on',
    });
  });

  it("passes through a kind whose API group is not the workload's (a CRD named Job)", () => {
    const crd =
      'apiVersion: example.com/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: b}]\n';
    expect(inject(crd)).toEqual({
      ok: true,
      text: crd,
      injected: 0,
      diagnostics: [
        {
          severity: 'skip',
          object: 'Job "j" (document 1)',
          message: 'not injected: Job of API group "example.com" is not the workload kind ("batch")',
        },
      ],
      results: [
        {
          kind: 'Job',
          name: 'j',
          outcome: 'skipped',
          reason: 'Job of API group "example.com" is not the workload kind ("batch")',
        },
      ],
    });
  });

  it('returns a stream with no objects unchanged', () => {
    for (const text of ['', '# nothing here\n', '---\n---\n']) expect(inject(text).text).toBe(text);
  });

  it('separates re-written documents with ---, also when the input had none before the first', () => {
    const text = `${document('Pod', 'a', 'spec:\n  containers: [{name: a, image: b}]\n')}---\n${document('Pod', 'b', 'spec:\n  containers: [{name: b, image: c}]\n')}`;
    const output = inject(text).text;
    expect(output.match(/^---$/gm)).toHaveLength(1);
    expect(objects(output).map((o) => at(o, 'metadata.name'))).toEqual(['a', 'b']);
  });
});

describe('injectManifests skips, as the webhook decides', () => {
  it('passes a template annotated sidecar.istio.io/inject: "false" through unchanged, and says why', () => {
    const result = inject(ALL_KINDS);
    const optedOut = ALL_KINDS.slice(ALL_KINDS.lastIndexOf('---\napiVersion'));
    expect(result.text.endsWith(optedOut)).toBe(true);
    expect(result.diagnostics).toContainEqual({
      severity: 'skip',
      object: 'Deployment "hello-opted-out" (document 11)',
      message: 'not injected: sidecar.istio.io/inject is "false"',
    });
  });

  it('names every object it leaves alone on stderr, with the reason, and reports each object', () => {
    const result = inject(ALL_KINDS);
    expect(result.diagnostics.filter((d) => d.severity === 'skip').map((d) => [d.object, d.message])).toEqual(
      [
        [
          'Service "hello-listed" (document 9, item 2)',
          'not injected: Service has no pod template to inject',
        ],
        ['ConfigMap "hello-config" (document 10)', 'not injected: ConfigMap has no pod template to inject'],
        ['Deployment "hello-opted-out" (document 11)', 'not injected: sidecar.istio.io/inject is "false"'],
      ],
    );
    expect(result.results.map((r) => `${r.kind} ${r.outcome}`)).toEqual([
      'Pod injected',
      'Deployment injected',
      'StatefulSet injected',
      'DaemonSet injected',
      'ReplicaSet injected',
      'ReplicationController injected',
      'Job injected',
      'CronJob injected',
      'Deployment injected',
      'Service skipped',
      'ConfigMap skipped',
      'Deployment skipped',
    ]);
  });

  it('injects an OpenShift DeploymentConfig like the other workload kinds', () => {
    const text = document('DeploymentConfig', 'hello', DEPLOYMENT_SPEC()).replace(
      'apiVersion: apps/v1',
      'apiVersion: apps.openshift.io/v1',
    );
    const result = inject(text);
    expect(result.injected).toBe(1);
    const containers = at(objects(result.text)[0]!, 'spec.template.spec.containers') as { name: string }[];
    expect(containers.map((c) => c.name)).toContain('istio-proxy');
  });

  it('says so when injecting an injected object again changes nothing', () => {
    const once = inject(document('Deployment', 'web', DEPLOYMENT_SPEC())).text;
    const twice = inject(once);
    expect(twice.text).toBe(once);
    expect(twice.results).toEqual([
      expect.objectContaining({ outcome: 'skipped', reason: expect.stringContaining('already injected') }),
    ]);
  });

  it('passes a host-network pod template through unchanged', () => {
    const text = document('Deployment', 'host', DEPLOYMENT_SPEC('', '      hostNetwork: true\n'));
    const result = inject(text);
    expect(result.text).toBe(text);
    expect(result.diagnostics[0]?.message).toBe(
      'not injected: it uses the host network (spec.hostNetwork: true)',
    );
  });

  it('skips a workload in an ignored namespace, naming it with its namespace', () => {
    const text = document('Deployment', 'dns', DEPLOYMENT_SPEC()).replace(
      'name: dns',
      'name: dns\n  namespace: kube-system',
    );
    const result = inject(text);
    expect(result.text).toBe(text);
    expect(result.diagnostics[0]?.object).toBe('Deployment "kube-system/dns" (document 1)');
  });

  it('ignores neverInjectSelector and a disabled policy, as istioctl kube-inject does', () => {
    const values = {
      ...context.values,
      policy: 'disabled' as const,
      neverInjectSelector: [{ matchLabels: { app: 'web' } }],
    };
    const result = injectManifests(document('Deployment', 'web', DEPLOYMENT_SPEC()), { ...context, values });
    expect(result.ok && result.injected).toBe(1);
  });

  it('warns about an inject value other than "true" or "false", and injects', () => {
    const result = inject(
      document('Deployment', 'web', DEPLOYMENT_SPEC("        sidecar.istio.io/inject: 'yes'\n")),
    );
    expect(result.injected).toBe(1);
    expect(result.diagnostics).toEqual([
      expect.objectContaining({
        severity: 'warning',
        message: expect.stringContaining('only "true" and "false"'),
      }),
    ]);
  });
});

describe('injectManifests errors', () => {
  it('fails on an invalid annotation, naming the object, the annotation, the value and the fix, with no text', () => {
    const bad = document(
      'Deployment',
      'bad',
      DEPLOYMENT_SPEC("        traffic.sidecar.istio.io/excludeOutboundPorts: '80 -j ACCEPT'\n"),
    );
    const result = injectManifests(`${ALL_KINDS}---\n${bad}`, context);
    expect(result).toMatchObject({
      ok: false,
      diagnostics: [
        expect.objectContaining({ severity: 'skip' }),
        expect.objectContaining({ severity: 'skip' }),
        expect.objectContaining({ severity: 'skip' }),
        {
          severity: 'error',
          object: 'Deployment "bad" (document 12)',
          message: expect.stringMatching(
            /^invalid annotation traffic\.sidecar\.istio\.io\/excludeOutboundPorts: "80 -j ACCEPT" is not a port; fix: use a comma-separated list of ports .*\(in spec\.template\.metadata\.annotations\)$/,
          ),
        },
      ],
    });
    expect('text' in result).toBe(false);
  });

  it('fails on invalid YAML, naming the document and the line', () => {
    const result = injectManifests(
      `${document('Pod', 'a', 'spec:\n  containers: [{name: a, image: b}]\n')}---\nkind: [Pod\n`,
      context,
    );
    expect(result.ok).toBe(false);
    expect(result.diagnostics).toEqual([
      expect.objectContaining({
        severity: 'error',
        object: 'document 2',
        message: expect.stringMatching(/^is not valid YAML \(line 9, column \d+\): /),
      }),
    ]);
  });

  it('fails on a workload with no containers, naming where they belong', () => {
    const result = injectManifests(
      document('Deployment', 'empty', 'spec:\n  template:\n    spec: {}\n'),
      context,
    );
    expect(result.ok).toBe(false);
    expect(result.diagnostics[0]?.message).toContain('spec.template.spec.containers');
  });
});

describe('injectManifests is idempotent', () => {
  it('gives the same text when run on its own output, every kind at once', () => {
    const once = inject(ALL_KINDS);
    const twice = inject(once.text);
    expect(twice.text).toBe(once.text);
    expect(twice.injected).toBe(0);
  });

  it('does not add the sidecar twice to a workload written by hand after an earlier injection', () => {
    const once = objects(inject(document('Deployment', 'web', DEPLOYMENT_SPEC())).text)[0];
    const reformatted = JSON.stringify(once);
    const again = objects(inject(reformatted).text)[0];
    expect(again).toEqual(once);
  });
});
