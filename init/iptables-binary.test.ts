import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  detectIptablesBinary,
  hasExistingRules,
  IptablesBinaryError,
  lockArgsFor,
  parseSaveVersion,
  runCommand,
  type CommandRunner,
} from './iptables-binary.js';

/** How one installed binary set behaves in the simulated machine. */
interface Installed {
  /** What `<x>-save --version` prints; undefined: the option is not understood (very old legacy). */
  version?: string;
  /** What `<x>-save` prints. */
  rules?: string;
  /** The kernel refuses the probe rule (no kernel support for this backend). */
  noKernelSupport?: boolean;
}

/**
 * A machine with the given binary sets installed (by name, e.g. `iptables-legacy`); any other program is not found.
 * It records every command line, so a test can see what detection ran and with which lock arguments.
 */
function machine(installed: Record<string, Installed>): { run: CommandRunner; commands: string[] } {
  const commands: string[] = [];
  const run: CommandRunner = (file, args) => {
    commands.push([file, ...args].join(' '));
    const set = installed[file.replace(/-save$/, '')];
    if (set === undefined)
      return Promise.resolve({ exitCode: 127, stdout: '', stderr: `${file}: not found` });
    if (file.endsWith('-save')) {
      if (args[0] === '--version') {
        return Promise.resolve(
          set.version === undefined
            ? { exitCode: 2, stdout: '', stderr: `${file}: unrecognized option '--version'` }
            : { exitCode: 0, stdout: `${set.version}\n`, stderr: '' },
        );
      }
      return Promise.resolve({ exitCode: 0, stdout: set.rules ?? '', stderr: '' });
    }
    if (set.noKernelSupport) {
      return Promise.resolve({
        exitCode: 3,
        stdout: '',
        stderr: `${file}: Table does not exist (do you need to insmod?)`,
      });
    }
    return Promise.resolve({ exitCode: 0, stdout: '', stderr: '' });
  };
  return { run, commands };
}

const LEGACY = { version: 'iptables-save v1.8.9 (legacy)' };
const NFT = { version: 'iptables-nft-save v1.8.9 (nf_tables)' };
const RULES = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n';
/** What legacy save prints once a probe created the nat table and deleted its rule again: tables, no rules. */
const EMPTY_TABLE = '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

