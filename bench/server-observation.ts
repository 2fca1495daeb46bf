/** What bench/server-observer.ts prints in the observed process, and reading it back from its log lines. */

export const OBSERVATION_KEY = 'benchServerObservation';

export interface ServerObservation {
  /** TCP connections accepted so far; over TLS, each is one handshake. */
  connections: number;
  /** HTTP requests answered so far, and the seconds from each one's parsed headers to its response's end. */
  requests: number;
  requestSeconds: number;
}

export function observationLine(observation: ServerObservation): string {
  return `${JSON.stringify({ [OBSERVATION_KEY]: observation })}\n`;
}

const NONE: ServerObservation = { connections: 0, requests: 0, requestSeconds: 0 };

/** The latest observation in a process's log lines; zeros when none was printed yet. */
export function latestObservation(lines: readonly string[]): ServerObservation {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.includes(OBSERVATION_KEY)) continue;
    const observation = (JSON.parse(line) as Record<string, ServerObservation | undefined>)[OBSERVATION_KEY];
    if (observation) return observation;
  }
  return NONE;
}
