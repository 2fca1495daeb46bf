import type { Pod } from './lab.js';

/** The two iptables implementations the init program must work with. */
export const IPTABLES_BACKENDS = ['nft', 'legacy'] as const;
export type IptablesBackend = (typeof IPTABLES_BACKENDS)[number];

export type IpFamily = 'ipv4' | 'ipv6';

function binary(family: IpFamily, backend: IptablesBackend, suffix = ''): string {
  return `${family === 'ipv4' ? 'iptables' : 'ip6tables'}-${backend}${suffix}`;
}

/**
 * One family's rules as `<ip|ip6>tables-<backend>-save` prints them, for comparing two states: comments (with their
 * timestamps) and packet counters are dropped.
 */
export async function saveRules(
  pod: Pod,
  backend: IptablesBackend,
  family: IpFamily,
  table?: string,
): Promise<string> {
  const { stdout } = await pod.exec(
    binary(family, backend, '-save'),
    table === undefined ? [] : ['-t', table],
  );
  return stdout
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.replace(/ \[\d+:\d+\]$/, ''))
    .join('\n');
}

/** Loads rules into a pod, next to whatever it already has. */
export async function restoreRules(
  pod: Pod,
  backend: IptablesBackend,
  family: IpFamily,
  rules: string,
): Promise<void> {
  await pod.exec(binary(family, backend, '-restore'), ['--noflush'], { input: rules });
}

/**
 * Saved rules without the tables that hold nothing: no rule, no chain of their own, every built-in chain
 * accepting. Such a table behaves as no table at all, and neither backend can remove one once something created
 * it (iptables-legacy's tables live as long as the namespace).
 */
export function withoutEmptyTables(saved: string): string {
  const tables = saved.split(/(?<=^COMMIT)\n/m);
  const isEmpty = (table: string) =>
    table
      .split('\n')
      .slice(1, -1)
      .every((line) => /^:\S+ ACCEPT$/.test(line));
  return tables.filter((table) => !isEmpty(table)).join('\n');
}
