/**
 * iptables-restore text, taken apart: the rules per table from a dry-run transcript (which may write `* nat` and
 * `-N` lines as Istio's golden files do, or `*nat` and `:CHAIN - [0:0]` as iptables-save does), put back together
 * as canonical restore input, or turned into one `iptables` command per rule, the way Istio's and Linkerd's
 * shell scripts used to apply them.
 */

export interface TableRules {
  table: string;
  /** Rule lines in order (`-N`, `-A`, `-I`, ...), tokenized. */
  rules: string[][];
}

export function parseRestoreText(text: string): TableRules[] {
  const tables: TableRules[] = [];
  let current: TableRules | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      current = { table: line.slice(1).trim(), rules: [] };
      tables.push(current);
    } else if (line === 'COMMIT') {
      current = undefined;
    } else if (current && line.startsWith(':')) {
      // `:CHAIN POLICY [packets:bytes]`; a policy of `-` is a user chain, which the per-rule form must create.
      const [chain = '', policy] = line.slice(1).split(/\s+/);
      if (policy === '-') current.rules.push(['-N', chain]);
    } else if (current && line.startsWith('-')) {
      current.rules.push(tokenize(line));
    }
  }
  return tables.filter((table) => table.rules.length > 0);
}

export function ruleCount(tables: readonly TableRules[]): number {
  return tables.reduce((total, table) => total + table.rules.length, 0);
}

/** Restore input with every chain declared by `-N`, which iptables-restore --noflush accepts. */
export function toRestoreText(tables: readonly TableRules[]): string {
  return tables
    .map((table) => [`*${table.table}`, ...table.rules.map(formatRestoreLine), 'COMMIT'].join('\n'))
    .join('\n')
    .concat('\n');
}

/** A POSIX shell script that applies the rules one `iptables` process at a time and stops at the first failure. */
export function toPerRuleScript(tables: readonly TableRules[], iptables: string): string {
  const lines = ['set -e'];
  for (const table of tables) {
    for (const rule of table.rules)
      lines.push([iptables, '-t', table.table, ...rule].map(shellQuote).join(' '));
  }
  return `${lines.join('\n')}\n`;
}

/** Splits a restore line into arguments; double quotes group words, as iptables-restore reads them. */
export function tokenize(line: string): string[] {
  const tokens: string[] = [];
  let token = '';
  let inToken = false;
  let quoted = false;
  for (const char of line) {
    if (char === '"') {
      quoted = !quoted;
      inToken = true;
    } else if (!quoted && /\s/.test(char)) {
      if (inToken) tokens.push(token);
      token = '';
      inToken = false;
    } else {
      token += char;
      inToken = true;
    }
  }
  if (quoted) throw new Error(`unbalanced quote in iptables-restore line: ${line}`);
  if (inToken) tokens.push(token);
  return tokens;
}

function formatRestoreLine(rule: string[]): string {
  return rule.map((arg) => (/^[^\s"]+$/.test(arg) ? arg : `"${arg}"`)).join(' ');
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:,=+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}
