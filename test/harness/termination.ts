/**
 * Ctrl-C and SIGTERM stop what the harness started before the process exits: registered stops run (together),
 * then the process exits with 128 + the signal's number, as a shell reports it. A second signal while stopping
 * is ignored, so an impatient Ctrl-C does not cut the cleanup short.
 */
const stops = new Set<() => Promise<void>>();
const SIGNALS = { SIGINT: 2, SIGTERM: 15 } as const;
let stopping = false;

function onSignal(signal: keyof typeof SIGNALS): void {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n${signal}: stopping everything that was started...\n`);
  void Promise.allSettled([...stops].map((stop) => stop())).then(() => process.exit(128 + SIGNALS[signal]));
}

const handlers = {
  SIGINT: () => onSignal('SIGINT'),
  SIGTERM: () => onSignal('SIGTERM'),
};

export function onTerminationSignal(stop: () => Promise<void>): { cancel(): void } {
  if (stops.size === 0) for (const [signal, handler] of Object.entries(handlers)) process.on(signal, handler);
  stops.add(stop);
  return {
    cancel: () => {
      stops.delete(stop);
      if (stops.size === 0 && !stopping)
        for (const [signal, handler] of Object.entries(handlers)) process.off(signal, handler);
    },
  };
}
