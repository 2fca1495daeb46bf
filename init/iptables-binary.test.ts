import { describe, expect, it } from 'vitest';
import type { CommandRunner } from './command.js';
import {
  compareVersions,
  detectIptablesBinary,
  hasExistingRules,
  IptablesBinaryError,
  lockArgsFor,
  parseSaveVersion,
  PROBE_INPUT,
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
  const run: CommandRunner = (file, args, options) => {
    commands.push(
      [file, ...args].join(' ') + (options?.input === undefined ? '' : ` < ${JSON.stringify(options.input)}`),
    );
    const set = installed[file.replace(/-(save|restore)$/, '')];
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
    const { run, commands } = machine({
      'iptables-legacy': { ...LEGACY, rules: RULES },
      'iptables-nft': NFT,
    });
    expect((await detectIptablesBinary('ipv4', undefined, run)).binary).toEqual({
      family: 'ipv4',
      command: 'iptables-legacy',
      save: 'iptables-legacy-save',
      restore: 'iptables-legacy-restore',
      backend: 'legacy',
      version: '1.8.9',
      lockArgs: ['--wait=30'],
    });
    // Istio's probe: save, version, a rule that matches nothing added and deleted again (one restore
    // transaction), with --wait=30 on legacy's write command only. Nft's reads started alongside legacy's, but
    // nothing is written with nft: once legacy is chosen, its answer cannot change the choice.
    expect(commands.sort()).toEqual(
      [
        'iptables-legacy-save',
        'iptables-legacy-save --version',
        `iptables-legacy-restore --noflush --wait=30 < ${JSON.stringify(PROBE_INPUT)}`,
        'iptables-nft-save',
        'iptables-nft-save --version',
      ].sort(),
    );
  });

  it('takes nft when legacy holds no rules, even if a probe left an empty legacy table behind', async () => {
    const { run, commands } = machine({
      'ip6tables-legacy': { ...LEGACY, rules: EMPTY_TABLE },
      'ip6tables-nft': { ...NFT, rules: RULES },
    });
    expect((await detectIptablesBinary('ipv6', undefined, run)).binary).toMatchObject({
      command: 'ip6tables-nft',
      restore: 'ip6tables-nft-restore',
      backend: 'nft',
      lockArgs: [],
    });
    // Legacy without rules cannot be chosen, so the rest of its probe is not run; nft's reads start at once, with
    // legacy's, and its probe is one restore that takes no lock. Four processes, two of them one after the other.
    expect(commands).toEqual([
      'ip6tables-legacy-save',
      'ip6tables-nft-save',
      'ip6tables-nft-save --version',
      `ip6tables-nft-restore --noflush < ${JSON.stringify(PROBE_INPUT)}`,
    ]);
    expect(PROBE_INPUT).toBe('*nat\n-A INPUT -p 255 -j RETURN\n-D INPUT -p 255 -j RETURN\nCOMMIT\n');
  });

  it('does not run legacy-save when the namespace has no legacy table, the fresh pod: nft with three processes', async () => {
    const { run, commands } = machine({ 'iptables-legacy': LEGACY, 'iptables-nft': NFT });
    const legacyTables = (family: string) => (family === 'ipv4' ? [] : ['nat']);
    const detection = await detectIptablesBinary('ipv4', undefined, run, { legacyTables });
    expect(detection.binary.command).toBe('iptables-nft');
    expect(commands).toEqual([
      'iptables-nft-save',
      'iptables-nft-save --version',
      `iptables-nft-restore --noflush < ${JSON.stringify(PROBE_INPUT)}`,
    ]);
  });

  it('still asks legacy-save when the namespace lists legacy tables, or their list cannot be read', async () => {
    for (const listed of [['nat'], undefined]) {
      const { run, commands } = machine({
        'iptables-legacy': { ...LEGACY, rules: RULES },
        'iptables-nft': NFT,
      });
      const detection = await detectIptablesBinary('ipv4', undefined, run, { legacyTables: () => listed });
      expect(detection.binary.command).toBe('iptables-legacy');
      expect(commands).toContain('iptables-legacy-save');
    }
  });

  it('says legacy was passed over because the namespace lists no legacy table', async () => {
    const { run } = machine({ 'iptables-legacy': { ...LEGACY, rules: RULES } });
    await expect(detectIptablesBinary('ipv4', undefined, run, { legacyTables: () => [] })).rejects.toThrow(
      /^no usable iptables binary for ipv4:\n {2}iptables-legacy: holds no rules in this network namespace \(\/proc\/net\/ip_tables_names lists no table\)\n/,
    );
  });

  it('ignores the legacy table list when a backend is forced', async () => {
    const { run, commands } = machine({ 'iptables-legacy': LEGACY });
    const detection = await detectIptablesBinary('ipv4', 'legacy', run, { legacyTables: () => [] });
    expect(detection.binary.command).toBe('iptables-legacy');
    expect(commands).toContain('iptables-legacy-save');
  });

  it('falls back to plain iptables, reading its backend from its version', async () => {
    const { run } = machine({ 'iptables-nft': { ...NFT, noKernelSupport: true }, iptables: NFT });
    expect((await detectIptablesBinary('ipv4', undefined, run)).binary).toMatchObject({
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
    expect((await detectIptablesBinary('ipv4', 'nft', run)).binary).toMatchObject({
      command: 'iptables-nft',
    });
    expect(commands.every((command) => command.startsWith('iptables-nft'))).toBe(true);
  });

  it('fails naming the forced binary, why it is unusable, and the fix', async () => {
    const { run } = machine({ 'iptables-legacy': LEGACY, 'iptables-nft': { ...NFT, noKernelSupport: true } });
    const error = await detectIptablesBinary('ipv4', 'nft', run).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IptablesBinaryError);
    expect((error as Error).message).toBe(
      'no usable iptables binary for ipv4 (FORCE_IPTABLES_BINARY=nft):\n' +
        '  iptables-nft: iptables-nft-restore --noflush of the test rule "-p 255 -j RETURN" in nat INPUT failed (exit 3): ' +
        'iptables-nft-restore: Table does not exist (do you need to insmod?)\n' +
        'fix: install iptables (Debian\'s "iptables" package provides both backends) or unset FORCE_IPTABLES_BINARY',
    );
  });

  it('fails listing every candidate when none is usable', async () => {
    const { run } = machine({});
    await expect(detectIptablesBinary('ipv6', undefined, run)).rejects.toThrow(
      /^no usable ip6tables binary for ipv6:\n {2}ip6tables-legacy: ip6tables-legacy-save failed \(exit 127\).*\n {2}ip6tables-nft: .*\n {2}ip6tables: /,
    );
  });

  it('says why legacy was passed over when it holds no rules and nothing else is usable', async () => {
    const { run } = machine({ 'iptables-legacy': LEGACY });
    await expect(detectIptablesBinary('ipv4', undefined, run)).rejects.toThrow(
      /^no usable iptables binary for ipv4:\n {2}iptables-legacy: holds no rules in this network namespace\n/,
    );
  });

  it('treats a save binary without --version as legacy 0.0.0, which takes no lock', async () => {
    const { run, commands } = machine({ 'iptables-legacy': { rules: RULES } });
    expect((await detectIptablesBinary('ipv4', 'legacy', run)).binary).toMatchObject({
      backend: 'legacy',
      version: '0.0.0',
      lockArgs: [],
    });
    expect(commands).toContain(`iptables-legacy-restore --noflush < ${JSON.stringify(PROBE_INPUT)}`);
  });
});

describe('the rules read by the probe', () => {
  it('come with the detection, as the chosen binary saved them before the test rule', async () => {
    const { run } = machine({ 'iptables-legacy': { ...LEGACY, rules: RULES }, 'iptables-nft': NFT });
    expect(await detectIptablesBinary('ipv4', undefined, run)).toMatchObject({
      binary: { command: 'iptables-legacy' },
      saved: RULES,
    });
  });

  it('are read before the probe writes anything', async () => {
    const { run, commands } = machine({ 'iptables-nft': { ...NFT, rules: RULES } });
    expect(await detectIptablesBinary('ipv4', 'nft', run)).toMatchObject({ saved: RULES });
    expect(commands.indexOf('iptables-nft-save')).toBeLessThan(
      commands.findIndex((command) => command.startsWith('iptables-nft-restore')),
    );
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
