import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatVersion, versionInfo } from './version.js';

describe('mesh-injector version', () => {
  it("reports package.json's version and the Node.js that runs it", () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(versionInfo()).toEqual({
      version: pkg.version,
      node: process.version,
      platform: `${process.platform}/${process.arch}`,
    });
  });

  it('prints both on one line', () => {
    expect(formatVersion({ version: '1.2.3', node: 'v24.22.3', platform: 'linux/x64' })).toBe(
      'mesh-injector 1.2.3 (Node.js v24.22.3, linux/x64)',
    );
  });
});
