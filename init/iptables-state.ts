/**
 * The rule tables of one IP family as data, and the decisions about them: parse `iptables-save` output and
 * `iptables-restore` input into tables → chains → rules, tell whether the capture rules in place match the
 * configured ones, and render the restore texts that replace, remove or roll back the capture rules. Pure: the
 * commands that read and write the kernel live in apply.ts.
 */
import { CHAIN_PREFIX, OUTBOUND_MARK } from '../common/constants.js';
import { BUILT_IN_CHAINS } from './restore-text.js';

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

/**
 * Parses `iptables-save` output or `iptables-restore` input. Comments, `COMMIT` and chain counters are dropped;
 * `:CHAIN`, `-N CHAIN` and every `-A`/`-I` line are kept. `source` names the text in errors.
 */
export function parseIptablesState(text: string, source: string): IptablesState {
  const tables: Table[] = [];
  let current: Table | undefined;
  const declare = (chain: string) => {
    if (current !== undefined && !current.chains.includes(chain)) current.chains.push(chain);
  };
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    const fail = (why: string): never => {
      throw new Error(`${source}, line ${index + 1} ("${line}"): ${why}`);
    };
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      const name = line.slice(1).trim();
      if (!/^[a-z]+$/.test(name)) fail('not a table name');
      current = tables.find((table) => table.name === name);
      if (current === undefined) {
        current = { name, chains: [], rules: [] };
        tables.push(current);
      }
      return;
    }
    if (line === 'COMMIT') {
      if (current === undefined) fail('COMMIT outside a table');
      current = undefined;
      return;
    }
    if (current === undefined) return fail('a rule or chain outside a table (no "*table" line before it)');
    const match = /^(?::(\S+)|(-N|-A|-I)\s+(\S+))(?:\s+(.*))?$/.exec(line);
    if (match === null) return fail('not a chain or rule line (expected :CHAIN, -N, -A or -I)');
    const [, declared, command, chain = '', rest = ''] = match;
    if (declared !== undefined || command === '-N') {
      declare(declared ?? chain);
      return;
    }
    const position = command === '-I' ? /^(\d+)\s+/.exec(rest) : null;
    const rule: Rule = { chain, spec: position ? rest.slice(position[0].length) : rest };
    if (command === '-I') rule.insertAt = position ? Number(position[1]) : 1;
    if (rule.spec.trim() === '') fail('a rule without matches or target');
    declare(chain);
    current.rules.push(rule);
  });
  return { tables };
}

