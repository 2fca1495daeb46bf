/**
 * Applies the capture rules to the kernel, all or nothing: one `<x>tables-restore --noflush` per family, a re-run
 * with the same rules changes nothing, different rules are replaced in one transaction per table, and when any
 * part fails every family goes back to how it was before the run.
 */
import {
  describeCommand,
  oneXtablesLockHolderAtATime,
  runCommand,
  type CommandResult,
  type CommandRunner,
} from './command.js';
import {
  detectIptablesBinary,
  IptablesBinaryError,
  PROBE_LINES,
  probeFailure,
  procLegacyTableNames,
  runProbe,
  withProbe,
  type Detection,
  type IpFamily,
  type IptablesBinary,
  type LegacyTableNames,
} from './iptables-binary.js';
import type { Log } from './log.js';
import {
  builtInRulesWithoutJump,
  captureDifferences,
  describeCapture,
  hasCapture,
  rulesToVerify,
  unconfiguredInterfaceReturns,
} from './capture-compare.js';
import { renderCleanup, renderReplace, renderRollback } from './capture-edit.js';
import {
  beforeFreshApply,
  hadCaptureBefore,
  qualifiesForFreshApply,
  saveHeaderVersion,
} from './fresh-apply.js';
import { parseIptablesSave } from './iptables-save.js';
import { renderRestoreText, tableAtLine } from './restore-text.js';
import { ruleLine, specArguments, type IptablesState, type Rule, type TableRule } from './ruleset.js';

export type { IpFamily } from './iptables-binary.js';

/** The configured rules per family; `ipv6` absent means IPv6 is off and its rules are not touched. */
export interface DesiredCapture {
  ipv4: IptablesState;
  ipv6?: IptablesState;
}

export interface CaptureOptions {
  /** FORCE_IPTABLES_BINARY: use only `<x>tables-legacy` or `<x>tables-nft`. */
  forceBinary?: 'legacy' | 'nft';
  /** Replace capture rules that differ from the configured ones (on by default in mesh-iptables). */
  reconcile: boolean;
  /** Apply even when the configured rules are already in place (Istio's --force-apply). */
  forceApply: boolean;
  logger: Log;
  /** How commands are run: the real runner unless given. */
  run?: CommandRunner;
  /**
   * The legacy tables of the namespace the commands run in. Unless given: this process's /proc when `run` is not
   * given either (the commands run here), else none known, and `<x>tables-legacy-save` is asked.
   */
  legacyTableNames?: LegacyTableNames;
  /**
   * The last step of the same transaction, run once the rules are in place (mesh-iptables: the pod's routes). When
   * it throws, the rules are rolled back, and the CaptureError carries its message and says what was undone.
   */
  lastStep?: () => Promise<void>;
}

export type CaptureOutcome =
  { kind: 'applied' } | { kind: 'unchanged' } | { kind: 'replaced'; previous: string };

/** Applying or removing the capture rules failed; the message says where, why, and what the kernel holds now. */
export class CaptureError extends Error {
  override name = 'CaptureError';
}

/** One configured family, with its binaries and its rules as they were before this run. */
interface Family {
  family: IpFamily;
  binary: IptablesBinary;
  desired: IptablesState;
  desiredText: string;
  before: IptablesState;
  /**
   * Set while the binary is chosen only provisionally: Istio's probe still has to pass, and leads the family's first
   * restore (Detection.probeFailed).
   */
  probeFailed?: (reason: string) => Promise<Detection>;
}

/**
 * The kernel refused a provisionally chosen binary's probe; every family this run changed was rolled back. Istio
 * would have chosen another binary before changing anything: the run starts again with it.
 */
class ProbeFailed extends Error {
  constructor(
    readonly family: Family,
    readonly reason: string,
  ) {
    super(`${family.family}: ${reason}`);
  }
}

type Plan =
  | { kind: 'unchanged' }
  /** The configured text as it is: a first apply, or Istio's attempt when reconcile is off. */
  | { kind: 'apply'; text: string; hint?: string }
  | { kind: 'replace'; text: string };

/**
 * Applies `desired`. Throws CaptureError when it cannot; by then every family holds again what it held before
 * (or the error says exactly what remains, if rolling back failed too).
 */
