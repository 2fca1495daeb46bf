import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_FILES, parseConfig, type ConfigFiles } from './config.js';
import { withImageOverrides } from './image-overrides.js';

function shippedConfigFiles(): ConfigFiles {
  const read = (name: string) =>
    readFileSync(new URL(`../manifests/config/${name}`, import.meta.url), 'utf8');
  return {
    templateText: read(CONFIG_FILES.template),
    valuesText: read(CONFIG_FILES.values),
    proxyBootstrap: read(CONFIG_FILES.proxyBootstrap),
  };
}

const MIRROR_PROXY = 'mirror.example.com/envoy:v1.39.6';
const MIRROR_INIT = `mirror.example.com/mesh-iptables@sha256:${'a'.repeat(64)}`;

function files(valuesText: string | null): ConfigFiles {
  return { ...shippedConfigFiles(), valuesText };
}

describe('image overrides from the Deployment', () => {
  it('replace values.yaml images.proxy and images.init, keeping the rest of the values', () => {
    const shipped = shippedConfigFiles();
    const overridden = withImageOverrides(shipped, { proxy: MIRROR_PROXY, init: MIRROR_INIT });
    const config = parseConfig(overridden);
    expect(config.values.images).toEqual({ proxy: MIRROR_PROXY, init: MIRROR_INIT });
    const { images: _before, ...restBefore } = parse(shipped.valuesText!) as Record<string, unknown>;
    const { images: _after, ...restAfter } = parse(overridden.valuesText!) as Record<string, unknown>;
    expect(restAfter).toEqual(restBefore);
  });

  it('replace only the image that is set', () => {
    const config = parseConfig(
      withImageOverrides(files('images: { proxy: a.example/p:1, init: a.example/i:1 }'), {
        init: MIRROR_INIT,
      }),
    );
    expect(config.values.images).toEqual({ proxy: 'a.example/p:1', init: MIRROR_INIT });
  });

  it('apply without a values.yaml, or with an empty one', () => {
    for (const valuesText of [null, '', '# nothing\n']) {
      const config = parseConfig(withImageOverrides(files(valuesText), { proxy: MIRROR_PROXY }));
      expect(config.values.images.proxy).toBe(MIRROR_PROXY);
    }
  });

  it('leave the files untouched when nothing is overridden', () => {
    const shipped = shippedConfigFiles();
    expect(withImageOverrides(shipped, {})).toBe(shipped);
  });

  it('are validated like values: a bad reference fails to load, naming the value', () => {
    expect(() => parseConfig(withImageOverrides(shippedConfigFiles(), { init: 'Not An Image' }))).toThrow(
      /values\.images\.init: .*is not an image reference/,
    );
  });

  it('leave values that are not a mapping for the configuration to reject', () => {
    expect(() => parseConfig(withImageOverrides(files('- a list'), { proxy: MIRROR_PROXY }))).toThrow(
      /values must be a mapping/,
    );
  });
});
