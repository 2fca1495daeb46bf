/**
 * The one model of iptables rules in mesh-iptables: one IP family's tables, each with its chains and its rules in
 * order. The rule builder produces it (rules.ts), the iptables-save parser reads the kernel's into it
 * (iptables-save.ts); it is rendered to text only for iptables-restore, dry runs and logs (restore-text.ts).
 */
import { CHAIN_PREFIX } from '../common/constants.js';

/** The chains every table has; no `-N` is written for them. */
export const BUILT_IN_CHAINS: ReadonlySet<string> = new Set([
  'PREROUTING',
  'INPUT',
  'FORWARD',
  'OUTPUT',
  'POSTROUTING',
]);

/** One rule line: `-A CHAIN spec`, or `-I CHAIN N spec` when `insertAt` is set. */
export interface Rule {
  chain: string;
  /** The matches and the target: everything after the chain name (and the insert position). */
  spec: string;
  insertAt?: number;
}

export interface Table {
  name: string;
  /** Chain names in order of first appearance, built-in chains included. */
  chains: string[];
  /** The table's rules in the order the text lists them. */
  rules: Rule[];
}

export interface IptablesState {
  /** Tables in order of first appearance. */
  tables: Table[];
}

/** A rule of a table, for the rules that are checked or removed one by one. */
export interface TableRule extends Rule {
  table: string;
}

export function isBuiltInChain(name: string): boolean {
  return BUILT_IN_CHAINS.has(name);
}

export function isCaptureChain(name: string): boolean {
  return name.startsWith(CHAIN_PREFIX);
}

/** The words of a rule spec, with double-quoted words (comments) kept whole, quotes included. */
export function words(spec: string): string[] {
  return spec.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
}

/**
 * A rule spec as command-line arguments, read as iptables-restore reads it: words split on whitespace, a
 * double-quoted part is one argument without its quotes, and `\"` inside quotes is a quote.
 */
export function specArguments(spec: string): string[] {
  const args: string[] = [];
  for (const match of spec.matchAll(/(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))+/g)) {
    args.push(match[0].replace(/"((?:[^"\\]|\\.)*)"/g, (_, quoted: string) => quoted.replace(/\\"/g, '"')));
  }
  return args;
}

/** The chain a rule jumps or goes to, if its target is a chain or extension named by `-j`/`-g`. */
export function jumpTarget(spec: string): string | undefined {
  const parts = words(spec);
  const index = parts.findIndex((word) => ['-j', '--jump', '-g', '--goto'].includes(word));
  return index < 0 ? undefined : parts[index + 1];
}

export function jumpsToCaptureChain(rule: Rule): boolean {
  const target = jumpTarget(rule.spec);
  return target !== undefined && isCaptureChain(target);
}

export function ruleLine(rule: Rule): string {
  return rule.insertAt === undefined
    ? `-A ${rule.chain} ${rule.spec}`
    : `-I ${rule.chain} ${rule.insertAt} ${rule.spec}`;
}

export function findTable(state: IptablesState, name: string): Table | undefined {
  return state.tables.find((table) => table.name === name);
}

export function rulesOf(table: Table | undefined, chain: string): Rule[] {
  return (table?.rules ?? []).filter((rule) => rule.chain === chain);
}

export function tableNames(...states: IptablesState[]): string[] {
  return [...new Set(states.flatMap((state) => state.tables.map((table) => table.name)))].sort();
}