export async function applyCapture(
  desired: DesiredCapture,
  options: CaptureOptions,
): Promise<CaptureOutcome> {
  const run = oneXtablesLockHolderAtATime(options.run ?? runCommand);
  const log = options.logger;
  const fresh = await applyFresh(desired, options, run);
  if (fresh !== undefined) return fresh;
  const families: Family[] = [];
  /** Families whose provisional binary failed its probe, with the binary chosen instead. */
  const rechosen = new Map<IpFamily, Promise<Detection>>();
  try {
    for (;;) {
      families.length = 0;
      await prepareFamilies(desired, options, run, families, { deferProbe: true, rechosen });
      try {
        return await applyPrepared(families, options, run);
      } catch (error) {
        if (!(error instanceof ProbeFailed) || error.family.probeFailed === undefined) throw error;
        log.warn(
          { family: error.family.family, reason: error.reason },
          'iptables binary unusable; choosing again',
        );
        rechosen.set(error.family.family, error.family.probeFailed(error.reason));
      }
    }
  } finally {
    await logFinalState(families, run, log);
  }
}

async function applyPrepared(
  families: readonly Family[],
  options: CaptureOptions,
  run: CommandRunner,
): Promise<CaptureOutcome> {
  const log = options.logger;
  const plans: [Family, Plan][] = [];
  for (const family of families) plans.push([family, await planFamily(family, options, run)]);
  for (const [family, plan] of plans) {
    // Nothing to restore, so nothing for the probe to lead: it runs on its own, before anything is changed.
    if (plan.kind === 'unchanged' && family.probeFailed !== undefined) {
      const failure = await runProbe(family.binary, run);
      if (failure !== undefined) throw new ProbeFailed(family, failure);
      delete family.probeFailed;
    }
  }

  const touched: Family[] = [];
  for (const [family, plan] of plans) {
    if (plan.kind === 'unchanged') continue;
    touched.push(family);
    const restored = await restoreProbing(family, plan.text, run, log);
    if (restored.kind === 'probe failed') {
      const undone = await rollBack(touched, run, log);
      if (!undone.ok) throw new CaptureError(`${family.family}: ${restored.reason}\n${undone.sentence}`);
      throw new ProbeFailed(family, restored.reason);
    }
    const { result } = restored;
    if (result.exitCode !== 0) {
      const failure = describeRestoreFailure(
        family,
        plan.text,
        result,
        plan.kind === 'apply' ? plan.hint : '',
      );
      log.error({ family: family.family, failure }, 'applying the capture rules failed; rolling back');
      throw new CaptureError(`${failure}\n${(await rollBack(touched, run, log)).sentence}`);
    }
  }
  await runLastStep(options, log, async () => (await rollBack(touched, run, log)).sentence);

  if (plans.every(([, plan]) => plan.kind === 'unchanged')) return { kind: 'unchanged' };
  if (plans.some(([, plan]) => plan.kind === 'replace')) {
    const previous = plans
      .filter(([family]) => hasCapture(family.before))
      .map(([family]) => `${family.family}:\n${describeCapture(family.before)}`)
      .join('\n');
    return { kind: 'replaced', previous };
  }
  return { kind: 'applied' };
}

/** A family of a fresh apply: its rules before the run are known only from the save after it. */
type FreshFamily = Omit<Family, 'before'>;

/**
 * A pod's first run, which is every pod's: when nothing in the namespace can change what Istio chooses — no legacy
 * table (so legacy cannot be chosen, /proc says without a process), and a configuration that `qualifiesForFreshApply`
 * — the configured rules go straight to `<x>tables-nft-restore --noflush`, led by Istio's probe, one transaction
 * per family. Its `-N` lines fail if a configured chain exists, and then nothing changed. What Istio reads before
 * applying is read from the final save instead, which is logged anyway: the backend and version from its header,
 * and the rules before the run, which are the rules after it without the configured chains and the jumps into
 * them. If those held capture rules of another configuration, Istio would have replaced them: the run is undone
 * and the full path does that. Two processes per family: the restore and the save.
 *
 * Returns the outcome, or undefined when the full path must run (with nothing of this run left in place). Throws
 * CaptureError when the routes fail (rolled back) or undoing fails.
 */
