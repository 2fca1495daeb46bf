/**
 * Which iptables binaries to run, chosen as Istio's `DetectIptablesVersion` does, separately per IP family.
 */
import { describeCommand, type CommandResult, type CommandRunner } from './command.js';

export type IpFamily = 'ipv4' | 'ipv6';
export type IptablesBackend = 'legacy' | 'nft';

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

/** The chosen binaries, and the rules `<command>-save` printed before the probe. */
export interface Detection {
  binary: IptablesBinary;
  /**
   * The save output read before the probe: the rules as they are now, but for an empty nat table the probe may
   * have created, which no decision depends on.
   */
  saved: string;
}

type Probe = { usable: true; detection: Detection } | { usable: false; reason: string };

function saveFailure(save: string, dump: CommandResult): string {
  return `${save} failed (exit ${dump.exitCode}): ${dump.stderr.trim()}`;
}

/** What the probe writes: Istio's test rule, which matches nothing (protocol 255), added and deleted again. */
const TEST_RULE = '-p 255 -j RETURN';
export const PROBE_INPUT = `*nat\n-A INPUT ${TEST_RULE}\n-D INPUT ${TEST_RULE}\nCOMMIT\n`;

/** A binary's two reads, `<command>-save` and `<command>-save --version`, started at once. */
export interface SaveReads {
  dump: Promise<CommandResult>;
  version: Promise<CommandResult>;
}

export function startSaveReads(command: string, run: CommandRunner): SaveReads {
  const save = `${command}-save`;
  return { dump: run(save, []), version: run(save, ['--version']) };
}

/**
 * Istio's `shouldUseBinaryForCurrentContext`: `<command>-save` must run, its `--version` gives backend and version,
 * and the kernel must take a rule that matches nothing (protocol 255) in nat INPUT. Istio adds the rule with
 * `<command> -A` and deletes it with `-D`; here both are one `<command>-restore --noflush` transaction, one process
 * instead of two, which leaves the rules as they were even when it fails half way.
 */
export async function probeBinary(
  family: IpFamily,
  command: string,
  run: CommandRunner,
  reads: SaveReads = startSaveReads(command, run),
): Promise<Probe> {
  const save = `${command}-save`;
  const [dump, versionRun] = await Promise.all([reads.dump, reads.version]);
  if (dump.exitCode !== 0) return { usable: false, reason: saveFailure(save, dump) };
  const detected = (versionRun.exitCode === 0 && parseSaveVersion(versionRun.stdout + versionRun.stderr)) || {
    backend: 'legacy' as const,
    version: '0.0.0',
  };
  const lockArgs = lockArgsFor(detected.backend, detected.version);
  const restore = `${command}-restore`;
  const probeArgs = ['--noflush', ...lockArgs];
  const probe = await run(restore, probeArgs, { input: PROBE_INPUT });
  if (probe.exitCode !== 0 || probe.stderr.includes('does not exist')) {
    return {
      usable: false,
      reason:
        `${describeCommand(restore, probeArgs)} of the test rule "${TEST_RULE}" in nat INPUT failed ` +
        `(exit ${probe.exitCode}): ${probe.stderr.trim()}`,
    };
  }
  const binary = { family, command, save, restore, ...detected, lockArgs };
  return { usable: true, detection: { binary, saved: dump.stdout } };
}

export class IptablesBinaryError extends Error {}

/**
 * Chooses the binaries for one family as Istio does: with `force` only `<x>tables-<force>`; otherwise
 * `<x>tables-legacy` if it is usable and already holds rules in this namespace, else `<x>tables-nft` if usable,
 * else plain `<x>tables`. Legacy's save output decides first: when it holds no rules, legacy cannot be chosen
 * whatever the rest of its probe says, so the rest is not run. Nft's two reads start together with legacy's, since
 * reading changes nothing and nft is the usual answer. Throws IptablesBinaryError naming every candidate tried and
 * why it failed.
 */
export async function detectIptablesBinary(
  family: IpFamily,
  force: IptablesBackend | undefined,
  run: CommandRunner,
): Promise<Detection> {
  const base = family === 'ipv4' ? 'iptables' : 'ip6tables';
  const failures: string[] = [];
  const usable = async (command: string, reads?: SaveReads): Promise<Detection | undefined> => {
    const probe = await probeBinary(family, command, run, reads);
    if (probe.usable) return probe.detection;
    failures.push(`${command}: ${probe.reason}`);
    return undefined;
  };
  const legacyHoldingRules = async (legacy: string): Promise<Detection | undefined> => {
    const dump = await run(`${legacy}-save`, []);
    const version = () => run(`${legacy}-save`, ['--version']);
    if (dump.exitCode === 0 && hasExistingRules(dump.stdout + dump.stderr))
      return usable(legacy, { dump: Promise.resolve(dump), version: version() });
    const why =
      dump.exitCode === 0 ? 'holds no rules in this network namespace' : saveFailure(`${legacy}-save`, dump);
    failures.push(`${legacy}: ${why}`);
    return undefined;
  };
  let chosen: Detection | undefined;
  if (force !== undefined) {
    chosen = await usable(`${base}-${force}`);
  } else {
    const legacy = legacyHoldingRules(`${base}-legacy`);
    const nftReads = startSaveReads(`${base}-nft`, run);
    chosen = (await legacy) ?? (await usable(`${base}-nft`, nftReads)) ?? (await usable(base));
    // Read but not needed when legacy was chosen; settled so that no failure goes unhandled.
    await Promise.allSettled([nftReads.dump, nftReads.version]);
  }
  if (chosen !== undefined) return chosen;
  const how = force === undefined ? '' : ` (FORCE_IPTABLES_BINARY=${force})`;
  throw new IptablesBinaryError(
    `no usable ${base} binary for ${family}${how}:\n  ${failures.join('\n  ')}\n` +
      `fix: install iptables (Debian's "iptables" package provides both backends)` +
      (force === undefined ? '' : ` or unset FORCE_IPTABLES_BINARY`),
  );
}
