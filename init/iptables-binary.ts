/**
 * Which iptables binaries to run, chosen as Istio's `DetectIptablesVersion` does, separately per IP family, and
 * how commands are run (through execa, with argument arrays; never a shell).
 */
import { execa } from 'execa';

export type IpFamily = 'ipv4' | 'ipv6';
export type IptablesBackend = 'legacy' | 'nft';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion; a non-zero exit is a result, not an exception. */
export type CommandRunner = (
  file: string,
  args: readonly string[],
  options?: { input?: string },
) => Promise<CommandResult>;

/** The real runner. A program that cannot be started gives exit code 127 and the reason on stderr. */
export const runCommand: CommandRunner = async (file, args, options = {}) => {
  const result = await execa(file, args, {
    reject: false,
    stripFinalNewline: false,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
  });
  if (result.exitCode === undefined) {
    return { exitCode: 127, stdout: '', stderr: result.shortMessage ?? `${file} could not be started` };
  }
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
};

export function describeCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word}'`)).join(' ');
}

/** One family's binaries, as detected. */
export interface IptablesBinary {
  family: IpFamily;
  /** `iptables-nft`, `ip6tables-legacy`, or plain `iptables`/`ip6tables`. */
  command: string;
  save: string;
  restore: string;
  backend: IptablesBackend;
  /** The version `<command>-save --version` printed; 0.0.0 when it printed none (very old legacy). */
  version: string;
  /** Appended to write commands (`<command>` and `<command>-restore`, never `-save`): `--wait=30` or nothing. */
  lockArgs: readonly string[];
}

/** Istio's `needLock`: legacy iptables takes the xtables lock from 1.6.2 on; nf_tables has no lock. */
export function lockArgsFor(backend: IptablesBackend, version: string): readonly string[] {
  return backend === 'legacy' && compareVersions(version, '1.6.2') >= 0 ? ['--wait=30'] : [];
}

export function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

/** Reads `<x>-save --version` output as Istio does: `nf_tables` in the text means nft, anything else legacy. */
export function parseSaveVersion(text: string): { backend: IptablesBackend; version: string } | undefined {
  const version = /v([0-9]+(\.[0-9]+)+)/.exec(text)?.[1];
  if (version === undefined) return undefined;
  return { backend: text.includes('nf_tables') ? 'nft' : 'legacy', version };
}

/**
 * Whether an `<x>-save` dump holds a rule. Istio counts 3 lines instead, but an empty table prints more than that,
 * and the usability probe itself leaves one behind (its nat table, once the probe rule is deleted again): by
 * Istio's count a second run in the same namespace would switch to legacy while the rules it applied live in nft.
 */
export function hasExistingRules(saveOutput: string): boolean {
  return /^-A /m.test(saveOutput);
}

type Probe =
  { usable: true; binary: IptablesBinary; existingRules: boolean } | { usable: false; reason: string };

/**
 * Istio's `shouldUseBinaryForCurrentContext`: `<command>-save` must run, its `--version` gives backend and version,
 * and a rule that matches nothing (protocol 255) must be accepted in nat INPUT; it is deleted again at once.
 */
export async function probeBinary(family: IpFamily, command: string, run: CommandRunner): Promise<Probe> {
  const save = `${command}-save`;
  const dump = await run(save, []);
  if (dump.exitCode !== 0) {
    return { usable: false, reason: `${save} failed (exit ${dump.exitCode}): ${dump.stderr.trim()}` };
  }
  const versionRun = await run(save, ['--version']);
  const detected = (versionRun.exitCode === 0 && parseSaveVersion(versionRun.stdout + versionRun.stderr)) || {
    backend: 'legacy' as const,
    version: '0.0.0',
  };
  const lockArgs = lockArgsFor(detected.backend, detected.version);
  const testRule = ['-t', 'nat', '-A', 'INPUT', '-p', '255', '-j', 'RETURN'];
  const added = await run(command, [...testRule, ...lockArgs]);
  if (added.exitCode !== 0 || added.stderr.includes('does not exist')) {
    return {
      usable: false,
      reason: `${describeCommand(command, testRule)} failed (exit ${added.exitCode}): ${added.stderr.trim()}`,
    };
  }
  await run(command, [...testRule.map((word) => (word === '-A' ? '-D' : word)), ...lockArgs]);
  return {
    usable: true,
    existingRules: hasExistingRules(dump.stdout + dump.stderr),
    binary: { family, command, save, restore: `${command}-restore`, ...detected, lockArgs },
  };
}

export class IptablesBinaryError extends Error {}

/**
 * Chooses the binaries for one family as Istio does: with `force` only `<x>tables-<force>`; otherwise
 * `<x>tables-legacy` if it is usable and already holds rules in this namespace, else `<x>tables-nft` if usable,
 * else plain `<x>tables`. Throws IptablesBinaryError naming every candidate tried and why it failed.
 */
export async function detectIptablesBinary(
  family: IpFamily,
  force: IptablesBackend | undefined,
  run: CommandRunner,
): Promise<IptablesBinary> {
  const base = family === 'ipv4' ? 'iptables' : 'ip6tables';
  const failures: string[] = [];
  const attempt = async (command: string, accept: (probe: { existingRules: boolean }) => boolean) => {
    const probe = await probeBinary(family, command, run);
    if (!probe.usable) failures.push(`${command}: ${probe.reason}`);
    else if (accept(probe)) return probe.binary;
    else failures.push(`${command}: usable, but holds no rules in this network namespace`);
    return undefined;
  };
  const chosen =
    force !== undefined
      ? await attempt(`${base}-${force}`, () => true)
      : ((await attempt(`${base}-legacy`, (probe) => probe.existingRules)) ??
        (await attempt(`${base}-nft`, () => true)) ??
        (await attempt(base, () => true)));
  if (chosen !== undefined) return chosen;
  const how = force === undefined ? '' : ` (FORCE_IPTABLES_BINARY=${force})`;
  throw new IptablesBinaryError(
    `no usable ${base} binary for ${family}${how}:\n  ${failures.join('\n  ')}\n` +
      `fix: install iptables (Debian's "iptables" package provides both backends)` +
      (force === undefined ? '' : ` or unset FORCE_IPTABLES_BINARY`),
  );
}
