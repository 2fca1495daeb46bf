import { beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED_CONFIG_DIR } from '../test/fixtures/pods.js';
import { ConfigError, parseConfig, readConfigFiles, type ConfigFiles } from './config.js';

describe('the configuration directory', () => {
  let shipped: ConfigFiles;
  beforeAll(async () => {
    shipped = await readConfigFiles(SHIPPED_CONFIG_DIR);
  });

  it('keeps the proxy bootstrap as one line of JSON, whatever its YAML layout and comments', () => {
    const config = parseConfig({ ...shipped, proxyBootstrap: '# admin only\nadmin:\n  address: {}\n' });
    expect(config.proxyBootstrap).toBe('{"admin":{"address":{}}}');
  });

  it.each([
    ['admin: [unclosed', 'envoy.yaml is not valid YAML'],
    ['- a list', 'envoy.yaml is not a YAML mapping'],
  ])('refuses a bootstrap %j: %s', (proxyBootstrap, message) => {
    expect(() => parseConfig({ ...shipped, proxyBootstrap })).toThrow(ConfigError);
    expect(() => parseConfig({ ...shipped, proxyBootstrap })).toThrow(message);
  });

  it('refuses a template that needs the bootstrap when envoy.yaml is missing', () => {
    expect(() => parseConfig({ ...shipped, proxyBootstrap: null })).toThrow('envoy.yaml is missing');
  });
});