/** The words of a rule spec, with double-quoted words (comments) kept whole, quotes included. */
function words(spec: string): string[] {
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

function findTable(state: IptablesState, name: string): Table | undefined {
  return state.tables.find((table) => table.name === name);
}

function rulesOf(table: Table | undefined, chain: string): Rule[] {
  return (table?.rules ?? []).filter((rule) => rule.chain === chain);
}

function tableNames(...states: IptablesState[]): string[] {
  return [...new Set(states.flatMap((state) => state.tables.map((table) => table.name)))].sort();
}

/** The capture part of one table: its ISTIO_* chains with their rules, and the jumps into them from built-in chains. */
export interface TableCapture {
  table: string;
  chains: { name: string; rules: Rule[] }[];
  jumps: Rule[];
}

function tableCapture(table: Table | undefined): TableCapture | undefined {
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

function tproxyTailRules(state: IptablesState): TableRule[] {
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

/** The chains a configured table creates: its own chains and the ISTIO_* chains its rules jump to. */
function configuredChains(table: Table | undefined): string[] {
  if (table === undefined) return [];
  const targets = table.rules.map((rule) => jumpTarget(rule.spec) ?? '').filter(isCaptureChain);
  return [...new Set([...table.chains, ...targets])].filter((name) => !isBuiltInChain(name));
}

function section(table: string, lines: readonly string[]): string {
  return [`*${table}`, ...lines, 'COMMIT'].join('\n');
}

function restoreText(sections: readonly string[]): string {
  return sections.length === 0 ? '' : `${sections.join('\n')}\n`;
}

/**
 * The restore text (for `--noflush`) that turns the capture rules in place into the configured ones, in one
 * transaction per table, so no moment passes without capture. For each table: `:CHAIN - [0:0]` creates or empties
 * every configured chain and every ISTIO_* chain in place; `-D` removes the jumps from built-in chains into ISTIO_*
 * chains (by their saved text), TPROXY's mangle rules in built-in chains (`isTproxyTailRule`, by their saved
 * text, whichever configuration wrote them) and the configured built-in rules already present (`present`, found
 * with `-C`, so they are not doubled); `-X` deletes the ISTIO_* chains the configuration no longer has; then the configured
 * rules follow, in the order a first apply writes them. Returns '' when there is nothing to do.
 */
export function renderReplace(
  current: IptablesState,
  desired: IptablesState,
  present: readonly TableRule[],
): string {
  const names = [...new Set([...tableNames(current, desired), ...present.map((rule) => rule.table)])].sort();
  // With capture rules in place, every TPROXY tail rule goes (those of this configuration are written again);
  // the configured ones found by `-C` are among them, so they are not deleted a second time.
  const ours = hasCapture(current);
  const staleTail = ours ? tproxyTailRules(current) : [];
  const sections: string[] = [];
  for (const name of names) {
    const have = tableCapture(findTable(current, name));
    const want = findTable(desired, name);
    const created = configuredChains(want);
    const stale = (have?.chains ?? []).map((chain) => chain.name).filter((chain) => !created.includes(chain));
    const removals = [
      ...(have?.jumps ?? []),
      ...staleTail.filter((rule) => rule.table === name),
      ...present.filter((rule) => rule.table === name && !(ours && isTproxyTailRule(rule.table, rule))),
    ];
    const additions = want?.rules ?? [];
    if (created.length + stale.length + removals.length + additions.length === 0) continue;
    sections.push(
      section(name, [
        ...[...created, ...stale].map((chain) => `:${chain} - [0:0]`),
        ...removals.map((rule) => `-D ${rule.chain} ${rule.spec}`),
        ...stale.map((chain) => `-X ${chain}`),
        ...additions.map(ruleLine),
      ]),
    );
  }
  return restoreText(sections);
}

/**
 * The restore text that removes everything the configuration adds: the ISTIO_* chains of every table, every rule
 * in a built-in chain that jumps into one, and the configured built-in rules that are present (`present`, from
 * `-C`). Nothing else is touched. Returns '' when there is nothing to remove.
 */
export function renderCleanup(current: IptablesState, present: readonly TableRule[]): string {
  return renderReplace(current, { tables: [] }, present);
}

/**
 * The restore text that brings the ISTIO_* chains and the built-in chains of `now` back to `target` (the state
 * before a failed run): ISTIO_* chains that `target` lacks are emptied and deleted, those whose rules differ are
 * refilled with `target`'s rules, and every built-in chain gets back exactly `target`'s rules in `target`'s order.
 * Other user chains are not touched; no run changes them. Returns '' when `now` already matches `target`.
 */
export function renderRollback(now: IptablesState, target: IptablesState): string {
  const sections: string[] = [];
  for (const name of tableNames(now, target)) {
    const nowTable = findTable(now, name);
    const targetTable = findTable(target, name);
    const nowChains = (nowTable?.chains ?? []).filter(isCaptureChain);
    const targetChains = (targetTable?.chains ?? []).filter(isCaptureChain);
    const removed = nowChains.filter((chain) => !targetChains.includes(chain));
    const refilled = targetChains.filter(
      (chain) =>
        !nowChains.includes(chain) || !sameSpecs(rulesOf(nowTable, chain), rulesOf(targetTable, chain)),
    );
    const builtIn = [...new Set([...(nowTable?.chains ?? []), ...(targetTable?.chains ?? [])])]
      .filter(isBuiltInChain)
      .map((chain) => builtInChainEdits(chain, rulesOf(nowTable, chain), rulesOf(targetTable, chain)));
    const deletions = builtIn.flatMap((edits) => edits.deletions);
    const insertions = builtIn.flatMap((edits) => edits.insertions);
    if (removed.length + refilled.length + deletions.length + insertions.length === 0) continue;
    sections.push(
      section(name, [
        ...[...refilled, ...removed].map((chain) => `:${chain} - [0:0]`),
        ...deletions,
        ...removed.map((chain) => `-X ${chain}`),
        ...insertions,
        ...refilled.flatMap((chain) => rulesOf(targetTable, chain).map((rule) => `-A ${chain} ${rule.spec}`)),
      ]),
    );
  }
  return restoreText(sections);
}

function sameSpecs(a: readonly Rule[], b: readonly Rule[]): boolean {
  return a.length === b.length && a.every((rule, index) => rule.spec === b[index]?.spec);
}

/**
 * The `-D` and `-I` lines that turn a built-in chain's rules `now` into `target` with the fewest changes: the
 * longest common subsequence stays, the other rules of `now` are deleted by number (highest first, so the numbers
 * stay valid; by number, because deleting by text removes the first of two equal rules, not necessarily the one
 * meant), then `target`'s other rules are inserted at their positions, lowest first, which rebuilds `target`
 * exactly. When two choices are equally short, a jump into an ISTIO_* chain moves rather than another rule.
 * The numbers hold because the text is computed from a save taken just before and nothing else changes a pod's
 * rules while its init container runs.
 */
export function builtInChainEdits(
  chain: string,
  now: readonly Rule[],
  target: readonly Rule[],
): { deletions: string[]; insertions: string[] } {
  // common[i][j]: length of the longest common subsequence of now[i..] and target[j..].
  const common = Array.from({ length: now.length + 1 }, () => new Array<number>(target.length + 1).fill(0));
  const at = (i: number, j: number) => common[i]?.[j] ?? 0;
  for (let i = now.length - 1; i >= 0; i--) {
    for (let j = target.length - 1; j >= 0; j--) {
      const row = common[i] ?? [];
      row[j] = now[i]?.spec === target[j]?.spec ? at(i + 1, j + 1) + 1 : Math.max(at(i + 1, j), at(i, j + 1));
    }
  }
  const deleted: number[] = [];
  const inserted: number[] = [];
  let i = 0;
  let j = 0;
  while (i < now.length || j < target.length) {
    const rule = now[i];
    if (rule !== undefined && j < target.length && rule.spec === target[j]?.spec) {
      i++;
      j++;
    } else if (
      rule !== undefined &&
      (j >= target.length ||
        at(i + 1, j) > at(i, j + 1) ||
        (at(i + 1, j) === at(i, j + 1) && jumpsToCaptureChain(rule)))
    ) {
      deleted.push(i++);
    } else {
      inserted.push(j++);
    }
  }
  return {
    deletions: deleted.reverse().map((index) => `-D ${chain} ${index + 1}`),
    insertions: inserted.map((index) => `-I ${chain} ${index + 1} ${target[index]?.spec ?? ''}`),
  };
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
