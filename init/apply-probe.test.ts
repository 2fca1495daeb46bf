/**
 * A pod's first run: the configured rules go straight to the kernel, led by Istio's probe, and the final save tells
 * what was there before; anything unexpected takes the full path (the rules in place read first), where the probe
 * leads the first restore too. When the kernel refuses the provisionally chosen binary, the run chooses again as
 * Istio would have, all or nothing. A simulated machine stands in for the kernel (test/init-apply.test.ts and
 * test/capture-state.test.ts run the real one).
 */
import { describe, expect, it } from 'vitest';
import { applyCapture, CaptureError, type CaptureOptions } from './apply.js';
import type { CommandRunner } from './command.js';
import { PROBE_INPUT } from './iptables-binary.js';
import { renderRestoreText } from './restore-text.js';
import { createLog } from './log.js';
import { buildRules } from './rules.js';
import { configFor } from './test-support.js';

const DEFAULT = buildRules(configFor(['-i', '*', '-b', '*', '-d', '15090,15021,15020']));
/** Interface exclusions put rules of their own in built-in chains: always the full path. */
const EXCLUDING_ETH9 = buildRules(configFor(['-i', '*', '-b', '*', '-c', 'eth9']));
/** What a TPROXY configuration leaves in mangle: capture rules of another configuration. */
const OTHER_CAPTURE =
  '*mangle\n:PREROUTING ACCEPT [0:0]\n:ISTIO_DIVERT - [0:0]\n-A ISTIO_DIVERT -j ACCEPT\nCOMMIT\n';

interface Binary {
  version: string;
  /** The kernel refuses this backend's rules: every restore fails as a missing nf_tables or module would. */
  refused?: boolean;
  /** Restore inputs holding this text fail at its line, as the kernel refusing one rule. */
  failAt?: string;
  /** What `-save` prints. */
  rules?: string;
}

/**
 * A machine with the given binary sets (by name, e.g. `iptables-nft`) and no rules. Restores change nothing it
 * saves, which is all a first apply and its rollback need. Records every command; `< probe` marks a probe's input
 * alone, `< probe + rules` a restore the probe leads.
 */
function machine(installed: Record<string, Binary>) {
  const commands: string[] = [];
  const run: CommandRunner = (file, args, options) => {
    const input = options?.input;
    const shown =
      input === undefined
        ? ''
        : input === PROBE_INPUT
          ? ' < probe'
          : input.startsWith(PROBE_INPUT)
            ? ' < probe + rules'
            : ' < rules';
    commands.push([file, ...args].join(' ') + shown);
    const set = installed[file.replace(/-(save|restore)$/, '')];
    const result = (exitCode: number, stdout: string, stderr: string) =>
      Promise.resolve({ exitCode, stdout, stderr });
    if (set === undefined) return result(127, '', `${file}: not found`);
    if (file.endsWith('-save'))
      return result(0, args[0] === '--version' ? `${set.version}\n` : (set.rules ?? ''), '');
    if (set.refused) return result(1, '', `${file}: line 2 failed: Table does not exist`);
    const line = set.failAt === undefined ? -1 : (input ?? '').split('\n').indexOf(set.failAt);
    if (line >= 0) return result(1, '', `${file}: line ${line + 1} failed`);
    return result(0, '', '');
  };
  return { run, commands };
}

const NFT = { version: 'iptables-nft-save v1.8.9 (nf_tables)' };
const LEGACY = { version: 'iptables-save v1.8.9 (legacy)' };

function options(run: CommandRunner, more: Partial<CaptureOptions> = {}): CaptureOptions {
  return {
    reconcile: true,
    forceApply: false,
    logger: createLog({ format: 'text', level: 'silent', write: () => undefined }),
    run,
    legacyTableNames: () => [],
    ...more,
  };
}

