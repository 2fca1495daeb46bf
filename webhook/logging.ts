/**
 * The webhook's log lines: one JSON object per line, as log pipelines (Loki, Fluent Bit, Cloud Logging) expect
 * them: `time` in ISO 8601 (UTC) and `level` as a name ("info", "warn"), not pino's epoch milliseconds and numbers.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export const LOGGER_OPTIONS: LoggerOptions = {
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
};

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { ...LOGGER_OPTIONS, level };
  return destination ? pino(options, destination) : pino(options);
}
