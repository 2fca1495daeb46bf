/**
 * The built `mesh-injector` CLI where no cluster is involved: how it introduces itself, and what it says when there
 * is no cluster to talk to.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { CLI_PATH } from './harness/webhook-process.js';
import { repoPath } from './harness/repo.js';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const VERSION = (JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string }).version;

function cli(args: string[], options: { input?: string; env?: Record<string, string> } = {}) {
  return execa(process.execPath, [CLI_PATH, ...args], { reject: false, ...options });
}

describe('mesh-injector --version and version', () => {
  it('print the version and the Node.js version, and exit 0', async () => {
    for (const args of [['--version'], ['-v'], ['version']]) {
      const result = await cli(args);
      expect(result.exitCode, args.join(' ')).toBe(0);
      expect(result.stdout).toBe(
        `mesh-injector ${VERSION} (Node.js ${process.version}, ${process.platform}/${process.arch})`,
      );
    }
  });

  it('version -o json is one JSON object', async () => {
    const result = await cli(['version', '-o', 'json']);
    expect(JSON.parse(result.stdout)).toEqual({
      version: VERSION,
      node: process.version,
      platform: `${process.platform}/${process.arch}`,
    });
  });
});

describe('mesh-injector serve', () => {
  it('refuses an unreadable certificate with one line naming the file, and exits 1', async () => {
    const result = await cli([
      'serve',
      '--host=127.0.0.1',
      '--port=0',
      '--monitoring-port=0',
      '--tls-cert=/nonexistent/tls.crt',
      '--tls-key=/nonexistent/tls.key',
      `--config=${repoPath('manifests', 'config')}`,
      '--kubeconfig=/nonexistent/kubeconfig',
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('error: the webhook did not start: ');
    expect(result.stderr).toContain('/nonexistent/tls.crt');
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it('refuses an image that is no image reference before starting', async () => {
    const result = await cli(['serve', '--tls-cert=x', '--tls-key=y', '--config=z'], {
      env: { MESH_INJECTOR_INIT_IMAGE: 'Not An Image' },
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('"Not An Image" is not an image reference');
  });
});

describe('mesh-injector check without a kubeconfig', () => {
  it('says there is none and how to give one, and fails', async () => {
    const home = await mkdtemp(join(tmpdir(), 'mesh-injector-home-'));
    try {
      const result = await cli(['check', '-o', 'json'], { env: { KUBECONFIG: '', HOME: home } });
      expect(result.exitCode).toBe(1);
      const report = JSON.parse(result.stdout) as {
        checks: { id: string; status: string; details: string[] }[];
      };
      expect(report.checks[0]).toMatchObject({ id: 'kubernetes-api', status: 'fail' });
      expect(report.checks[0]!.details[0]).toMatch(/^no kubeconfig: .*--kubeconfig FILE or KUBECONFIG=FILE/);
      expect(result.stdout).not.toContain('HTTP protocol is not allowed');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