describe("a pod's first run", () => {
  it('is two processes: one restore led by the probe, and the final save', async () => {
    const { run, commands } = machine({ 'iptables-nft': NFT, 'iptables-legacy': LEGACY });
    await expect(applyCapture(DEFAULT, options(run))).resolves.toEqual({ kind: 'applied' });
    expect(commands).toEqual(['iptables-nft-restore --noflush < probe + rules', 'iptables-nft-save']);
  });

  it('takes the full path when the namespace has legacy tables, or they cannot be listed', async () => {
    for (const listed of [['filter'], undefined]) {
      const { run, commands } = machine({ 'iptables-nft': NFT });
      await applyCapture(DEFAULT, options(run, { legacyTableNames: () => listed }));
      expect(commands[0]).toBe('iptables-legacy-save');
    }
  });

  it('undoes itself and replaces capture rules of another configuration, as Istio would', async () => {
    const { run, commands } = machine({ 'iptables-nft': { ...NFT, rules: OTHER_CAPTURE } });
    const outcome = await applyCapture(DEFAULT, options(run));
    expect(outcome).toMatchObject({ kind: 'replaced', previous: expect.stringContaining('ISTIO_DIVERT') });
    expect(commands.slice(0, 2)).toEqual([
      'iptables-nft-restore --noflush < probe + rules',
      'iptables-nft-save',
    ]);
    // The full path: the rules in place read first.
    expect(commands).toContain('iptables-nft-save --version');
  });
});

describe('the full path, with the probe ahead of the first restore', () => {
  it('reads nft twice at once, then one restore led by the probe, then the final save', async () => {
    const { run, commands } = machine({ 'iptables-nft': NFT, 'iptables-legacy': LEGACY });
    await expect(applyCapture(EXCLUDING_ETH9, options(run))).resolves.toEqual({ kind: 'applied' });
    expect(commands).toEqual([
      'iptables-nft-save',
      'iptables-nft-save --version',
      'iptables-nft-restore --noflush < probe + rules',
      'iptables-nft-save',
    ]);
  });

  it('when the kernel refuses nft, chooses plain iptables as Istio would, after undoing nothing', async () => {
    const { run, commands } = machine({
      'iptables-nft': { ...NFT, refused: true },
      iptables: LEGACY,
    });
    await expect(applyCapture(DEFAULT, options(run))).resolves.toEqual({ kind: 'applied' });
    expect(commands).toEqual([
      // The first run's restore, refused: nothing changed.
      'iptables-nft-restore --noflush < probe + rules',
      'iptables-nft-save',
      'iptables-nft-save --version',
      'iptables-nft-restore --noflush < probe + rules',
      // The probe alone tells an unusable backend from rules the kernel refused.
      'iptables-nft-restore --noflush < probe',
      // The rollback reads what is there (nothing of this run) and checks it again.
      'iptables-nft-save',
      'iptables-nft-save',
      'iptables-save',
      'iptables-save --version',
      'iptables-restore --noflush --wait=30 < probe + rules',
      'iptables-save',
    ]);
  });

  it('with a forced backend the kernel refuses, fails naming it, with nothing changed', async () => {
    const { run } = machine({ 'iptables-nft': { ...NFT, refused: true }, iptables: LEGACY });
    const error = await applyCapture(DEFAULT, options(run, { forceBinary: 'nft' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaptureError);
    expect((error as Error).message).toBe(
      'no usable iptables binary for ipv4 (FORCE_IPTABLES_BINARY=nft):\n' +
        '  iptables-nft: iptables-nft-restore --noflush of the test rule "-p 255 -j RETURN" in nat INPUT failed ' +
        '(exit 1): iptables-nft-restore: line 2 failed: Table does not exist\n' +
        'fix: install iptables (Debian\'s "iptables" package provides both backends) or unset ' +
        'FORCE_IPTABLES_BINARY\nNothing was changed.',
    );
  });

  it('a rule the kernel refuses is named by its line in the rules, not in the input the probe led', async () => {
    const failing = '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN';
    const { run, commands } = machine({ 'iptables-nft': { ...NFT, failAt: failing } });
    const error = await applyCapture(DEFAULT, options(run)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaptureError);
    const line = renderRestoreText(DEFAULT.ipv4).split('\n').indexOf(failing) + 1;
    expect(line).toBeGreaterThan(1);
    expect((error as Error).message).toContain(`failed in table nat at line ${line} ("${failing}")`);
    expect((error as Error).message).toContain('The rules were rolled back');
    expect(commands).toContain('iptables-nft-restore --noflush < probe');
  });
});
