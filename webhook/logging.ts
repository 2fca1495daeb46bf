/**
 * The webhook's log lines: one JSON object per line, as log pipelines (Loki, Fluent Bit, Cloud Logging) expect
 * them: `time` in ISO 8601 (UTC) and `level` as a name ("info", "warn"), not pino's epoch milliseconds and numbers.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export const LOGGER_OPTIONS: LoggerOptions = {
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
};

/**
 * Standard output, written asynchronously: a line is handed to the kernel off the request's path, and lines that
 * arrive while a write is in flight go out together in the next one (a synchronous write per review was about a
 * tenth of the webhook's CPU). Nothing waits for a buffer to fill, so an idle webhook's lines are not held back.
 * pino writes what is still buffered synchronously when the process exits; `flushLogs` waits for it before then.
 */
export function stdoutDestination(): DestinationStream {
  return pino.destination({ dest: 1, sync: false });
}

export function createLogger(level: string, destination: DestinationStream = stdoutDestination()): Logger {
  return pino({ ...LOGGER_OPTIONS, level }, destination);
}

/**
 * Resolves once every line logged so far has been written: a process that exits right after would otherwise lose
 * a write still in flight (pino's own flush on exit writes only what is still queued). A destination that writes
 * synchronously has nothing in flight.
 */
export function flushLogs(log: Logger, timeoutMs = 2_000): Promise<void> {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    AsyncDestination | undefined;
  // sonic-boom marks a write in flight with `_writing` and emits `drain` when nothing is left to write.
  if (!stream?._writing || typeof stream.once !== 'function') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    stream.once('drain', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

interface AsyncDestination {
  _writing?: boolean;
  once(event: 'drain', listener: () => void): unknown;
}
