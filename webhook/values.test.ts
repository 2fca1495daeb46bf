import { describe, expect, it } from 'vitest';
import { parseValues } from './values.js';

describe('values.yaml selectors', () => {
  it('accepts label selectors of strings', () => {
    const values = parseValues({
      neverInjectSelector: [
        { matchLabels: { app: 'batch' } },
        { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'test'] }] },
      ],
    });
    expect(values.neverInjectSelector).toHaveLength(2);
  });

  it.each([
    [{ matchLabels: { version: 1 } }, 'matchLabels.version is not a string'],
    [{ matchLabels: ['app'] }, 'matchLabels is not a mapping'],
    [{ matchExpressions: { key: 'env' } }, 'matchExpressions is not a list'],
    [{ matchExpressions: [{ operator: 'Exists' }] }, 'has no string key'],
    // A bare string would match by substring: "production" includes "prod".
    [{ matchExpressions: [{ key: 'env', operator: 'In', values: 'production' }] }, 'not a list of strings'],
    [{ matchExpressions: [{ key: 'env', operator: 'In', values: [1] }] }, 'not a list of strings'],
  ])('rejects %j, saying why', (selector, reason) => {
    expect(() => parseValues({ neverInjectSelector: [selector] })).toThrow(reason);
  });
});