describe('detectIptablesBinary', () => {
  it('prefers legacy when its tables already hold rules in this namespace', async () => {
    const { run } = machine({ 'iptables-legacy': { ...LEGACY, rules: RULES }, 'iptables-nft': NFT });
    expect(await detectIptablesBinary('ipv4', undefined, run)).toEqual({
      family: 'ipv4',
      command: 'iptables-legacy',
      save: 'iptables-legacy-save',
      restore: 'iptables-legacy-restore',
      backend: 'legacy',
      version: '1.8.9',
      lockArgs: ['--wait=30'],
    });
  });

  it('takes nft when legacy holds no rules, even if a probe left an empty legacy table behind', async () => {
    const { run, commands } = machine({
      'ip6tables-legacy': { ...LEGACY, rules: EMPTY_TABLE },
      'ip6tables-nft': { ...NFT, rules: RULES },
    });
    expect(await detectIptablesBinary('ipv6', undefined, run)).toMatchObject({
      command: 'ip6tables-nft',
      restore: 'ip6tables-nft-restore',
      backend: 'nft',
      lockArgs: [],
    });
    // Istio's probe: save, version, a rule that matches nothing added and deleted again; --wait=30 only on
    // legacy's write commands, never on -save and never on nft.
    expect(commands).toEqual([
      'ip6tables-legacy-save',
      'ip6tables-legacy-save --version',
      'ip6tables-legacy -t nat -A INPUT -p 255 -j RETURN --wait=30',
      'ip6tables-legacy -t nat -D INPUT -p 255 -j RETURN --wait=30',
      'ip6tables-nft-save',
      'ip6tables-nft-save --version',
      'ip6tables-nft -t nat -A INPUT -p 255 -j RETURN',
      'ip6tables-nft -t nat -D INPUT -p 255 -j RETURN',
    ]);
  });

  it('falls back to plain iptables, reading its backend from its version', async () => {
    const { run } = machine({ 'iptables-nft': { ...NFT, noKernelSupport: true }, iptables: NFT });
    expect(await detectIptablesBinary('ipv4', undefined, run)).toMatchObject({
      command: 'iptables',
      save: 'iptables-save',
      backend: 'nft',
      lockArgs: [],
    });
  });

  it('with a forced backend tries only that one', async () => {
    const { run, commands } = machine({
      'iptables-legacy': { ...LEGACY, rules: RULES },
      'iptables-nft': NFT,
    });
    expect(await detectIptablesBinary('ipv4', 'nft', run)).toMatchObject({ command: 'iptables-nft' });
    expect(commands.every((command) => command.startsWith('iptables-nft'))).toBe(true);
  });

  it('fails naming the forced binary, why it is unusable, and the fix', async () => {
    const { run } = machine({ 'iptables-legacy': LEGACY, 'iptables-nft': { ...NFT, noKernelSupport: true } });
    const error = await detectIptablesBinary('ipv4', 'nft', run).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IptablesBinaryError);
    expect((error as Error).message).toBe(
      'no usable iptables binary for ipv4 (FORCE_IPTABLES_BINARY=nft):\n' +
        '  iptables-nft: iptables-nft -t nat -A INPUT -p 255 -j RETURN failed (exit 3): ' +
        'iptables-nft: Table does not exist (do you need to insmod?)\n' +
        'fix: install iptables (Debian\'s "iptables" package provides both backends) or unset FORCE_IPTABLES_BINARY',
    );
  });

  it('fails listing every candidate when none is usable', async () => {
    const { run } = machine({});
    await expect(detectIptablesBinary('ipv6', undefined, run)).rejects.toThrow(
      /^no usable ip6tables binary for ipv6:\n {2}ip6tables-legacy: ip6tables-legacy-save failed \(exit 127\).*\n {2}ip6tables-nft: .*\n {2}ip6tables: /,
    );
  });

  it('treats a save binary without --version as legacy 0.0.0, which takes no lock', async () => {
    const { run, commands } = machine({ 'iptables-legacy': { rules: RULES } });
    expect(await detectIptablesBinary('ipv4', 'legacy', run)).toMatchObject({
      backend: 'legacy',
      version: '0.0.0',
      lockArgs: [],
    });
    expect(commands).toContain('iptables-legacy -t nat -A INPUT -p 255 -j RETURN');
  });
});

describe('versions and locks', () => {
  it('reads the backend and version from -save --version as Istio does', () => {
    expect(parseSaveVersion('iptables-nft-save v1.8.9 (nf_tables)')).toEqual({
      backend: 'nft',
      version: '1.8.9',
    });
    expect(parseSaveVersion('iptables-save v1.8.9 (legacy)')).toEqual({
      backend: 'legacy',
      version: '1.8.9',
    });
    expect(parseSaveVersion('iptables-save v1.6.1')).toEqual({ backend: 'legacy', version: '1.6.1' });
    expect(parseSaveVersion('unknown option')).toBeUndefined();
  });

  it('gives --wait=30 to legacy from 1.6.2 on, never to nft', () => {
    expect(lockArgsFor('legacy', '1.6.1')).toEqual([]);
    expect(lockArgsFor('legacy', '1.6.2')).toEqual(['--wait=30']);
    expect(lockArgsFor('legacy', '1.10')).toEqual(['--wait=30']);
    expect(lockArgsFor('nft', '1.8.9')).toEqual([]);
    expect(compareVersions('1.8', '1.8.0')).toBe(0);
  });

  it('counts a namespace as holding rules only when a rule is listed', () => {
    expect(hasExistingRules('')).toBe(false);
    expect(hasExistingRules(EMPTY_TABLE)).toBe(false);
    expect(hasExistingRules(RULES)).toBe(true);
  });
});

describe('runCommand', () => {
  it('runs a program with an argument array and its input on stdin, without a shell', async () => {
    const script = 'process.stdout.write(process.argv[1] + ":"); process.stdin.pipe(process.stdout)';
    const result = await runCommand('node', ['-e', script, '$(echo not a shell) *'], { input: 'rules\n' });
    expect(result).toEqual({ exitCode: 0, stdout: '$(echo not a shell) *:rules\n', stderr: '' });
  });

  it('reports a failing or missing program as a result, not an exception', async () => {
    expect(await runCommand('node', ['-e', 'console.error("no"); process.exit(3)'])).toEqual({
      exitCode: 3,
      stdout: '',
      stderr: 'no\n',
    });
    const missing = await runCommand('mi-apply-no-such-program', []);
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toContain('mi-apply-no-such-program');
  });
});
