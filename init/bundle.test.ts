/**
 * The built `mesh-iptables` (package.json's bin, the file the init image runs): one self-contained file that needs
 * nothing but Node, run from a directory with no node_modules. `npm test` builds it first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
};
const built = join(repo, pkg.bin['mesh-iptables'] ?? 'missing');

describe('the mesh-iptables bundle', () => {
  let dir = '';
  let bundle = '';
  beforeAll(() => {
    expect(existsSync(built), `${built} exists (run npm run build)`).toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'mesh-iptables-bundle-'));
    bundle = join(dir, 'mesh-iptables');
    copyFileSync(built, bundle);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) =>
    spawnSync(process.execPath, [bundle, ...args], { encoding: 'utf8', cwd: dir });

  it('requires only Node built-in modules', () => {
    const required = [...readFileSync(built, 'utf8').matchAll(/\brequire\("([^"]+)"\)/g)].map(
      (m) => m[1] ?? '',
    );
    expect(required.length).toBeGreaterThan(0);
    const builtins = new Set(builtinModules);
    expect(required.filter((name) => !builtins.has(name.replace(/^node:/, '')))).toEqual([]);
  });

  it('starts with its interpreter line, so the image can run it directly', () => {
    expect(readFileSync(built, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it("runs alone, outside the repository: --version prints the package's version and Node's", () => {
    const result = run('--version');
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`mesh-iptables ${pkg.version} (Node.js ${process.version})\n`);
  });

  it('loads neither child_process nor net and stream for a dry run, --help or --version: none runs a program', () => {
    // Node lists every built-in module it has loaded in process.moduleLoadList; a preload prints it at exit.
    const preload = join(dir, 'print-modules.cjs');
    writeFileSync(
      preload,
      "process.on('exit', () => require('node:fs').writeSync(2, JSON.stringify(process.moduleLoadList)))",
    );
    for (const args of [['--dry-run', '--ipv6=false'], ['--help'], ['--version']]) {
      const result = spawnSync(process.execPath, ['--require', preload, bundle, ...args], {
        encoding: 'utf8',
        cwd: dir,
      });
      expect(result.status).toBe(0);
      const loaded = JSON.parse(result.stderr.slice(result.stderr.lastIndexOf('['))) as string[];
      expect(loaded).toContain('NativeModule fs');
      expect(loaded.filter((name) => /^NativeModule (child_process|net|stream)$/.test(name))).toEqual([]);
    }
  });

  it('takes Istio\'s template arguments: "istio-iptables" first is the same run', () => {
    const args = [
      '-p',
      '15001',
      '-z',
      '15006',
      '-u',
      '1337',
      '-m',
      'REDIRECT',
      '-i',
      '*',
      '-b',
      '*',
      '-d',
      '15020',
    ];
    const direct = run(...args, '--dry-run', '--ipv6=false');
    const asIstio = run('istio-iptables', ...args, '--dry-run', '--ipv6=false');
    expect(direct.status).toBe(0);
    expect(direct.stdout).toMatch(
      /^\* nat\n[\s\S]*-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN\n[\s\S]*COMMIT\n$/,
    );
    expect(asIstio.status).toBe(0);
    expect(asIstio.stdout).toBe(direct.stdout);
  });

  it('logs plain text by default and JSON lines with --log_as_json', () => {
    const text = run('--dry-run', '--ipv6=false');
    expect(text.stderr).toMatch(/^\S+Z\tinfo\teffective configuration\n/);
    const json = run('--dry-run', '--ipv6=false', '--log_as_json');
    const lines = json.stderr.trimEnd().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toContain(
      'iptables-restore input',
    );
  });

  it('is executable as a file', () => {
    expect(execFileSync(built, ['--version'], { encoding: 'utf8' })).toContain(
      `mesh-iptables ${pkg.version}`,
    );
  });
});
