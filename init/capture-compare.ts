/**
 * Whether the capture rules in place match the configured ones, judged as Istio's `VerifyIptablesState` judges it,
 * and which rules the kernel must be asked about one by one; plus the capture part of a table, for logs and
 * messages. Pure.
 */
import { OUTBOUND_MARK } from '../common/constants.js';
import {
  findTable,
  isBuiltInChain,
  isCaptureChain,
  jumpsToCaptureChain,
  jumpTarget,
  ruleLine,
  rulesOf,
  tableNames,
  words,
  type IptablesState,
  type Rule,
  type Table,
  type TableRule,
} from './ruleset.js';

/** The capture part of one table: its ISTIO_* chains with their rules, and the jumps into them from built-in chains. */
export interface TableCapture {
  table: string;
  chains: { name: string; rules: Rule[] }[];
  jumps: Rule[];
}

export function tableCapture(table: Table | undefined): TableCapture | undefined {
  if (table === undefined) return undefined;
  const capture: TableCapture = {
    table: table.name,
    chains: table.chains.filter(isCaptureChain).map((name) => ({ name, rules: rulesOf(table, name) })),
    jumps: table.rules.filter((rule) => isBuiltInChain(rule.chain) && jumpsToCaptureChain(rule)),
  };
  return capture.chains.length > 0 || capture.jumps.length > 0 ? capture : undefined;
}

/** The capture part of a state, table by table; tables without capture rules are left out. */
export function captureOf(state: IptablesState): TableCapture[] {
  return state.tables.map(tableCapture).filter((capture) => capture !== undefined);
}

export function hasCapture(state: IptablesState): boolean {
  return captureOf(state).length > 0;
}

