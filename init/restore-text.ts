/**
 * The iptables-restore input for a list of rules, byte for byte as istio-iptables writes it
 * (builder.buildRestore): tables in name order, empty ones left out; per table `* <table>`, the `-N` lines for its
 * chains (each rule's own chain in order of first appearance, then jump targets never seen as a rule's chain),
 * the rules in emission order, `COMMIT`.
 */

export type Table = 'filter' | 'mangle' | 'nat' | 'raw';

export interface Rule {
  table: Table;
  chain: string;
  /** `-A CHAIN ...` or `-I CHAIN N ...`, one token per element. */
  params: string[];
}

/** The chains every table has; no `-N` is written for them. */
export const BUILT_IN_CHAINS: ReadonlySet<string> = new Set([
  'PREROUTING',
  'INPUT',
  'FORWARD',
  'OUTPUT',
  'POSTROUTING',
]);

/** Targets a rule may jump to that are not chains, so they get no `-N` either. */
const BUILT_IN_TARGETS: ReadonlySet<string> = new Set(['ACCEPT', 'RETURN', 'DROP']);

export function renderRestoreText(rules: readonly Rule[]): string {
  const lines = new Map<Table, string[]>();
  const linesOf = (table: Table) => lines.get(table) ?? lines.set(table, []).get(table)!;
  const declared = new Set<string>();
  const declare = (table: Table, chain: string) => {
    const key = `${chain}:${table}`;
    if (declared.has(key)) return;
    declared.add(key);
    if (!BUILT_IN_CHAINS.has(chain) && !BUILT_IN_TARGETS.has(chain)) linesOf(table).push(`-N ${chain}`);
  };
  for (const rule of rules) declare(rule.table, rule.chain);
  for (const rule of rules) {
    const [jump, target] = rule.params.slice(-2);
    if (jump === '-j' && target !== undefined) declare(rule.table, target);
  }
  for (const rule of rules) linesOf(rule.table).push(rule.params.join(' '));

  let text = '';
  for (const table of [...lines.keys()].sort()) {
    text += `* ${table}\n${linesOf(table).join('\n')}\nCOMMIT\n`;
  }
  return text;
}
