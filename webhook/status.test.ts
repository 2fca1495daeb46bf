import { describe, expect, it } from 'vitest';
import { formatStatus, parseStatus, templateVersion } from './status.js';

const status = {
  initContainers: ['istio-init'],
  containers: ['istio-proxy'],
  volumes: ['istio-envoy'],
  imagePullSecrets: [],
  revision: 'default',
};

describe('the sidecar.istio.io/status annotation', () => {
  it("is written with Istio's keys in Istio's order, empty lists as null", () => {
    expect(formatStatus(status)).toBe(
      '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],' +
        '"imagePullSecrets":null,"revision":"default"}',
    );
  });

  it('carries the template version after the revision when there is one', () => {
    const text = formatStatus({ ...status, version: '0123456789abcdef' });
    expect(Object.keys(JSON.parse(text))).toEqual([
      'initContainers',
      'containers',
      'volumes',
      'imagePullSecrets',
      'revision',
      'version',
    ]);
    expect(parseStatus(text)).toStrictEqual({ ...status, version: '0123456789abcdef' });
  });

  it('reads an annotation without a version (older injectors, Istio) as having none', () => {
    expect(parseStatus(formatStatus(status))).toStrictEqual(status);
    expect(parseStatus('{"containers":["istio-proxy"],"revision":"default","version":""}')).toStrictEqual({
      initContainers: [],
      containers: ['istio-proxy'],
      volumes: [],
      imagePullSecrets: [],
      revision: 'default',
    });
  });

  it('counts an unparseable or non-object annotation as absent', () => {
    expect(parseStatus(undefined)).toBeUndefined();
    expect(parseStatus('{not json')).toBeUndefined();
    expect(parseStatus('["istio-proxy"]')).toBeUndefined();
    expect(parseStatus('null')).toBeUndefined();
  });
});

describe('templateVersion', () => {
  const config = {
    template: { containers: [{ name: 'istio-proxy', image: '{{ proxy.image }}' }] },
    values: { revision: 'default', proxy: { logLevel: 'warning', concurrency: 2 } },
    proxyBootstrap: 'admin: {}\n',
  };

  it('is a 16-digit hex digest, the same for the same configuration', () => {
    const version = templateVersion(config);
    expect(version).toMatch(/^[0-9a-f]{16}$/);
    expect(templateVersion(structuredClone(config))).toBe(version);
  });

  it('does not depend on key order', () => {
    const reordered = {
      ...config,
      values: { proxy: { concurrency: 2, logLevel: 'warning' }, revision: 'default' },
    };
    expect(templateVersion(reordered)).toBe(templateVersion(config));
  });

  it('changes when the template, the values or the bootstrap change', () => {
    const version = templateVersion(config);
    const changedTemplate = structuredClone(config);
    changedTemplate.template.containers[0]!.image = 'example.com/proxy:2';
    expect(templateVersion(changedTemplate)).not.toBe(version);
    expect(templateVersion({ ...config, values: { ...config.values, revision: 'canary' } })).not.toBe(
      version,
    );
    expect(templateVersion({ ...config, proxyBootstrap: null })).not.toBe(version);
  });

  it('answers for a new values object on the same template, not from a stale cache', () => {
    const first = templateVersion(config);
    const second = templateVersion({ ...config, values: { ...config.values, revision: 'canary' } });
    expect(second).not.toBe(first);
    expect(templateVersion(config)).toBe(first);
  });
});
