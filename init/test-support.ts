/**
 * Helpers for the init program's tests: a configuration from a command line (through the real parser), the lines
 * of one table of a restore text, and the configured rules of a fixture.
 */
import type { CaptureConfig } from './config.js';
import type { Host } from './environment.js';
import { describeProblem, parseSettings } from './flags.js';
import { resolveConfig } from './resolve-config.js';
import { renderRestoreText, rulesetOf } from './restore-text.js';
import type { IptablesState, TableRule } from './ruleset.js';

/** A pod described by data: its addresses, resolv.conf and passwd. */
export function fixedHost(facts: { addresses?: string[]; resolvConf?: string; passwd?: string } = {}): Host {
  return {
    addresses: () => facts.addresses ?? ['127.0.0.1', '10.1.2.3'],
    resolvConf: () => {
      if (facts.resolvConf === undefined) throw new Error('ENOENT: no such file');
      return facts.resolvConf;
    },
    passwd: () => facts.passwd ?? '',
  };
}

/** The configuration mesh-iptables runs with for these flags, on top of Istio's golden-test base flags. */
export function configFor(
  args: readonly string[],
  env: Record<string, string> = {},
  host: Host = fixedHost(),
): CaptureConfig {
  const base = ['-p', '15001', '-z', '15006', '-e', '15008', '-u', '1337', '-g', '1337', '--ipv6=false'];
  const parsed = parseSettings([...base, ...args], env);
  if (!parsed.ok) throw new Error(parsed.problems.map(describeProblem).join('\n'));
  const resolved = resolveConfig(parsed.settings, host);
  if (!resolved.ok) throw new Error(resolved.problems.map(describeProblem).join('\n'));
  return resolved.config;
}

/** The rule lines (`-A`/`-I`) of `table` in a restore text, in order. */
export function tableRules(text: string, table: string): string[] {
  const blocks = text.split(/^COMMIT\n/m);
  const block = blocks.find((candidate) => candidate.startsWith(`* ${table}\n`));
  return (block ?? '').split('\n').filter((line) => /^-[AI] /.test(line));
}

/** The `-N` lines of `table`. */
export function tableChains(text: string, table: string): string[] {
  const block = text.split(/^COMMIT\n/m).find((candidate) => candidate.startsWith(`* ${table}\n`));
  return (block ?? '').split('\n').filter((line) => line.startsWith('-N '));
}

/**
 * The configured rule model of a fixture written as Istio's restore input (`* nat`, `-N` lines, rules): its rule
 * lines grouped as the rule builder groups them. Throws unless rendering the model gives the fixture back, so a
 * fixture is always something the builder could have produced.
 */
export function configuredRules(restoreText: string): IptablesState {
  const rules: TableRule[] = [];
  let table = '';
  for (const line of restoreText.split('\n')) {
    if (line.startsWith('* ')) table = line.slice(2);
    const match = /^-([AI]) (\S+) (?:(\d+) )?(.*)$/.exec(line);
    if (match === null) continue;
    const [, command, chain = '', position, spec = ''] = match;
    rules.push({ table, chain, spec, ...(command === 'I' ? { insertAt: Number(position ?? 1) } : {}) });
  }
  const state = rulesetOf(rules);
  if (renderRestoreText(state) !== restoreText)
    throw new Error(`not as the builder renders it:\n${restoreText}\n---\n${renderRestoreText(state)}`);
  return state;
}
