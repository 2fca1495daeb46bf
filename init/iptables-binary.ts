/**
 * Which iptables binaries to run, chosen as Istio's `DetectIptablesVersion` does, separately per IP family.
 */
import { readFileSync } from 'node:fs';
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
  /**
   * Present when the probe was left to the caller (`deferProbe`): the caller sends PROBE_INPUT ahead of its first
   * restore with this binary (see `withProbe`), and if the kernel refuses the test rule, calls this with
   * `probeFailure`'s reason; it resolves to the binary Istio would have chosen instead, or throws the
   * IptablesBinaryError Istio would have failed with.
   */
  probeFailed?: (reason: string) => Promise<Detection>;
}

function saveFailure(save: string, dump: CommandResult): string {
  return `${save} failed (exit ${dump.exitCode}): ${dump.stderr.trim()}`;
}

/** What the probe writes: Istio's test rule, which matches nothing (protocol 255), added and deleted again. */
const TEST_RULE = '-p 255 -j RETURN';
export const PROBE_INPUT = `*nat\n-A INPUT ${TEST_RULE}\n-D INPUT ${TEST_RULE}\nCOMMIT\n`;
/** How many lines PROBE_INPUT puts ahead of a restore input it leads. */
export const PROBE_LINES = PROBE_INPUT.split('\n').length - 1;

/**
 * A restore input led by the probe, its own transaction (`COMMIT`) before the rules: iptables-restore stops at the
 * first transaction that fails, so when the kernel refuses the test rule nothing after it is applied.
 */
export function withProbe(text: string): string {
  return PROBE_INPUT + text;
}

/** A binary's two reads, `<command>-save` and `<command>-save --version`, started at once. */
export interface SaveReads {
  dump: Promise<CommandResult>;
  version: Promise<CommandResult>;
}

export function startSaveReads(command: string, run: CommandRunner): SaveReads {
  const save = `${command}-save`;
  return { dump: run(save, []), version: run(save, ['--version']) };
}

type Read = { ok: true; detection: Detection } | { ok: false; reason: string };

/**
 * The first part of Istio's `shouldUseBinaryForCurrentContext`: `<command>-save` must run, and its `--version`
 * gives backend and version.
 */
async function readBinary(
  family: IpFamily,
  command: string,
  run: CommandRunner,
  reads: SaveReads = startSaveReads(command, run),
): Promise<Read> {
  const save = `${command}-save`;
  const [dump, versionRun] = await Promise.all([reads.dump, reads.version]);
  if (dump.exitCode !== 0) return { ok: false, reason: saveFailure(save, dump) };
  const detected = (versionRun.exitCode === 0 && parseSaveVersion(versionRun.stdout + versionRun.stderr)) || {
    backend: 'legacy' as const,
    version: '0.0.0',
  };
  const lockArgs = lockArgsFor(detected.backend, detected.version);
  const binary = { family, command, save, restore: `${command}-restore`, ...detected, lockArgs };
  return { ok: true, detection: { binary, saved: dump.stdout } };
}

/**
 * The last part of Istio's usability test, judged from a restore whose input PROBE_INPUT led: the kernel must take
 * a rule that matches nothing (protocol 255) in nat INPUT. Undefined when it did, else why not.
 */
export function probeFailure(binary: IptablesBinary, result: CommandResult): string | undefined {
  if (result.exitCode === 0 && !result.stderr.includes('does not exist')) return undefined;
  return (
    `${describeCommand(binary.restore, ['--noflush', ...binary.lockArgs])} of the test rule "${TEST_RULE}" in ` +
    `nat INPUT failed (exit ${result.exitCode}): ${result.stderr.trim()}`
  );
}

/**
 * The probe on its own. Istio adds the rule with `<command> -A` and deletes it with `-D`; here both are one
 * `<command>-restore --noflush` transaction, one process instead of two, which leaves the rules as they were even
 * when it fails half way.
 */
export async function runProbe(binary: IptablesBinary, run: CommandRunner): Promise<string | undefined> {
  return probeFailure(
    binary,
    await run(binary.restore, ['--noflush', ...binary.lockArgs], { input: PROBE_INPUT }),
  );
}

export class IptablesBinaryError extends Error {}

/**
 * The legacy tables that exist in the network namespace the commands run in, as the kernel lists them in
 * /proc/net/ip_tables_names (ip6_tables_names): the file `<x>tables-legacy-save` itself reads first to know what to
 * dump. `[]` when the file is absent (no legacy iptables in the kernel: legacy-save prints nothing); undefined when
 * it cannot be read otherwise, and legacy-save must then be asked.
 */
export type LegacyTableNames = (family: IpFamily) => string[] | undefined;

export const LEGACY_TABLE_NAMES_FILES: Record<IpFamily, string> = {
  ipv4: '/proc/net/ip_tables_names',
  ipv6: '/proc/net/ip6_tables_names',
};

