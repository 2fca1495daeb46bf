/** Processes as /proc shows them: the fields of a stat line, whether a process still runs, and its descendants. */
import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';

/**
 * The fields of a `/proc/<pid>/stat` line after the command name, which is in parentheses and may itself hold
 * spaces: [0] is the state, [1] the parent's pid, [11] and [12] user and system time (stat fields 3, 4, 14, 15).
 */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The command name of a `/proc/<pid>/stat` line (field 2, in parentheses). */
export function statName(stat: string): string {
  return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
}

/**
 * Whether a process still runs: it exists and is not a zombie. A zombie has exited; it waits only for its parent to
 * reap it, and an orphan's parent is init, which here (the sandbox's own PID 1) may take seconds to do so.
 */
export function isRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  return statFields(stat)[0] !== 'Z';
}

/** The processes started from any of `pids` (children, grandchildren...), read from /proc. */
export async function descendants(pids: number[]): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(statFields(stat)[1]);
    if (Number.isInteger(ppid)) parentOf.set(Number(entry), ppid);
  }
  const found = new Set<number>();
  let added = true;
  while (added) {
    added = false;
    for (const [pid, ppid] of parentOf) {
      if (!found.has(pid) && (pids.includes(ppid) || found.has(ppid))) {
        found.add(pid);
        added = true;
      }
    }
  }
  return [...found];
}
