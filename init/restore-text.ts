/**
 * The rule model as iptables-restore input, byte for byte as istio-iptables writes it (builder.buildRestore), and
 * how the configured rules, listed in emission order, are grouped into that model. Text is made only here: for
 * iptables-restore, dry runs and logs.
 */
import {
  BUILT_IN_CHAINS,
  isBuiltInChain,
  ruleLine,
  words,
  type IptablesState,
  type Table,
  type TableRule,
} from './ruleset.js';

/** Targets a rule may jump to that are not chains, so they get no `-N` either. */
const BUILT_IN_TARGETS: ReadonlySet<string> = new Set(['ACCEPT', 'RETURN', 'DROP']);

/**
 * The tables of rules in emission order, as Istio groups them: tables in name order, empty ones left out; each
 * table's rules in emission order; its chains: those to create (each rule's own chain in order of first
 * appearance, then the targets of a final `-j X` never seen as a rule's chain), then the built-in chains that hold
 * rules.
 */
export function rulesetOf(rules: readonly TableRule[]): IptablesState {
  const tables = new Map<string, { created: string[]; builtIn: string[]; rules: Table['rules'] }>();
  const tableOf = (name: string) =>
    tables.get(name) ?? tables.set(name, { created: [], builtIn: [], rules: [] }).get(name)!;
  const declare = (name: string, chain: string) => {
    const table = tableOf(name);
    if (BUILT_IN_TARGETS.has(chain)) return;
    const list = isBuiltInChain(chain) ? table.builtIn : table.created;
    if (!list.includes(chain)) list.push(chain);
  };
  for (const rule of rules) declare(rule.table, rule.chain);
  for (const rule of rules) {
    const [jump, target] = words(rule.spec).slice(-2);
    if (jump === '-j' && target !== undefined) declare(rule.table, target);
  }
  for (const { table, ...rule } of rules) tableOf(table).rules.push(rule);
  return {
    tables: [...tables.keys()].sort().map((name) => {
      const { created, builtIn, rules: tableRules } = tableOf(name);
      return {
        name,
        chains: [...created, ...builtIn.filter((chain) => BUILT_IN_CHAINS.has(chain))],
        rules: tableRules,
      };
    }),
  };
}

/** Istio's restore format: per table `* <table>`, a `-N` line per chain to create, the rules, `COMMIT`. */
export function renderRestoreText(state: IptablesState): string {
  let text = '';
  for (const table of state.tables) {
    const lines = [
      ...table.chains.filter((chain) => !isBuiltInChain(chain)).map((chain) => `-N ${chain}`),
      ...table.rules.map(ruleLine),
    ];
    text += `* ${table.name}\n${lines.join('\n')}\nCOMMIT\n`;
  }
  return text;
}

/** The table that a line of a restore text belongs to (1-based, as iptables-restore reports a failed line). */
export function tableAtLine(text: string, line: number): string | undefined {
  let table: string | undefined;
  for (const [index, raw] of text.split('\n').entries()) {
    if (raw.startsWith('*')) table = raw.slice(1).trim();
    if (index + 1 === line) return table;
  }
  return undefined;
}
