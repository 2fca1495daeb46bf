/**
 * mesh-iptables' log: plain text by default, as istio-iptables prints it (`<time>\t<level>\t<message>`, and a
 * multi-line value such as the restore input or the configuration on lines of its own), or JSON lines with
 * `--log_as_json`. The interface is the part of pino's the init program uses, so a pino logger fits too (tests);
 * the program itself does not load pino, whose start-up cost every pod would pay.
 */

export type LogLevel = 'silent' | 'fatal' | 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'text' | 'json';

type Fields = Record<string, unknown>;

export interface LogFn {
  (fields: object, message: string): void;
  (message: string): void;
}

export interface Log {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  /** The same log, with `bindings` added to every entry. */
  child(bindings: object): Log;
}

const SEVERITY: Record<LogLevel, number> = {
  silent: Infinity,
  fatal: 60,
  error: 50,
  warn: 40,
  info: 30,
  debug: 20,
};

export interface LogEntry {
  level: Exclude<LogLevel, 'silent'>;
  time: Date;
  message: string;
  fields: Fields;
}

export interface LogOptions {
  format: LogFormat;
  level: LogLevel;
  /** Receives each rendered entry, newline-terminated. */
  write: (text: string) => void;
  /** The clock, for tests. */
  now?: () => Date;
}

export function createLog(options: LogOptions, bindings: Fields = {}): Log {
  const render = options.format === 'json' ? renderJsonEntry : renderTextEntry;
  const now = options.now ?? (() => new Date());
  const at =
    (level: LogEntry['level']): LogFn =>
    (first: object | string, message?: string) => {
      if (SEVERITY[level] < SEVERITY[options.level]) return;
      const [fields, text] = typeof first === 'string' ? [{}, first] : [first as Fields, message ?? ''];
      options.write(render({ level, time: now(), message: text, fields: { ...bindings, ...fields } }));
    };
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (more) => createLog(options, { ...bindings, ...(more as Fields) }),
  };
}

/** One JSON line: ISO-8601 time, the level by name, the message as `msg`, then the fields. */
export function renderJsonEntry(entry: LogEntry): string {
  const fields = { ...entry.fields };
  if (fields.err instanceof Error) fields.err = { message: fields.err.message, stack: fields.err.stack };
  return `${JSON.stringify({ time: entry.time.toISOString(), level: entry.level, msg: entry.message, ...fields })}\n`;
}

/**
 * istio-iptables' text form: `<time>\t<level>\t<message>`, short fields appended as `key=value`; a multi-line
 * string (restore input, iptables-save output) follows on its own lines, and an object one `key=value` per line.
 */
export function renderTextEntry(entry: LogEntry): string {
  const inline: string[] = [];
  const blocks: string[] = [];
  for (const [key, value] of Object.entries(entry.fields)) {
    if (value === undefined) continue;
    if (value instanceof Error) blocks.push(value.stack ?? value.message);
    else if (typeof value === 'string' && value.includes('\n')) blocks.push(value.trimEnd());
    else if (isRecord(value))
      blocks.push(...Object.entries(value).map(([name, item]) => `${name}=${scalar(item)}`));
    else inline.push(`${key}=${scalar(value)}`);
  }
  const head = [entry.message, ...inline].filter((part) => part !== '').join(' ');
  return [`${entry.time.toISOString()}\t${entry.level}\t${head}`, ...blocks].join('\n') + '\n';
}

function isRecord(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value on one line: strings as they are, lists comma-separated (as the flags take them), the rest as JSON. */
function scalar(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((item) => typeof item === 'string' || typeof item === 'number'))
    return value.join(',');
  return JSON.stringify(value) ?? String(value);
}
