/**
 * The `mesh-iptables` program (init/main.ts runs it), a drop-in for Istio's istio-iptables: reads the flags and
 * environment, validates everything, builds Istio's rules and hands them to the apply step. Stdout carries only
 * the iptables-restore input of a dry run (IPv4, then IPv6), the help and the version; the log goes to stderr,
 * plain text as istio-iptables prints it (or JSON lines with --log_as_json), then a one-line summary.
 *
 * Exit codes, as istio-iptables': 0 done, 1 invalid flags or environment variables (nothing was changed), or the
 * environment or the apply failed.
 */
import { writeFileSync } from 'node:fs';
import type { CaptureOptions, CaptureOutcome } from './apply.js';
import type { CaptureConfig, IpRanges, RunSettings } from './config.js';
import type { Host } from './environment.js';
import { describeProblem, parseSettings, usage, type Environment, type Problem } from './flags.js';
import { createLog, type Log } from './log.js';
import { resolveConfig } from './resolve-config.js';
import { buildRules, renderRules, type CaptureRules, type RestoreTexts } from './rules.js';
import { versionText } from './version.js';

export interface ProgramIo {
  stdout: (text: string) => void;
  /** Human-readable lines (summary, problems) and the log. */
  stderr: (text: string) => void;
  host: Host;
}

export async function runProgram(argv: readonly string[], env: Environment, io: ProgramIo): Promise<number> {
  const parsed = parseSettings(argv, env);
  if (!parsed.ok) return reportProblems(parsed.problems, io);
  const { settings } = parsed;
  if (settings.help) {
    io.stdout(`${usage()}\n`);
    return 0;
  }
  if (settings.version) {
    io.stdout(`${versionText()}\n`);
    return 0;
  }
  const log = createLog({ format: settings.run.logFormat, level: settings.run.logLevel, write: io.stderr });

  const resolved = resolveConfig(settings, io.host);
  if (!resolved.ok) return reportProblems(resolved.problems, io);
  const { config } = resolved;
  for (const note of resolved.notes) log.warn(note);
  log.info({ config: effectiveConfiguration(config, settings.run) }, 'effective configuration');

  const rules = buildRules(config);
  const texts = renderRules(rules);
  log.info({ family: 'ipv4', input: texts.ipv4 }, 'iptables-restore input');
  if (texts.ipv6 !== undefined) log.info({ family: 'ipv6', input: texts.ipv6 }, 'iptables-restore input');

  if (settings.run.dryRun && settings.run.cleanupOnly) {
    // What cleanup removes depends on the rules in place, which a dry run does not read: nothing to print.
    log.info({ applied: false }, 'final state: dry run of --cleanup-only, nothing changed');
    io.stderr(
      `mesh-iptables: dry run: --cleanup-only would remove every ISTIO_* chain, every jump into one and this ` +
        `configuration's rules in built-in chains (${families(texts)}); nothing changed\n`,
    );
    return 0;
  }
  if (settings.run.dryRun) {
    io.stdout(texts.ipv4 + (texts.ipv6 ?? ''));
    if (settings.run.dryRunFilePath !== undefined)
      writeFileSync(settings.run.dryRunFilePath, goldenTranscript(texts));
    log.info({ applied: false }, 'final state: dry run, nothing changed');
    return 0;
  }
  if (settings.run.skipRuleApply) {
    log.info({ applied: false }, 'final state: --skip-rule-apply, nothing changed');
    io.stderr(`mesh-iptables: rules built for ${families(texts)}, not applied (--skip-rule-apply)\n`);
    return 0;
  }
  return applyOrCleanup(config, settings.run, rules, texts, log, io);
}

