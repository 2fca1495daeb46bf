import { describe, expect, it } from 'vitest';
import { parseRestoreText, ruleCount, toPerRuleScript, toRestoreText, tokenize } from './restore-text.js';

describe('parseRestoreText', () => {
  it('reads iptables-save form: user chains from `:NAME - [0:0]`, built-in chains skipped', () => {
    const tables = parseRestoreText(
      [
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':ISTIO_INBOUND - [0:0]',
        '-A PREROUTING -p tcp -j ISTIO_INBOUND',
        'COMMIT',
      ].join('\n'),
    );
    expect(tables).toEqual([
      {
        table: 'nat',
        rules: [
          ['-N', 'ISTIO_INBOUND'],
          ['-A', 'PREROUTING', '-p', 'tcp', '-j', 'ISTIO_INBOUND'],
        ],
      },
    ]);
  });

  it("reads Istio's golden form (`* nat`, `-N` lines) and ignores transcript lines outside a table", () => {
    const tables = parseRestoreText(
      [
        'iptables-save',
        '* nat',
        '-N ISTIO_OUTPUT',
        '-I OUTPUT 1 -j ISTIO_OUTPUT',
        'COMMIT',
        'iptables-save',
      ].join('\n'),
    );
    expect(tables).toEqual([
      {
        table: 'nat',
        rules: [
          ['-N', 'ISTIO_OUTPUT'],
          ['-I', 'OUTPUT', '1', '-j', 'ISTIO_OUTPUT'],
        ],
      },
    ]);
    expect(ruleCount(tables)).toBe(2);
  });

  it('drops tables without rules', () => {
    expect(parseRestoreText('*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n')).toEqual([]);
  });
});

describe('tokenize', () => {
  it('keeps a double-quoted comment as one argument', () => {
    expect(tokenize('-A OUTPUT -m comment --comment "a b" -j RETURN')).toEqual([
      '-A',
      'OUTPUT',
      '-m',
      'comment',
      '--comment',
      'a b',
      '-j',
      'RETURN',
    ]);
  });

  it('rejects an unbalanced quote instead of guessing', () => {
    expect(() => tokenize('-A OUTPUT --comment "open')).toThrow(/unbalanced quote/);
  });
});

describe('rendering', () => {
  const tables = parseRestoreText(
    '*nat\n:ISTIO_REDIRECT - [0:0]\n-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n-A OUTPUT -m comment --comment "it\'s" -j RETURN\nCOMMIT\n',
  );

  it('gives restore text that parses back to the same rules', () => {
    expect(parseRestoreText(toRestoreText(tables))).toEqual(tables);
  });

  it('gives one quoted iptables command per rule, stopping at the first failure', () => {
    expect(toPerRuleScript(tables, 'iptables-nft').split('\n')).toEqual([
      'set -e',
      'iptables-nft -t nat -N ISTIO_REDIRECT',
      'iptables-nft -t nat -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      `iptables-nft -t nat -A OUTPUT -m comment --comment 'it'\\''s' -j RETURN`,
      '',
    ]);
  });
});
