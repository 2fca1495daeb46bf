import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SHIPPED_CONFIG_DIR } from '../test/fixtures/pods.js';
import { CONFIG_FILES } from './config.js';
import { ConfigStore } from './config-store.js';

let dir: string;
let store: ConfigStore | undefined;
const reloads: string[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mesh-injector-config-'));
  for (const file of [CONFIG_FILES.template, CONFIG_FILES.values, CONFIG_FILES.proxyBootstrap])
    await copyFile(join(SHIPPED_CONFIG_DIR, file), join(dir, file));
  reloads.length = 0;
});

afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(dir, { recursive: true, force: true });
});

function newStore() {
  store = new ConfigStore({
    dir,
    log: pino({ level: 'silent' }),
    onReload: (result) => reloads.push(result),
    debounceMs: 10,
  });
  return store;
}

async function until(condition: () => boolean) {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}

describe('the configuration store', () => {
  it('loads the shipped configuration', async () => {
    await newStore().start();
    expect(store?.current?.values.images.proxy).toMatch(/envoy/);
    expect(store?.lastError).toBeUndefined();
  });

  it('picks up a valid change by itself', async () => {
    await newStore().start();
    const values = await readFile(join(dir, CONFIG_FILES.values), 'utf8');
    await writeFile(join(dir, CONFIG_FILES.values), values.replace('logLevel: warning', 'logLevel: debug'));
    await until(() => store?.current?.values.proxy.logLevel === 'debug');
    expect(reloads).toEqual(['success', 'success']);
  });

  it('keeps the last good configuration on a bad update, and says why', async () => {
    await newStore().start();
    const good = store?.current;
    await writeFile(join(dir, CONFIG_FILES.template), 'containers: [unclosed');
    await until(() => reloads.includes('failure'));
    expect(store?.current).toBe(good);
    expect(store?.lastError).toContain('template.yaml is not valid YAML');
  });

  it.each([
    ['a template that misses the proxy', CONFIG_FILES.template, 'containers: []', 'exactly one container'],
    [
      'an unknown placeholder',
      CONFIG_FILES.template,
      "containers: [{name: istio-proxy, image: '{{ proxy.imag }}'}]",
      'unknown placeholder',
    ],
    ['an unknown values key', CONFIG_FILES.values, 'imagez: {}', 'values.imagez: unknown setting'],
    [
      'a value that would reach a command line',
      CONFIG_FILES.values,
      "traffic: {excludeOutboundPorts: '25 -j ACCEPT'}",
      'is not a port',
    ],
    [
      'an unsupported default interception mode',
      CONFIG_FILES.values,
      'traffic: {interceptionMode: TPROXY}',
      'interceptionMode',
    ],
  ])('starts without a configuration on %s, with a clear error', async (_what, file, content, message) => {
    await writeFile(join(dir, file), content);
    await newStore().start();
    expect(store?.current).toBeUndefined();
    expect(store?.lastError).toContain(message);
  });

  it('recovers once a broken configuration is fixed', async () => {
    const template = await readFile(join(dir, CONFIG_FILES.template), 'utf8');
    await writeFile(join(dir, CONFIG_FILES.template), 'not: [valid');
    await newStore().start();
    expect(store?.current).toBeUndefined();
    await writeFile(join(dir, CONFIG_FILES.template), template);
    await until(() => store?.current !== undefined);
    expect(store?.lastError).toBeUndefined();
  });
});