/** The capture part of a state in restore format, for logs and error messages; "(none)" when there is none. */
export function describeCapture(state: IptablesState): string {
  const captures = captureOf(state);
  if (captures.length === 0) return '(none)';
  return captures
    .map(({ table, chains, jumps }) =>
      [
        `*${table}`,
        ...chains.map((chain) => `:${chain.name} - [0:0]`),
        ...jumps.map(ruleLine),
        ...chains.flatMap((chain) => chain.rules.map(ruleLine)),
        'COMMIT',
      ].join('\n'),
    )
    .join('\n');
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/**
 * How the capture rules in place differ from the configured ones, as far as text can tell, judged as Istio's
 * `VerifyIptablesState` does: the same ISTIO_* chains in each table, the same number of rules in each, and the
 * same number of jumps from each built-in chain into each ISTIO_* chain. Rule order is not compared, as in Istio.
 * Nor is the rules' text: iptables-save prints a rule differently from how it was written (`-m tcp` added,
 * options reordered), so when this list is empty the caller asks the kernel with `-C` for each of
 * `rulesToVerify`.
 */
export function captureDifferences(current: IptablesState, desired: IptablesState): string[] {
  const differences: string[] = [];
  for (const table of tableNames(current, desired)) {
    const have = tableCapture(findTable(current, table));
    const want = tableCapture(findTable(desired, table));
    const haveChains = new Map((have?.chains ?? []).map((chain) => [chain.name, chain.rules.length]));
    const wantChains = new Map((want?.chains ?? []).map((chain) => [chain.name, chain.rules.length]));
    for (const [name, count] of wantChains) {
      const present = haveChains.get(name);
      if (present === undefined) differences.push(`${table}: chain ${name} is missing`);
      else if (present !== count)
        differences.push(`${table}: chain ${name} has ${present} rules, the configuration has ${count}`);
    }
    for (const name of haveChains.keys()) {
      if (!wantChains.has(name)) differences.push(`${table}: chain ${name} is not in the configuration`);
    }
    const jumpKey = (rule: Rule) => `${rule.chain} to ${jumpTarget(rule.spec) ?? ''}`;
    const haveJumps = countBy(have?.jumps ?? [], jumpKey);
    const wantJumps = countBy(want?.jumps ?? [], jumpKey);
    for (const key of new Set([...haveJumps.keys(), ...wantJumps.keys()])) {
      const present = haveJumps.get(key) ?? 0;
      const configured = wantJumps.get(key) ?? 0;
      if (present !== configured)
        differences.push(`${table}: ${present} jumps from ${key}, the configuration has ${configured}`);
    }
  }
  const tailCounts = (state: IptablesState) => countBy(tproxyTailRules(state), (rule) => rule.chain);
  const [haveTail, wantTail] = [tailCounts(current), tailCounts(desired)];
  for (const chain of new Set([...haveTail.keys(), ...wantTail.keys()])) {
    const [present, configured] = [haveTail.get(chain) ?? 0, wantTail.get(chain) ?? 0];
    if (present !== configured)
      differences.push(`mangle: ${present} TPROXY rules in ${chain}, the configuration has ${configured}`);
  }
  return differences;
}

/** Every configured rule, for the kernel's `-C` check once `captureDifferences` found nothing. */
export function rulesToVerify(desired: IptablesState): TableRule[] {
  return desired.tables.flatMap((table) => table.rules.map((rule) => ({ ...rule, table: table.name })));
}

/**
 * The configured rules in built-in chains that do not jump into an ISTIO_* chain (`-c` interface exclusions, the
 * TPROXY marks). Only the kernel's `-C` can find them among other rules, so the caller checks which of them are
 * present before removing them.
 */
export function builtInRulesWithoutJump(desired: IptablesState): TableRule[] {
  return rulesToVerify(desired).filter((rule) => isBuiltInChain(rule.chain) && !jumpsToCaptureChain(rule));
}

/** Whether a mark value, as written (`1338`) or as iptables-save prints it (`0x53a/0xffffffff`), is `mark`. */
function isMark(text: string | undefined, mark: number): boolean {
  const [value = '', mask] = (text ?? '').split('/');
  return Number(value) === mark && (mask === undefined || Number(mask) === 0xffffffff);
}

/**
 * Whether a rule is one of TPROXY mode's mangle rules in PREROUTING/OUTPUT (Istio's tail of the TPROXY setup): the
 * CONNMARK save/restore of the mark, the mark set on the proxy's own loopback traffic (1338), and the RETURN of
 * marked loopback traffic. Nothing but istio-iptables writes these shapes, so a reconcile may remove them even
 * when another configuration wrote them. Recognised both as written and as iptables-save prints them.
 */
export function isTproxyTailRule(table: string, rule: Rule): boolean {
  if (table !== 'mangle' || !['PREROUTING', 'OUTPUT'].includes(rule.chain)) return false;
  const parts = words(rule.spec);
  const after = (word: string) => (parts.includes(word) ? parts[parts.indexOf(word) + 1] : undefined);
  switch (jumpTarget(rule.spec)) {
    case 'CONNMARK':
      return parts.includes('--save-mark') || parts.includes('--restore-mark');
    case 'MARK':
      return isMark(after('--set-mark') ?? after('--set-xmark'), OUTBOUND_MARK);
    case 'RETURN': {
      // `-p tcp -o lo -m mark --mark N -j RETURN`, in any order, and nothing else.
      const marked = after('--mark') !== undefined && after('-m') === 'mark' && !parts.includes('!');
      return (
        rule.chain === 'OUTPUT' &&
        marked &&
        after('-o') === 'lo' &&
        after('-p') === 'tcp' &&
        parts.length === 10
      );
    }
    default:
      return false;
  }
}

export function tproxyTailRules(state: IptablesState): TableRule[] {
  return state.tables.flatMap((table) =>
    table.rules
      .filter((rule) => isTproxyTailRule(table.name, rule))
      .map((rule) => ({ ...rule, table: table.name })),
  );
}

/** `-i IFACE -j RETURN` in PREROUTING or `-o IFACE -j RETURN` in OUTPUT: what `-c` and `-k` write, in nat and mangle. */
function interfaceReturnKey(table: string, rule: Rule): string | undefined {
  if (!['nat', 'mangle'].includes(table)) return undefined;
  const parts = words(rule.spec);
  const option = rule.chain === 'PREROUTING' ? '-i' : rule.chain === 'OUTPUT' ? '-o' : undefined;
  if (option === undefined || parts.length !== 4 || parts[0] !== option || jumpTarget(rule.spec) !== 'RETURN')
    return undefined;
  return `${table} ${rule.chain} ${parts[1] ?? ''}`;
}

/**
 * The interface RETURN rules (the shape `-c`/`-k` write) in `current` that the configuration does not write. They
 * may be an earlier configuration's, but a plain `-i eth1 -j RETURN` may as well be someone else's, so they are
 * reported, never removed.
 */
export function unconfiguredInterfaceReturns(current: IptablesState, desired: IptablesState): TableRule[] {
  const configured = new Set(
    desired.tables.flatMap((table) => table.rules.map((rule) => interfaceReturnKey(table.name, rule))),
  );
  return current.tables.flatMap((table) =>
    table.rules
      .filter((rule) => {
        const key = interfaceReturnKey(table.name, rule);
        return key !== undefined && !configured.has(key);
      })
      .map((rule) => ({ ...rule, table: table.name })),
  );
}
