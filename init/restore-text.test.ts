import { describe, expect, it } from 'vitest';
import { renderRestoreText, rulesetOf } from './restore-text.js';
import type { TableRule } from './ruleset.js';

/** A rule of `table` from its line, `-A CHAIN spec` or `-I CHAIN N spec`. */
function rule(table: string, line: string): TableRule {
  const [command, chain = '', ...rest] = line.split(' ');
  if (command === '-A') return { table, chain, spec: rest.join(' ') };
  return { table, chain, insertAt: Number(rest[0]), spec: rest.slice(1).join(' ') };
}

/** The restore text of rules listed in emission order, as mesh-iptables renders its configured rules. */
const render = (rules: TableRule[]) => renderRestoreText(rulesetOf(rules));

describe("iptables-restore text (Istio's buildRestore)", () => {
  it('writes "* table", the -N lines, the rules, COMMIT; every line ends in a newline', () => {
    expect(render([rule('nat', '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001')])).toBe(
      '* nat\n-N ISTIO_REDIRECT\n-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n',
    );
  });

  it('sorts tables by name and leaves out tables without rules', () => {
    const text = render([
      rule('raw', '-A OUTPUT -j ISTIO_OUTPUT_DNS'),
      rule('nat', '-A OUTPUT -j ISTIO_OUTPUT'),
      rule('mangle', '-A ISTIO_DROP -j DROP'),
    ]);
    expect(text.match(/^\* \w+$/gm)).toEqual(['* mangle', '* nat', '* raw']);
  });

  it("declares each table's chains in order of first appearance, then jump targets never used as a chain", () => {
    const text = render([
      rule('nat', '-A OUTPUT -j ISTIO_OUTPUT'),
      rule('nat', '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN'),
      rule('nat', '-A ISTIO_OUTPUT -j ISTIO_REDIRECT'),
      rule('nat', '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT'),
    ]);
    expect(text.match(/^-N .*$/gm)).toEqual([
      '-N ISTIO_INBOUND',
      '-N ISTIO_OUTPUT',
      '-N ISTIO_REDIRECT',
      '-N ISTIO_IN_REDIRECT',
    ]);
  });

  it('declares no built-in chain or target, and treats only a final "-j X" as a jump', () => {
    const text = render([
      rule('mangle', '-A PREROUTING -p tcp -m mark --mark 1337 -j CONNMARK --save-mark'),
      rule('mangle', '-A OUTPUT -p tcp -j ACCEPT'),
      rule('mangle', '-A FORWARD -j DROP'),
    ]);
    expect(text).not.toContain('-N');
  });

  it('declares a chain once per table, and again in another table', () => {
    const text = render([
      rule('nat', '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN'),
      rule('raw', '-A PREROUTING -j ISTIO_INBOUND'),
      rule('nat', '-A PREROUTING -p tcp -j ISTIO_INBOUND'),
    ]);
    expect(text.match(/^-N ISTIO_INBOUND$/gm)).toHaveLength(2);
  });

  it('keeps inserts as "-I CHAIN N" in emission order', () => {
    const text = render([
      rule('nat', '-I PREROUTING 1 -i eth1 -j RETURN'),
      rule('nat', '-A ISTIO_OUTPUT -j RETURN'),
    ]);
    expect(text).toBe(
      '* nat\n-N ISTIO_OUTPUT\n-I PREROUTING 1 -i eth1 -j RETURN\n-A ISTIO_OUTPUT -j RETURN\nCOMMIT\n',
    );
  });

  it('keeps the chains to create before the built-in chains in the model, each table on its own', () => {
    expect(
      rulesetOf([
        rule('nat', '-A OUTPUT -j ISTIO_OUTPUT'),
        rule('nat', '-I PREROUTING 1 -i eth1 -j RETURN'),
        rule('mangle', '-A ISTIO_DROP -j DROP'),
      ]),
    ).toEqual({
      tables: [
        { name: 'mangle', chains: ['ISTIO_DROP'], rules: [{ chain: 'ISTIO_DROP', spec: '-j DROP' }] },
        {
          name: 'nat',
          chains: ['ISTIO_OUTPUT', 'OUTPUT', 'PREROUTING'],
          rules: [
            { chain: 'OUTPUT', spec: '-j ISTIO_OUTPUT' },
            { chain: 'PREROUTING', spec: '-i eth1 -j RETURN', insertAt: 1 },
          ],
        },
      ],
    });
  });

  it('is empty for no rules', () => {
    expect(render([])).toBe('');
  });
});
