import { describe, expect, it } from 'vitest';
import { parseRfc3339, parseTaskEvent } from './real-node.js';

describe("ctr events' task lines", () => {
  it('dates a task start by the event, to the microsecond', () => {
    const event = parseTaskEvent(
      '2026-12-03 22:55:01.123456789 +0000 UTC k8s.io /tasks/start {"container_id":"abc","pid":42}',
    );
    expect(event?.topic).toBe('/tasks/start');
    expect(event?.containerId).toBe('abc');
    expect(event?.at).toBeCloseTo(Date.UTC(2026, 11, 3, 22, 55, 1) + 123.456789, 3);
  });

  it("dates a task exit by its exited_at, not by the event's later publication", () => {
    const event = parseTaskEvent(
      '2026-12-03 22:55:02 +0000 UTC k8s.io /tasks/exit ' +
        '{"container_id":"abc","id":"abc","pid":42,"exited_at":"2026-12-03T22:55:01.987654321Z"}',
    );
    expect(event?.topic).toBe('/tasks/exit');
    expect(event?.at).toBeCloseTo(Date.UTC(2026, 11, 3, 22, 55, 1) + 987.654321, 3);
  });

  it('applies the zone offset', () => {
    const event = parseTaskEvent(
      '2026-12-03 23:55:01.5 +0100 CET k8s.io /tasks/start {"container_id":"abc","pid":42}',
    );
    expect(event?.at).toBeCloseTo(Date.UTC(2026, 11, 3, 22, 55, 1) + 500, 3);
  });

  it('ignores other topics and lines', () => {
    expect(
      parseTaskEvent('2026-12-03 22:55:01 +0000 UTC k8s.io /containers/create {"id":"abc"}'),
    ).toBeUndefined();
    expect(parseTaskEvent('')).toBeUndefined();
  });

  it('reads RFC 3339 times with nanoseconds and offsets', () => {
    expect(parseRfc3339('2026-12-03T22:55:01.000001Z')).toBeCloseTo(
      Date.UTC(2026, 11, 3, 22, 55, 1) + 0.001,
      4,
    );
    expect(parseRfc3339('2026-12-03T23:55:01+01:00')).toBe(Date.UTC(2026, 11, 3, 22, 55, 1));
    expect(() => parseRfc3339('yesterday')).toThrow(/not an RFC 3339 time/);
  });
});
