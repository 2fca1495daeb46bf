/**
 * The restore texts (for `--noflush`) that edit the capture rules in place: replace them with the configured ones,
 * remove them, or roll a failed run back. One transaction per table. Pure: apply.ts runs them.
 */
import { hasCapture, isTproxyTailRule, tableCapture, tproxyTailRules } from './capture-compare.js';
import {
  findTable,
  isBuiltInChain,
  isCaptureChain,
  jumpsToCaptureChain,
  jumpTarget,
  ruleLine,
  rulesOf,
  tableNames,
  type IptablesState,
  type Rule,
  type Table,
  type TableRule,
} from './ruleset.js';

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