async function applyFresh(
  desired: DesiredCapture,
  options: CaptureOptions,
  run: CommandRunner,
): Promise<CaptureOutcome | undefined> {
  const log = options.logger;
  const legacyTables =
    options.legacyTableNames ?? (options.run === undefined ? procLegacyTableNames : undefined);
  const configured = configuredFamilies(desired);
  const qualifies =
    options.forceBinary !== 'legacy' &&
    legacyTables !== undefined &&
    configured.every(
      ([family, state]) => legacyTables(family)?.length === 0 && qualifiesForFreshApply(state),
    );
  if (!qualifies) return undefined;

  const families: FreshFamily[] = configured.map(([family, state]) => {
    const command = `${family === 'ipv4' ? 'iptables' : 'ip6tables'}-nft`;
    const binary: IptablesBinary = {
      family,
      command,
      save: `${command}-save`,
      restore: `${command}-restore`,
      backend: 'nft',
      version: 'unknown',
      lockArgs: [],
    };
    return { family, binary, desired: state, desiredText: renderRestoreText(state) };
  });
  try {
    return await applyFreshFamilies(families, options, run);
  } catch (error) {
    // Failed for good (the routes, or undoing): the final state is logged as on the full path.
    if (error instanceof CaptureError) await logFinalState(families, run, log);
    throw error;
  }
}

async function applyFreshFamilies(
  families: readonly FreshFamily[],
  options: CaptureOptions,
  run: CommandRunner,
): Promise<CaptureOutcome | undefined> {
  const log = options.logger;
  const applied: FreshFamily[] = [];
  for (const family of families) {
    log.info(
      { family: family.family, binary: family.binary.command, backend: 'nft' },
      'iptables binary selected provisionally (no legacy table in this network namespace); the probe leads the restore',
    );
    const result = await restore(family, withProbe(family.desiredText), run, log);
    if (result.exitCode === 0) applied.push(family);
    if (result.exitCode !== 0 || probeFailure(family.binary, result) !== undefined) {
      log.info(
        { family: family.family, exitCode: result.exitCode, stderr: result.stderr.trim() },
        'the rules did not go straight in; reading the rules in place first',
      );
      await undoFresh(applied, run, log, `${family.family}: ${result.stderr.trim()}`);
      return undefined;
    }
  }
  await runLastStep(options, log, () => undoFresh(applied, run, log));
  const saves = await Promise.all(applied.map((family) => run(family.binary.save, [])));
  const afters = saves.map((save, index) =>
    save.exitCode === 0 ? parseIptablesSave(save.stdout, `${applied[index]?.binary.save} output`) : undefined,
  );
  const stale = applied.some((family, index) => {
    const after = afters[index];
    return after === undefined || hadCaptureBefore(after, family.desired);
  });
  if (stale) {
    log.info('capture rules of another configuration were in place, or the rules could not be read; undoing');
    await undoFresh(applied, run, log, 'capture rules of another configuration were in place');
    return undefined;
  }
  applied.forEach((family, index) => {
    const save = saves[index];
    const detected = saveHeaderVersion(save?.stdout ?? '');
    log.child({ family: family.family }).info('no capture rules were in place; applied');
    log.info(
      {
        family: family.family,
        rules: save?.stdout.trimEnd(),
        exitCode: save?.exitCode,
        backend: detected?.backend,
        version: detected?.version,
      },
      'iptables state at exit',
    );
  });
  return { kind: 'applied' };
}

/** Runs the step after the rules (the routes), if any; when it fails, `undo` puts the rules back and says how. */
async function runLastStep(options: CaptureOptions, log: Log, undo: () => Promise<string>): Promise<void> {
  if (options.lastStep === undefined) return;
  try {
    await options.lastStep();
  } catch (error) {
    const failure = error instanceof Error ? error.message : String(error);
    log.error({ failure }, 'the last step after the capture rules failed; rolling back');
    throw new CaptureError(`${failure}\n${await undo()}`, { cause: error });
  }
}

/**
 * Undoes a fresh apply's families, with the rules before the run read back from a save (`beforeFreshApply`).
 * With `fallingBack` (the full path follows) throws CaptureError unless it is undone; returns rollBack's sentence.
 */
async function undoFresh(
  applied: readonly FreshFamily[],
  run: CommandRunner,
  log: Log,
  fallingBack?: string,
): Promise<string> {
  const families: Family[] = [];
  let undone: { ok: boolean; sentence: string };
  try {
    for (const family of applied) {
      const after = await readState(family.binary, run);
      families.push({ ...family, before: beforeFreshApply(after, family.desired) });
    }
    undone = await rollBack(families, run, log);
  } catch (error) {
    undone = {
      ok: false,
      sentence: `Rolling back failed, so the run is NOT undone:\n${(error as Error).message}`,
    };
  }
  if (fallingBack !== undefined && !undone.ok) throw new CaptureError(`${fallingBack}\n${undone.sentence}`);
  return undone.sentence;
}

