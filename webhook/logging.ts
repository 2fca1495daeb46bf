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
 * Lines are buffered and written together: when LOG_BUFFER_BYTES have gathered, else every LOG_FLUSH_INTERVAL_MS,
 * so an idle webhook's lines are held back at most that long. A write per review line, even an asynchronous one
 * (a hand-off to libuv's thread pool), was about a quarter of the webhook's CPU per request at concurrency 1
 * (docs/benchmarks.md). Writes are asynchronous, so a slow log reader never blocks a review. pino writes what is
 * still buffered synchronously when the process exits; `flushLogs` writes it before then.
 */
export const LOG_BUFFER_BYTES = 8 * 1024;
export const LOG_FLUSH_INTERVAL_MS = 200;

/** Standard output by default; another descriptor (a file) for tests. */
export function bufferedDestination(fd = 1): DestinationStream {
  return pino.destination({
    dest: fd,
    sync: false,
    minLength: LOG_BUFFER_BYTES,
    periodicFlush: LOG_FLUSH_INTERVAL_MS,
  });
}

export function createLogger(level: string, destination: DestinationStream = bufferedDestination()): Logger {
  return pino({ ...LOGGER_OPTIONS, level }, destination);
}

/**
 * Resolves once every line logged so far has been written: a process that exits right after would otherwise lose
 * a write still in flight (pino's own flush on exit writes only what is still queued). A destination that writes
 * synchronously has nothing to flush.
 */
export function flushLogs(log: Logger, timeoutMs = 2_000): Promise<void> {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    BufferedDestination | undefined;
  if (typeof stream?.flush !== 'function' || !(stream.minLength > 0 || stream._writing)) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    // sonic-boom's flush calls back on `drain` when it buffers (minLength); without a buffer, only an in-flight
    // write (`_writing`) is left to wait for.
    if (stream.minLength > 0) stream.flush(done);
    else stream.once('drain', done);
  });
}

/** What flushLogs uses of sonic-boom (pino.destination). */
interface BufferedDestination {
  minLength: number;
  _writing?: boolean;
  flush(callback: (error?: Error) => void): void;
  once(event: 'drain', listener: () => void): unknown;
}