/** This process's network namespace's legacy tables: right only when commands run in this same namespace. */
export const procLegacyTableNames: LegacyTableNames = (family) => {
  try {
    return readFileSync(LEGACY_TABLE_NAMES_FILES[family], 'utf8').split('\n').filter(Boolean);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? [] : undefined;
  }
};

export interface DetectionOptions {
  /** The namespace's legacy tables; unknown when absent, and legacy-save is asked. */
  legacyTables?: LegacyTableNames;
  /**
   * Leave the probe to the caller's first restore (Detection.probeFailed), one process fewer: a candidate whose
   * reads succeed is chosen provisionally.
   */
  deferProbe?: boolean;
}

/**
 * Chooses the binaries for one family as Istio does: with `force` only `<x>tables-<force>`; otherwise
 * `<x>tables-legacy` if it is usable and already holds rules in this namespace, else `<x>tables-nft` if usable,
 * else plain `<x>tables`. Legacy's save output decides first: when it holds no rules, legacy cannot be chosen
 * whatever the rest of its probe says, so the rest is not run. When `legacyTables` says the namespace has no legacy
 * table, legacy-save would print nothing, so it is not run at all (the choice is the same, one process fewer: what a
 * fresh pod sees). Nft's two reads start together with legacy's, since reading changes nothing and nft is the usual
 * answer. Throws IptablesBinaryError naming every candidate tried and why it failed.
 */
export async function detectIptablesBinary(
  family: IpFamily,
  force: IptablesBackend | undefined,
  run: CommandRunner,
  { legacyTables, deferProbe = false }: DetectionOptions = {},
): Promise<Detection> {
  const base = family === 'ipv4' ? 'iptables' : 'ip6tables';
  const failures: string[] = [];
  /** Candidate `index` onwards: the first usable one, or the error naming every failure. */
  const chooseFrom = async (index: number): Promise<Detection> => {
    for (let i = index; i < candidates.length; i++) {
      const next = () => chooseFrom(i + 1);
      const chosen = await candidates[i]!(next);
      if (chosen !== undefined) return chosen;
    }
    const how = force === undefined ? '' : ` (FORCE_IPTABLES_BINARY=${force})`;
    throw new IptablesBinaryError(
      `no usable ${base} binary for ${family}${how}:\n  ${failures.join('\n  ')}\n` +
        `fix: install iptables (Debian's "iptables" package provides both backends)` +
        (force === undefined ? '' : ` or unset FORCE_IPTABLES_BINARY`),
    );
  };
  type Candidate = (next: () => Promise<Detection>) => Promise<Detection | undefined>;
  const usable = async (
    command: string,
    next: () => Promise<Detection>,
    reads?: SaveReads,
  ): Promise<Detection | undefined> => {
    const read = await readBinary(family, command, run, reads);
    if (!read.ok) {
      failures.push(`${command}: ${read.reason}`);
      return undefined;
    }
    const probeFailed = (reason: string) => {
      failures.push(`${command}: ${reason}`);
      return next();
    };
    if (deferProbe) return { ...read.detection, probeFailed };
    const failure = await runProbe(read.detection.binary, run);
    if (failure === undefined) return read.detection;
    failures.push(`${command}: ${failure}`);
    return undefined;
  };
  const legacyHoldingRules = async (
    legacy: string,
    next: () => Promise<Detection>,
    legacyDump: Promise<CommandResult> | undefined,
  ): Promise<Detection | undefined> => {
    if (legacyDump === undefined) {
      failures.push(
        `${legacy}: holds no rules in this network namespace (${LEGACY_TABLE_NAMES_FILES[family]} lists no table)`,
      );
      return undefined;
    }
    const dump = await legacyDump;
    const version = () => run(`${legacy}-save`, ['--version']);
    if (dump.exitCode === 0 && hasExistingRules(dump.stdout + dump.stderr))
      return usable(legacy, next, { dump: Promise.resolve(dump), version: version() });
    const why =
      dump.exitCode === 0 ? 'holds no rules in this network namespace' : saveFailure(`${legacy}-save`, dump);
    failures.push(`${legacy}: ${why}`);
    return undefined;
  };
  let candidates: Candidate[];
  if (force !== undefined) {
    candidates = [(next) => usable(`${base}-${force}`, next)];
    return chooseFrom(0);
  }
  const legacyDump = legacyTables?.(family)?.length === 0 ? undefined : run(`${base}-legacy-save`, []);
  const nftReads = startSaveReads(`${base}-nft`, run);
  candidates = [
    (next) => legacyHoldingRules(`${base}-legacy`, next, legacyDump),
    (next) => usable(`${base}-nft`, next, nftReads),
    (next) => usable(base, next),
  ];
  try {
    return await chooseFrom(0);
  } finally {
    // Read but not needed when legacy was chosen; settled so that no failure goes unhandled.
    await Promise.allSettled([nftReads.dump, nftReads.version]);
  }
}