/**
 * Logs every prepared family's rules as `<x>tables-save` prints them, as Istio does when it exits, whatever the
 * outcome. Failing to read them is logged too, and changes nothing about the outcome.
 */
async function logFinalState(
  families: readonly Pick<Family, 'family' | 'binary'>[],
  run: CommandRunner,
  log: Log,
): Promise<void> {
  const finals = await Promise.allSettled(families.map((family) => run(family.binary.save, [])));
  families.forEach((family, index) => {
    const final = finals[index];
    if (final?.status === 'fulfilled') {
      log.info(
        { family: family.family, rules: final.value.stdout.trimEnd(), exitCode: final.value.exitCode },
        'iptables state at exit',
      );
    } else {
      log.error({ family: family.family, err: final?.reason }, 'could not read the iptables state at exit');
    }
  });
}

/**
 * Removes everything the configuration adds in each configured family: every ISTIO_* chain, in every table,
 * every rule in a built-in chain that jumps into one, and the configured rules in built-in chains that are
 * present. One transaction per table; nothing else is touched.
 */
export async function cleanupCapture(desired: DesiredCapture, options: CaptureOptions): Promise<void> {
  const run = oneXtablesLockHolderAtATime(options.run ?? runCommand);
  const log = options.logger;
  const families: Family[] = [];
  try {
    await prepareFamilies(desired, options, run, families);
    const cleaned: IpFamily[] = [];
    for (const family of families) {
      const present = await presentRules(family, builtInRulesWithoutJump(family.desired), run);
      const text = renderCleanup(family.before, present);
      if (text === '') {
        log.info({ family: family.family }, 'no capture rules to remove');
        continue;
      }
      const result = await restore(family, text, run, log);
      if (result.exitCode !== 0) {
        const now = await readState(family.binary, run);
        const earlier =
          cleaned.length === 0
            ? ''
            : `\nThe ${cleaned.join(' and ')} capture rules were removed before this failure.`;
        throw new CaptureError(
          `${describeRestoreFailure(family, text, result)}\n` +
            `Removing the capture rules failed; the ${family.family} capture rules that remain:\n${describeCapture(now)}` +
            earlier,
        );
      }
      cleaned.push(family.family);
    }
  } finally {
    await logFinalState(families, run, log);
  }
}

function configuredFamilies(desired: DesiredCapture): [IpFamily, IptablesState][] {
  return desired.ipv6 === undefined
    ? [['ipv4', desired.ipv4]]
    : [
        ['ipv4', desired.ipv4],
        ['ipv6', desired.ipv6],
      ];
}

/**
 * Renders the configured rules, detects every family's binaries and reads its rules before anything is changed,
 * the families at the same time. Each family goes into `families` once its binaries are known and its rules read,
 * in order, so the caller can log the state of those even when a later family fails.
 */
async function prepareFamilies(
  desired: DesiredCapture,
  options: CaptureOptions,
  run: CommandRunner,
  families: Family[],
  {
    deferProbe = false,
    rechosen = new Map(),
  }: { deferProbe?: boolean; rechosen?: ReadonlyMap<IpFamily, Promise<Detection>> } = {},
): Promise<void> {
  const parsed = configuredFamilies(desired).map(([family, state]) => ({
    family,
    state,
    text: renderRestoreText(state),
  }));
  const legacyTables =
    options.legacyTableNames ?? (options.run === undefined ? procLegacyTableNames : undefined);
  const prepared = parsed.map((configured) => {
    const detection =
      rechosen.get(configured.family) ??
      detectIptablesBinary(configured.family, options.forceBinary, run, { legacyTables, deferProbe });
    // The detection read the rules already; parsing them is all that is left.
    const before = detection.then(({ binary, saved }) => parseIptablesSave(saved, `${binary.save} output`));
    return { ...configured, detection, before };
  });
  await Promise.allSettled(prepared.flatMap(({ detection, before }) => [detection, before]));
  for (const { family, text, state, detection, before } of prepared) {
    let binary: IptablesBinary;
    let probeFailed: Family['probeFailed'];
    try {
      ({ binary, probeFailed } = await detection);
    } catch (error) {
      if (error instanceof IptablesBinaryError)
        throw new CaptureError(`${error.message}\nNothing was changed.`);
      throw error;
    }
    options.logger.info(
      { family, binary: binary.command, backend: binary.backend, version: binary.version },
      'iptables binary selected',
    );
    const prepared: Family = { family, binary, desired: state, desiredText: text, before: await before };
    if (probeFailed !== undefined) prepared.probeFailed = probeFailed;
    families.push(prepared);
  }
}

