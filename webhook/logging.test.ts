import { describe, expect, it } from 'vitest';
import { createLogger } from './logging.js';

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