async function applyOrCleanup(
  config: CaptureConfig,
  run: RunSettings,
  desired: CaptureRules,
  texts: RestoreTexts,
  log: Log,
  io: ProgramIo,
): Promise<number> {
  // Loaded only here, so a dry run needs none of the apply step's code.
  const [apply, { configureRoutes }] = await Promise.all([import('./apply.js'), import('./routes.js')]);
  const options: CaptureOptions = { reconcile: run.reconcile, forceApply: run.forceApply, logger: log };
  if (run.forceIptablesBinary !== undefined) options.forceBinary = run.forceIptablesBinary;
  try {
    if (run.cleanupOnly) {
      await apply.cleanupCapture(desired, options);
      log.info({ cleanedUp: true }, 'final state: capture rules removed');
      io.stderr(`mesh-iptables: removed the capture rules of this configuration (${families(texts)})\n`);
      return 0;
    }
    let routes: string[][] = [];
    // The routes are part of the transaction: if they fail, the rules are rolled back.
    options.lastStep = async () => {
      routes = await configureRoutes(config);
    };
    const outcome = await apply.applyCapture(desired, options);
    log.info(
      { outcome, routes: routes.map((args) => `ip ${args.join(' ')}`) },
      `final state: ${outcome.kind}`,
    );
    io.stderr(`mesh-iptables: ${summarize(outcome, config, texts)}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof apply.CaptureError)) throw error;
    log.error({ err: error }, 'final state: failed');
    io.stderr(`mesh-iptables: ${error.message}\n`);
    return 1;
  }
}

function summarize(outcome: CaptureOutcome, config: CaptureConfig, texts: RestoreTexts): string {
  const what = `${config.interceptionMode === 'TPROXY' ? 'TPROXY' : 'REDIRECT'} capture rules (${families(texts)})`;
  switch (outcome.kind) {
    case 'applied':
      return `applied ${what}`;
    case 'unchanged':
      return `${what} already in place, nothing changed`;
    case 'replaced':
      return `replaced differing ISTIO_* rules with ${what}`;
  }
}

function families(texts: RestoreTexts): string {
  return texts.ipv6 === undefined ? 'IPv4' : 'IPv4 and IPv6';
}

/** The configuration as one flat record: a value per line in the text log, each as the flags write it. */
export function effectiveConfiguration(
  config: CaptureConfig,
  run: RunSettings,
): Record<string, string | number | boolean> {
  const ranges = (value: IpRanges) => (value.wildcard ? '*' : [...value.ipv4, ...value.ipv6].join(','));
  const list = (value: '*' | readonly string[]) => (typeof value === 'string' ? value : value.join(','));
  const { outboundIpRangesInclude, outboundIpRangesExclude, dnsServers, ...rest } = config;
  const flat: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(rest)) flat[key] = Array.isArray(value) ? list(value) : value;
  return {
    ...flat,
    outboundIpRangesInclude: ranges(outboundIpRangesInclude),
    outboundIpRangesExclude: ranges(outboundIpRangesExclude),
    dnsServers: [...dnsServers.ipv4, ...dnsServers.ipv6].join(','),
    ...Object.fromEntries(Object.entries(run).map(([key, value]) => [key, value as string | boolean])),
  };
}

/** Istio exits 1 for every configuration error; so does mesh-iptables, as a drop-in. */
function reportProblems(problems: readonly Problem[], io: ProgramIo): number {
  const lines = problems.map((problem) => `  - ${describeProblem(problem)}`);
  io.stderr(`mesh-iptables: invalid configuration, nothing was changed:\n${lines.join('\n')}\n`);
  return 1;
}

/** Istio's dry-run transcript (its golden-file format): the save calls around the restore input lines. */
export function goldenTranscript(texts: RestoreTexts): string {
  const restoreLines = (texts.ipv4 + (texts.ipv6 ?? '')).split('\n').filter((line) => line !== '');
  const finalSaves = texts.ipv6 === undefined ? ['iptables-save'] : ['iptables-save', 'ip6tables-save'];
  return [...['iptables-save', 'ip6tables-save'], ...restoreLines, ...finalSaves].join('\n') + '\n';
}