async function readState(binary: IptablesBinary, run: CommandRunner): Promise<IptablesState> {
  const result = await run(binary.save, []);
  if (result.exitCode !== 0) {
    throw new CaptureError(
      `${binary.family}: ${binary.save} failed (exit ${result.exitCode}): ${result.stderr.trim()}`,
    );
  }
  return parseIptablesSave(result.stdout, `${binary.save} output`);
}

/**
 * Decides what a family needs, as Istio's `VerifyIptablesState` and `executeCommands` decide it: no capture rules
 * in place → apply; the configured ones in place → nothing (unless forceApply); others in place → replace them
 * (reconcile), or apply over them as Istio does without --reconcile, which fails on the existing chains. With
 * forceApply and reconcile, rules already in place are rewritten by the replace transaction; without reconcile,
 * forceApply fails on the existing chains, as Istio's does.
 */
async function planFamily(family: Family, options: CaptureOptions, run: CommandRunner): Promise<Plan> {
  const log = options.logger.child({ family: family.family });
  if (!hasCapture(family.before)) {
    log.info('no capture rules in place; applying');
    return { kind: 'apply', text: family.desiredText };
  }
  const differences = await verify(family, run);
  if (differences.length === 0 && !options.forceApply) {
    log.info('the configured capture rules are already in place; nothing to do');
    return { kind: 'unchanged' };
  }
  if (!options.reconcile) {
    log.warn(
      { differences },
      'reconcile is recommended but no-reconcile flag is set; applying over the capture rules in place',
    );
    return {
      kind: 'apply',
      text: family.desiredText,
      hint:
        `\nOther capture rules were in place (${differences.join('; ')}) and reconcile is off, so the run ` +
        `failed as Istio's does; fix: run with reconcile on to replace them.`,
    };
  }
  log.info({ differences, previous: describeCapture(family.before) }, 'replacing the capture rules in place');
  // What a replace removes outside the ISTIO_* chains: the jumps into them, TPROXY's mangle rules (shapes only
  // istio-iptables writes) and this configuration's own rules. A different earlier configuration's interface
  // exclusions (`-i eth1 -j RETURN`, from -c/-k) look like anyone's rule, so they stay and are only reported; such
  // leftovers arise only when a pod's init container re-runs with other arguments (an upgrade or a manual run).
  const unconfigured = unconfiguredInterfaceReturns(family.before, family.desired);
  if (unconfigured.length > 0) {
    log.warn(
      { rules: unconfigured.map((rule) => `-t ${rule.table} ${ruleLine(rule)}`) },
      'interface RETURN rules not in this configuration are left in place; they may be an earlier ' +
        "configuration's (-c/-k) and exempt that interface from capture; remove them by hand if so",
    );
  }
  const present = await presentRules(family, builtInRulesWithoutJump(family.desired), run);
  return { kind: 'replace', text: renderReplace(family.before, family.desired, present) };
}

/** What differs between the rules in place and the configured ones; empty when they are the same. */
async function verify(family: Family, run: CommandRunner): Promise<string[]> {
  const differences = captureDifferences(family.before, family.desired);
  if (differences.length > 0) return differences;
  const expected = rulesToVerify(family.desired);
  const present = await presentRules(family, expected, run);
  return expected
    .filter((rule) => !present.includes(rule))
    .map((rule) => `${rule.table}: rule "${ruleLine(rule)}" is missing`);
}

/**
 * Which of `rules` the kernel holds, position ignored: those the rules before this run list with the same text
 * are there; the kernel is asked about the others with `<x>tables -t TABLE -C CHAIN spec`, since iptables-save
 * prints many rules differently from how they were written (`-m tcp` added, options reordered).
 */
async function presentRules(
  family: Family,
  rules: readonly TableRule[],
  run: CommandRunner,
): Promise<TableRule[]> {
  const key = (table: string, rule: Rule) => `${table} ${rule.chain} ${rule.spec}`;
  const saved = new Set(
    family.before.tables.flatMap((table) => table.rules.map((rule) => key(table.name, rule))),
  );
  const checks = rules.map(async (rule) => {
    if (saved.has(key(rule.table, rule))) return true;
    const args = ['-t', rule.table, '-C', rule.chain, ...specArguments(rule.spec), ...family.binary.lockArgs];
    return (await run(family.binary.command, args)).exitCode === 0;
  });
  const held = await Promise.all(checks);
  return rules.filter((_, index) => held[index]);
}

