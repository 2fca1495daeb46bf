import { describe, expect, it } from 'vitest';
import { createLog, renderJsonEntry, renderTextEntry, type LogOptions } from './log.js';

const time = new Date('2026-01-02T03:04:05.678Z');

function recorded(options: Partial<LogOptions> = {}) {
  const lines: string[] = [];
  const log = createLog({
    format: 'text',
    level: 'info',
    write: (text) => lines.push(text),
    now: () => time,
    ...options,
  });
  return { log, lines };
}

describe('the text log (istio-iptables style)', () => {
  it('writes time, level and message tab-separated, short fields as key=value', () => {
    expect(
      renderTextEntry({
        level: 'info',
        time,
        message: 'binary selected',
        fields: { family: 'ipv4', version: '1.8.9' },
      }),
    ).toBe('2026-01-02T03:04:05.678Z\tinfo\tbinary selected family=ipv4 version=1.8.9\n');
  });

  it('puts a multi-line value (the restore input) on lines of its own, unchanged', () => {
    const input = '* nat\n-N ISTIO_OUTPUT\n-A OUTPUT -j ISTIO_OUTPUT\nCOMMIT\n';
    expect(
      renderTextEntry({
        level: 'info',
        time,
        message: 'iptables-restore input',
        fields: { family: 'ipv6', input },
      }),
    ).toBe(`2026-01-02T03:04:05.678Z\tinfo\tiptables-restore input family=ipv6\n${input}`);
  });

  it('writes an object one key=value per line, lists comma-separated', () => {
    const text = renderTextEntry({
      level: 'info',
      time,
      message: 'effective configuration',
      fields: { config: { proxyPort: 15001, inboundPorts: ['80', '443'], ipv6: false } },
    });
    expect(text).toBe(
      '2026-01-02T03:04:05.678Z\tinfo\teffective configuration\nproxyPort=15001\ninboundPorts=80,443\nipv6=false\n',
    );
  });
});

describe('the JSON log (--log_as_json)', () => {
  it('writes one line: ISO time, the level by name, msg, then the fields', () => {
    const line = renderJsonEntry({ level: 'warn', time, message: 'careful', fields: { family: 'ipv4' } });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.trimEnd()).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({
      time: '2026-01-02T03:04:05.678Z',
      level: 'warn',
      msg: 'careful',
      family: 'ipv4',
    });
  });

  it('keeps an error readable', () => {
    const parsed = JSON.parse(
      renderJsonEntry({ level: 'error', time, message: 'failed', fields: { err: new Error('boom') } }),
    );
    expect(parsed.err).toMatchObject({ message: 'boom', stack: expect.stringContaining('Error: boom') });
  });
});

describe('createLog', () => {
  it('drops entries below the level, and "silent" drops everything', () => {
    const { log, lines } = recorded({ level: 'warn' });
    log.info('not shown');
    log.debug({ a: 1 }, 'not shown');
    log.warn('shown');
    log.error({ b: 2 }, 'shown too');
    expect(lines.map((line) => line.split('\t')[1])).toEqual(['warn', 'error']);
    const silent = recorded({ level: 'silent' });
    silent.log.error('nothing');
    expect(silent.lines).toEqual([]);
  });

  it('a child adds its bindings to every entry', () => {
    const { log, lines } = recorded({ format: 'json' });
    log.child({ family: 'ipv6' }).info({ step: 'plan' }, 'planned');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ family: 'ipv6', step: 'plan', msg: 'planned' });
  });
});
