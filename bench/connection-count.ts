/** The log line bench/connection-counter.ts prints in the webhook process, and reading it back. */

export const CONNECTION_COUNT_KEY = 'benchAcceptedConnections';

export function connectionCountLine(accepted: number): string {
  return `${JSON.stringify({ [CONNECTION_COUNT_KEY]: accepted })}\n`;
}

/** The latest count in a process's log lines, 0 when none was printed yet. */
export function acceptedConnections(lines: readonly string[]): number {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.includes(CONNECTION_COUNT_KEY)) continue;
    const count = (JSON.parse(line) as Record<string, unknown>)[CONNECTION_COUNT_KEY];
    if (typeof count === 'number') return count;
  }
  return 0;
}
