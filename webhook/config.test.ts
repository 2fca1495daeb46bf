import { beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
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

  describe('TPROXY declared supported', () => {
    const tproxyValues = (files: ConfigFiles) => {
      const values = parseDocument(files.valuesText ?? '{}');
      values.setIn(['traffic', 'supportedInterceptionModes'], ['REDIRECT', 'TPROXY', 'NONE']);
      return values.toString();
    };

    it('refuses to load when the bootstrap cannot accept TPROXY connections, saying why', () => {
      const files = { ...shipped, valuesText: tproxyValues(shipped) };
      expect(() => parseConfig(files)).toThrow(ConfigError);
      expect(() => parseConfig(files)).toThrow(
        /lists TPROXY.*no inbound listener on port 15006 with "transparent: true"/,
      );
    });

    it('loads once the inbound listener is transparent', () => {
      const proxyBootstrap = shipped.proxyBootstrap!.replace(
        '    - name: virtualInbound\n',
        '    - name: virtualInbound\n      transparent: true\n',
      );
      expect(proxyBootstrap).not.toBe(shipped.proxyBootstrap);
      const config = parseConfig({ ...shipped, valuesText: tproxyValues(shipped), proxyBootstrap });
      expect(config.values.traffic.supportedInterceptionModes).toContain('TPROXY');
    });
  });
});
