import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../common/constants.js';
import { ANNOTATION_ROWS, ANNOTATION_TABLE, describeProblem, readAnnotations } from './annotations.js';
import { annotationsMarkdown } from './annotations-doc.js';
import { DEFAULT_VALUES } from './values.js';

const read = (annotations: Record<string, string>) => readAnnotations(annotations, DEFAULT_VALUES);

describe('the annotation table', () => {
  it('declares each annotation once', () => {
    const names = ANNOTATION_ROWS.map((row) => row.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('says the value once in a denial, then the reason and the fix', () => {
    const [problem] = read({ [ANNOTATIONS.statusPort]: 'abc' }).problems;
    const message = describeProblem(problem!);
    expect(message).toBe(
      'invalid annotation status.sidecar.istio.io/port: "abc" is not a port; fix: use a port from 1 to 65535, ' +
        'e.g. "15020", or "0" for no status port (and no proxy probes)',
    );
    expect(message.split('"abc"')).toHaveLength(2);
    const listed = describeProblem(read({ [ANNOTATIONS.excludeInboundPorts]: '80,abc' }).problems[0]!);
    expect(listed).toMatch(/^invalid annotation \S+: value "80,abc": "abc" is not a port; fix: /);
  });

  it.each([
    [ANNOTATIONS.proxyCPU, /CPU quantity, e\.g\. "100m"/],
    [ANNOTATIONS.proxyCPULimit, /CPU quantity/],
    [ANNOTATIONS.proxyMemory, /memory quantity, e\.g\. "128Mi"/],
    [ANNOTATIONS.proxyMemoryLimit, /memory quantity/],
  ])('suggests values of the right kind for %s', (annotation, fix) => {
    const [problem] = read({ [annotation]: 'lots' }).problems;
    expect(problem?.fix).toMatch(fix);
    expect(problem?.fix).not.toMatch(annotation.includes('CPU') ? /Mi|Gi/ : /"100m"|"2"/);
  });

  it('gives back warnings for deprecated annotations and values that decide nothing', () => {
    expect(read({ [ANNOTATIONS.kubevirtInterfaces]: 'net1' }).warnings).toEqual([
      'annotation traffic.sidecar.istio.io/kubevirtInterfaces is deprecated; use istio.io/reroute-virtual-interfaces instead',
    ]);
    expect(read({ [ANNOTATIONS.nativeSidecar]: 'yes' }).warnings).toEqual([
      'sidecar.istio.io/nativeSidecar: "yes" is neither "true" nor "false", so the injector\'s setting applies',
    ]);
    expect(read({ [ANNOTATIONS.nativeSidecar]: 'true' }).warnings).toEqual([]);
  });

  it('parses each present annotation with its row, and only those', () => {
    expect(read({ [ANNOTATIONS.excludeOutboundPorts]: ' 80 , 81', unrelated: 'x' }).parsed).toEqual({
      excludeOutboundPorts: [80, 81],
    });
    expect(ANNOTATION_TABLE.excludeOutboundPorts.name).toBe(ANNOTATIONS.excludeOutboundPorts);
  });

  // Regenerate: npm run build && node dist/webhook/annotations-doc.js > docs/annotations.md && npx prettier --write docs/annotations.md
  it('is what docs/annotations.md lists, row for row', async () => {
    const path = fileURLToPath(new URL('../docs/annotations.md', import.meta.url));
    const options = { ...(await resolveConfig(path)), parser: 'markdown' };
    expect(readFileSync(path, 'utf8')).toBe(await format(annotationsMarkdown(), options));
  });

  it("is what the README's annotation list names", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain('docs/annotations.md');
  });
});