async function restore(
  family: Pick<Family, 'family' | 'binary'>,
  text: string,
  run: CommandRunner,
  log: Log,
): Promise<CommandResult> {
  const args = ['--noflush', ...family.binary.lockArgs];
  log.info(
    { family: family.family, command: describeCommand(family.binary.restore, args), input: text },
    'running iptables restore',
  );
  return run(family.binary.restore, args, { input: text });
}

/**
 * A family's restore; while its binary is provisional, led by Istio's probe (one process for both). When that
 * restore fails, the probe alone tells whether the binary is unusable (the run must choose again) or the rules
 * failed. A result's line numbers are those of `text`, as if the probe had not led it.
 */
async function restoreProbing(
  family: Family,
  text: string,
  run: CommandRunner,
  log: Log,
): Promise<{ kind: 'ran'; result: RestoreResult } | { kind: 'probe failed'; reason: string }> {
  if (family.probeFailed === undefined) return { kind: 'ran', result: await restore(family, text, run, log) };
  const result = await restore(family, withProbe(text), run, log);
  if (probeFailure(family.binary, result) !== undefined) {
    const failure = await runProbe(family.binary, run);
    if (failure !== undefined) return { kind: 'probe failed', reason: failure };
  }
  delete family.probeFailed;
  return { kind: 'ran', result: { ...result, linesBefore: PROBE_LINES } };
}

/** A restore's result; `linesBefore`: how many lines the probe put ahead of the text it was given. */
type RestoreResult = CommandResult & { linesBefore?: number };

function describeRestoreFailure(family: Family, text: string, result: RestoreResult, hint = ''): string {
  // iptables-restore names the line: "line 6 failed" (legacy, nft) or "Error occurred at line: 23" (parse errors),
  // counted in its whole input, which the probe may have led.
  const inputLine = Number(/line:? (\d+)/.exec(result.stderr)?.[1] ?? 0);
  const line = inputLine - (result.linesBefore ?? 0);
  const table = tableAtLine(text, line);
  const where =
    inputLine > 0 && line <= 0
      ? ` in the backend probe ahead of the rules, at line ${inputLine} of the input`
      : table === undefined
        ? ''
        : ` in table ${table} at line ${line} ("${text.split('\n')[line - 1]}")`;
  return (
    `${family.family}: ${describeCommand(family.binary.restore, ['--noflush', ...family.binary.lockArgs])} ` +
    `failed${where} (exit ${result.exitCode}): ${result.stderr.trim() || '(no output)'}${hint}`
  );
}

/**
 * Brings every family this run changed back to its state before the run, then reads it again to be sure.
 * Returns the sentence for the error message: that the rules were rolled back, or exactly what remains.
 */
async function rollBack(
  touched: readonly Family[],
  run: CommandRunner,
  log: Log,
): Promise<{ ok: boolean; sentence: string }> {
  if (touched.length === 0)
    return { ok: true, sentence: 'The capture rules in place before this run were not changed.' };
  const failures: string[] = [];
  for (const family of touched) {
    try {
      const text = renderRollback(await readState(family.binary, run), family.before);
      if (text !== '') {
        const result = await restore(family, text, run, log);
        if (result.exitCode !== 0) failures.push(describeRestoreFailure(family, text, result));
      }
      const left = renderRollback(await readState(family.binary, run), family.before);
      if (left !== '') {
        const now = await readState(family.binary, run);
        failures.push(
          `${family.family} is not as before; its capture rules now:\n${describeCapture(now)}\n` +
            `and the restore input that would still be needed to undo the run:\n${left.trimEnd()}`,
        );
      }
    } catch (error) {
      failures.push(`${family.family}: ${(error as Error).message}`);
    }
  }
  const families = touched.map((family) => family.family).join(' and ');
  if (failures.length === 0) {
    const clean = touched.every((family) => !hasCapture(family.before));
    log.info({ families }, 'rolled back');
    return {
      ok: true,
      sentence:
        `The rules were rolled back: ${families} ${touched.length > 1 ? 'are' : 'is'} as before this run` +
        (clean ? ', with no ISTIO_* chain and no jump to one.' : '.'),
    };
  }
  log.error({ failures }, 'rolling back failed');
  return { ok: false, sentence: `Rolling back failed, so the run is NOT undone:\n${failures.join('\n')}` };
}
