import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { bufferedDestination, createLogger, flushLogs, LOG_FLUSH_INTERVAL_MS } from './logging.js';

function capture(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

describe("the webhook's log lines", () => {
  it('carry the level as a name and the time in ISO 8601 UTC', () => {
    const { log, lines } = capture();
    const before = Date.now();
    log.info({ namespace: 'shop' }, 'sidecar injected');
    log.warn('injection denied');
    const after = Date.now();
    expect(lines.map((line) => line.level)).toEqual(['info', 'warn']);
    for (const line of lines) {
      expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Date.parse(line.time as string)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(line.time as string)).toBeLessThanOrEqual(after);
    }
    expect(lines[0]).toMatchObject({ namespace: 'shop', msg: 'sidecar injected' });
  });

  it('keep the names in child loggers, and honour the level', () => {
    const { log, lines } = capture('warn');
    const child = log.child({ component: 'config' });
    child.info('not written');
    child.error('configuration is invalid');
    expect(lines).toEqual([expect.objectContaining({ level: 'error', component: 'config' })]);
  });
});

describe('an asynchronous destination', () => {
  it('has every line written once flushLogs resolves, in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-injector-log-'));
    const path = join(dir, 'log');
    const fd = openSync(path, 'w');
    try {
      const log = createLogger('info', pino.destination({ dest: fd, sync: false }));
      for (let i = 0; i < 2000; i++) log.info({ i, pad: 'x'.repeat(200) }, 'line');
      await flushLogs(log);
      const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
      expect(lines.map((line) => (JSON.parse(line) as { i: number }).i)).toEqual(
        Array.from({ length: 2000 }, (_, i) => i),
      );
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('buffers a few lines, and writes them on flushLogs', async () => {
    await withLogFile(async (fd, read) => {
      const log = createLogger('info', bufferedDestination(fd));
      log.info('first');
      log.info('second');
      expect(read()).toBe('');
      await flushLogs(log);
      expect(
        read()
          .trimEnd()
          .split('\n')
          .map((line) => (JSON.parse(line) as { msg: string }).msg),
      ).toEqual(['first', 'second']);
    });
  });

  it('writes buffered lines within the flush interval, with no flushLogs', async () => {
    await withLogFile(async (fd, read) => {
      const log = createLogger('info', bufferedDestination(fd));
      log.info('idle webhook');
      for (let waited = 0; read() === '' && waited < LOG_FLUSH_INTERVAL_MS * 5; waited += 10) await sleep(10);
      expect(read()).toContain('idle webhook');
    });
  });

  it('flushLogs resolves at once for a destination that writes synchronously', async () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (line: string) => void lines.push(line) });
    log.info('written');
    await flushLogs(log);
    expect(lines).toHaveLength(1);
  });
});

async function withLogFile(run: (fd: number, read: () => string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-injector-log-'));
  const path = join(dir, 'log');
  const fd = openSync(path, 'w');
  try {
    await run(fd, () => readFileSync(path, 'utf8'));
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
