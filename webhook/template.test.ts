import { describe, expect, it } from 'vitest';
import { compileTemplate, renderTemplate, TemplateError } from './template.js';

const data = {
  proxy: {
    image: 'envoy:1',
    uid: 1337,
    args: ['-a', '-b'],
    resources: { limits: { cpu: '1' } },
    nothing: null,
  },
  hostile: '"}\n- name: injected\n  image: evil {{ proxy.image }}',
};

describe('template rendering by structural substitution', () => {
  it('replaces a whole-value placeholder with the value, keeping its type', () => {
    expect(
      renderTemplate({ image: '{{ proxy.image }}', uid: '{{proxy.uid}}', r: '{{ proxy.resources }}' }, data),
    ).toEqual({
      image: 'envoy:1',
      uid: 1337,
      r: { limits: { cpu: '1' } },
    });
  });

  it('removes a key whose placeholder is null', () => {
    expect(renderTemplate({ keep: 1, pull: '{{ proxy.nothing }}' }, data)).toEqual({ keep: 1 });
  });

  it('splices a list placeholder into a list', () => {
    expect(renderTemplate({ args: ['first', '{{ ...proxy.args }}', 'last'] }, data)).toEqual({
      args: ['first', '-a', '-b', 'last'],
    });
  });

  it('interpolates scalars into text', () => {
    expect(renderTemplate({ cmd: 'run as {{ proxy.uid }} with {{ proxy.image }}' }, data)).toEqual({
      cmd: 'run as 1337 with envoy:1',
    });
  });

  it('never lets a value add structure or placeholders of its own', () => {
    const rendered = renderTemplate(
      { containers: [{ name: 'x', image: '{{ hostile }}' }], text: 'v={{ hostile }}' },
      data,
    );
    expect(rendered).toEqual({ containers: [{ name: 'x', image: data.hostile }], text: `v=${data.hostile}` });
  });

  it('does not share objects between the data and the result', () => {
    const rendered = renderTemplate({ r: '{{ proxy.resources }}' }, data) as {
      r: { limits: { cpu: string } };
    };
    rendered.r.limits.cpu = '2';
    expect(data.proxy.resources.limits.cpu).toBe('1');
  });

  it('copies a `__proto__` key of parsed JSON as data, never as the copy’s prototype', () => {
    const parsed = JSON.parse('{"volume": {"__proto__": {"polluted": true}, "name": "v"}}') as Record<
      string,
      unknown
    >;
    const rendered = renderTemplate({ v: '{{ volume }}' }, parsed) as { v: Record<string, unknown> };
    expect(Object.getPrototypeOf(rendered.v)).toBe(Object.prototype);
    expect(rendered.v.polluted).toBeUndefined();
    expect(JSON.stringify(rendered.v)).toBe('{"__proto__":{"polluted":true},"name":"v"}');
  });

  it.each([
    [{ a: '{{ proxy.missing }}' }, 'unknown placeholder proxy.missing'],
    [{ a: 'x {{ proxy.args }}' }, 'cannot be interpolated'],
    [{ a: ['{{ ...proxy.image }}'] }, 'is not a list'],
    [{ a: 'x {{ proxy.image }' }, 'malformed placeholder'],
    [{ a: '{{ proxy image }}' }, 'malformed placeholder'],
  ])('rejects %j with a message saying where', (template, message) => {
    expect(() => renderTemplate(template, data)).toThrow(TemplateError);
    expect(() => renderTemplate(template, data)).toThrow(message);
  });
});

describe('a compiled template', () => {
  it('renders afresh each time: two renderings share no object with each other or the template', () => {
    const template = {
      securityContext: { drop: ['ALL'] },
      args: ['{{ ...proxy.args }}'],
      r: '{{ proxy.resources }}',
    };
    const render = compileTemplate(template);
    const first = render(data) as typeof template;
    const second = render(data) as typeof template;
    expect(second).toEqual(first);
    expect(second.securityContext).not.toBe(first.securityContext);
    expect(second.securityContext.drop).not.toBe(template.securityContext.drop);
    expect(second.r).not.toBe(first.r);
    expect(second.args).not.toBe(first.args);
  });

  it('reports a malformed placeholder when rendering, after an earlier unknown placeholder', () => {
    const render = compileTemplate({ a: '{{ proxy.missing }}', b: 'x {{ proxy.image }' });
    expect(() => render(data)).toThrow('a: unknown placeholder proxy.missing');
  });
});
