import { describe, expect, it } from 'vitest';
import { buildRestoreTexts } from './rules.js';
import { configFor, tableChains, tableRules } from './test-support.js';

/** The restore texts for Istio's golden-test base flags plus `args`. */
function texts(args: readonly string[], env: Record<string, string> = {}) {
  return buildRestoreTexts(configFor(args, env));
}
const v4 = (args: readonly string[], env: Record<string, string> = {}) => texts(args, env).ipv4;
const v6 = (args: readonly string[], env: Record<string, string> = {}) => {
  const ipv6 = texts(['--ipv6=true', ...args], env).ipv6;
  if (ipv6 === undefined) throw new Error('no IPv6 text');
  return ipv6;
};

describe('the default rule set (no capture flags)', () => {
  const text = v4([]);

  it('is nat only, with the four ISTIO_ chains declared first', () => {
    expect(
      text.startsWith('* nat\n-N ISTIO_INBOUND\n-N ISTIO_REDIRECT\n-N ISTIO_IN_REDIRECT\n-N ISTIO_OUTPUT\n'),
    ).toBe(true);
    expect(text.endsWith('COMMIT\n')).toBe(true);
    expect(text).not.toMatch(/^\* (mangle|raw|filter)$/m);
  });

  it('returns the tunnel port and sets up both redirect targets', () => {
    expect(tableRules(text, 'nat').slice(0, 3)).toEqual([
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
    ]);
  });

  it('captures nothing: no PREROUTING jump and no outbound redirect', () => {
    expect(text).not.toContain('-A PREROUTING');
    expect(text).not.toContain('-j ISTIO_REDIRECT');
  });

  it("exempts the passthrough source, the proxy's uid and gid, and the loopback CIDR, in Istio's order", () => {
    expect(tableRules(text, 'nat').slice(3)).toEqual([
      '-A OUTPUT -j ISTIO_OUTPUT',
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    ]);
  });

  it('uses the configured ports in the redirect targets and the tunnel exemption', () => {
    const text = v4(['-p', '16001', '-z', '16006', '-e', '16008']);
    expect(text).toContain('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001\n');
    expect(text).toContain('-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006\n');
    expect(text).toContain('-A ISTIO_INBOUND -p tcp --dport 16008 -j RETURN\n');
    expect(text).toContain('! --dport 16008 -m owner --uid-owner 1337');
  });
});

describe('inbound ports (-b, -d)', () => {
  it('redirects each listed port, in the given order', () => {
    const rules = tableRules(v4(['-b', '32000,31000']), 'nat');
    expect(rules).toContain('-A PREROUTING -p tcp -j ISTIO_INBOUND');
    const redirects = rules.filter(
      (rule) => rule.endsWith('-j ISTIO_IN_REDIRECT') && rule.startsWith('-A ISTIO_INBOUND'),
    );
    expect(redirects).toEqual([
      '-A ISTIO_INBOUND -p tcp --dport 32000 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_INBOUND -p tcp --dport 31000 -j ISTIO_IN_REDIRECT',
    ]);
  });

  it('with "*", returns the -d ports first and then redirects everything else', () => {
    const rules = tableRules(v4(['-b', '*', '-d', '15090,15021,15020']), 'nat');
    const start = rules.indexOf('-A PREROUTING -p tcp -j ISTIO_INBOUND');
    expect(rules.slice(start, start + 5)).toEqual([
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
    ]);
  });

  it('ignores -d when -b is a list (as Istio does)', () => {
    expect(v4(['-b', '4000', '-d', '6000'])).not.toContain('6000');
  });

  it('passes port ranges to --dport', () => {
    expect(v4(['-b', '8000:8100'])).toContain(
      '-A ISTIO_INBOUND -p tcp --dport 8000:8100 -j ISTIO_IN_REDIRECT\n',
    );
  });

  it('builds the same rules for -m NONE and -m REDIRECT', () => {
    expect(v4(['-b', '*', '-m', 'NONE'])).toBe(v4(['-b', '*', '-m', 'REDIRECT']));
  });
});

describe('TPROXY inbound capture (-m TPROXY)', () => {
  const text = v4(['-m', 'TPROXY', '-b', '32000', '-t', '1444']);
  const mangle = tableRules(text, 'mangle');

  it('moves the inbound capture to mangle: DIVERT marks, TPROXY to the inbound port', () => {
    expect(mangle.slice(0, 6)).toEqual([
      '-A ISTIO_DIVERT -j MARK --set-mark 1444',
      '-A ISTIO_DIVERT -j ACCEPT',
      '-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --tproxy-mark 1444/0xffffffff --on-port 15006',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A ISTIO_INBOUND -p tcp --dport 32000 -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT',
      '-A ISTIO_INBOUND -p tcp --dport 32000 -j ISTIO_TPROXY',
    ]);
    expect(tableChains(text, 'mangle')).toEqual(['-N ISTIO_DIVERT', '-N ISTIO_TPROXY', '-N ISTIO_INBOUND']);
  });

  it('has no nat PREROUTING jump', () => {
    expect(tableRules(text, 'nat')).not.toContain('-A PREROUTING -p tcp -j ISTIO_INBOUND');
  });

  it('ends mangle with the mark-keeping tail and the three ISTIO_INBOUND inserts', () => {
    expect(mangle.slice(6)).toEqual([
      '-A PREROUTING -p tcp -m mark --mark 1444 -j CONNMARK --save-mark',
      '-A OUTPUT -p tcp -o lo -m mark --mark 1444 -j RETURN',
      '-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --uid-owner 1337 -j MARK --set-mark 1338',
      '-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --gid-owner 1337 -j MARK --set-mark 1338',
      '-A OUTPUT -p tcp -m connmark --mark 1444 -j CONNMARK --restore-mark',
      '-I ISTIO_INBOUND 1 -p tcp -m mark --mark 1444 -j RETURN',
      '-I ISTIO_INBOUND 2 -p tcp -s 127.0.0.6/32 -i lo -j RETURN',
      '-I ISTIO_INBOUND 3 -p tcp -i lo -m mark ! --mark 1338 -j RETURN',
    ]);
  });

  it('with "*": -d returns, then established connections to DIVERT and new ones to TPROXY', () => {
    const rules = tableRules(v4(['-m', 'TPROXY', '-b', '*', '-d', '15020']), 'mangle');
    expect(rules).toContain('-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN');
    const at = rules.indexOf('-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN');
    expect(rules.slice(at + 1, at + 3)).toEqual([
      '-A ISTIO_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY',
    ]);
  });

  it('emits the tail even without inbound ports (an Istio edge kept as is)', () => {
    const rules = tableRules(v4(['-m', 'TPROXY']), 'mangle');
    expect(rules).toContain('-I ISTIO_INBOUND 1 -p tcp -m mark --mark 1337 -j RETURN');
    expect(rules).not.toContain('-A PREROUTING -p tcp -j ISTIO_INBOUND');
  });

  it('uses ::1/128 and ::6/128 in the IPv6 mangle rules', () => {
    const rules = tableRules(v6(['-m', 'TPROXY', '-b', '*']), 'mangle');
    expect(rules).toContain(
      '-A ISTIO_TPROXY ! -d ::1/128 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006',
    );
    expect(rules).toContain('-I ISTIO_INBOUND 2 -p tcp -s ::6/128 -i lo -j RETURN');
  });
});

describe('outbound CIDRs (-i, -x)', () => {
  it('with "*", redirects all remaining outbound traffic last', () => {
    expect(tableRules(v4(['-i', '*']), 'nat').at(-1)).toBe('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  });

  it('excludes come after the loopback RETURN and before the includes', () => {
    const rules = tableRules(v4(['-x', '1.1.0.0/16', '-i', '9.9.0.0/16,10.0.0.0/8']), 'nat');
    expect(rules.slice(-4)).toEqual([
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 1.1.0.0/16 -j RETURN',
      '-A ISTIO_OUTPUT -d 9.9.0.0/16 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT',
    ]);
  });

  it('puts each family only in its own text, IPv6 in canonical form', () => {
    const both = texts(['--ipv6=true', '-x', '1.1.0.0/16,2001:DB8:0::/32', '-i', '10.0.0.0/8,fd00::/8']);
    expect(both.ipv4).toContain('-d 1.1.0.0/16 -j RETURN');
    expect(both.ipv4).not.toContain('2001:db8');
    expect(both.ipv6).toContain('-A ISTIO_OUTPUT -d 2001:db8::/32 -j RETURN');
    expect(both.ipv6).toContain('-A ISTIO_OUTPUT -d fd00::/8 -j ISTIO_REDIRECT');
    expect(both.ipv6).not.toContain('10.0.0.0/8');
  });

  it('keeps IPv4 host bits as written (netip does not mask)', () => {
    expect(v4(['-i', '10.1.2.3/8'])).toContain('-A ISTIO_OUTPUT -d 10.1.2.3/8 -j ISTIO_REDIRECT');
  });

  it('tolerates empty items, as Istio does', () => {
    expect(v4(['-i', '10.0.0.0/8,,'])).toBe(v4(['-i', '10.0.0.0/8']));
  });

  it('drops the lo RETURNs of the proxy owners, in both families, when an include is a loopback address', () => {
    const both = texts(['--ipv6=true', '-i', '127.1.2.3/32']);
    for (const text of [both.ipv4, both.ipv6 ?? '']) {
      expect(text).not.toContain('-o lo -m owner ! --uid-owner');
      expect(text).not.toContain('-o lo -m owner ! --gid-owner');
      expect(text).toContain('-m owner --uid-owner 1337 -j RETURN');
    }
    expect(both.ipv4).toContain('-A ISTIO_OUTPUT -d 127.1.2.3/32 -j ISTIO_REDIRECT');
  });
});

describe('outbound ports (-q, -o)', () => {
  it('-q redirects each port after the excludes and before the CIDR includes', () => {
    const rules = tableRules(v4(['-q', '32000,31000', '-x', '1.1.0.0/16', '-i', '9.9.0.0/16']), 'nat');
    expect(rules.slice(-4)).toEqual([
      '-A ISTIO_OUTPUT -d 1.1.0.0/16 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp --dport 32000 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -p tcp --dport 31000 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 9.9.0.0/16 -j ISTIO_REDIRECT',
    ]);
  });

  it('-o returns TCP and UDP right after the OUTPUT jump, before the proxy rules', () => {
    const rules = tableRules(v4(['-o', '5555,7000:7010']), 'nat');
    const at = rules.indexOf('-A OUTPUT -j ISTIO_OUTPUT');
    expect(rules.slice(at + 1, at + 6)).toEqual([
      '-A ISTIO_OUTPUT -p tcp --dport 5555 -j RETURN',
      '-A ISTIO_OUTPUT -p udp --dport 5555 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp --dport 7000:7010 -j RETURN',
      '-A ISTIO_OUTPUT -p udp --dport 7000:7010 -j RETURN',
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
    ]);
  });
});

describe('interfaces (-c, -k)', () => {
  it('-c returns the interface in PREROUTING and OUTPUT as the very first nat rules', () => {
    expect(tableRules(v4(['-c', 'not-istio-nic']), 'nat').slice(0, 2)).toEqual([
      '-A PREROUTING -i not-istio-nic -j RETURN',
      '-A OUTPUT -o not-istio-nic -j RETURN',
    ]);
  });

  it('-c is repeated in mangle in TPROXY mode', () => {
    expect(tableRules(v4(['-c', 'eth9', '-m', 'TPROXY', '-b', '*']), 'mangle').slice(0, 2)).toEqual([
      '-A PREROUTING -i eth9 -j RETURN',
      '-A OUTPUT -o eth9 -j RETURN',
    ]);
  });

  it('-k inserts RETURNs at PREROUTING 1 early, and with "*" redirect inserts after the OUTPUT catch-all', () => {
    const rules = tableRules(v4(['-k', 'eth1,eth2', '-i', '*']), 'nat');
    expect(rules.slice(0, 2)).toEqual([
      '-I PREROUTING 1 -i eth1 -j RETURN',
      '-I PREROUTING 1 -i eth2 -j RETURN',
    ]);
    expect(rules.slice(-3)).toEqual([
      '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
      '-I PREROUTING 1 -i eth1 -j ISTIO_REDIRECT',
      '-I PREROUTING 1 -i eth2 -j ISTIO_REDIRECT',
    ]);
  });

  it('-k with CIDRs inserts a redirect per interface before each CIDR include', () => {
    const rules = tableRules(v4(['-k', 'eth1', '-i', '10.0.0.0/8,11.0.0.0/8']), 'nat');
    expect(rules.slice(-4)).toEqual([
      '-I PREROUTING 1 -i eth1 -d 10.0.0.0/8 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT',
      '-I PREROUTING 1 -i eth1 -d 11.0.0.0/8 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 11.0.0.0/8 -j ISTIO_REDIRECT',
    ]);
  });

  it('-k without outbound capture only returns', () => {
    expect(v4(['-k', 'eth1'])).not.toContain('-i eth1 -j ISTIO_REDIRECT');
    expect(v6(['-k', 'eth1'])).toContain('-I PREROUTING 1 -i eth1 -j RETURN');
  });
});

describe('proxy users and groups (-u, -g)', () => {
  it('emits one triple per uid, then one per gid, each in list order', () => {
    const owners = tableRules(v4(['-u', '3,4', '-g', '1,2']), 'nat')
      .map((rule) => /--(uid|gid)-owner (\S+)/.exec(rule)?.slice(1).join(' '))
      .filter(Boolean);
    expect(owners).toEqual([
      'uid 3',
      'uid 3',
      'uid 3',
      'uid 4',
      'uid 4',
      'uid 4',
      'gid 1',
      'gid 1',
      'gid 1',
      'gid 2',
      'gid 2',
      'gid 2',
    ]);
  });

  it("accepts names and id ranges, which iptables' owner match takes", () => {
    const text = v4(['-u', 'istio-proxy', '-g', '1000-1010']);
    expect(text).toContain('-A ISTIO_OUTPUT -m owner --uid-owner istio-proxy -j RETURN');
    expect(text).toContain('-A ISTIO_OUTPUT -m owner --gid-owner 1000-1010 -j RETURN');
  });
});

describe('owner groups (ISTIO_OUTBOUND_OWNER_GROUPS, _EXCLUDE)', () => {
  it('an include list becomes one RETURN for traffic of none of the groups, before the loopback RETURN', () => {
    const rules = tableRules(v4([], { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' }), 'nat');
    expect(rules.slice(-2)).toEqual([
      '-A ISTIO_OUTPUT -m owner ! --gid-owner java -m owner ! --gid-owner 202 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    ]);
  });

  it('with "*", each excluded group gets its own RETURN', () => {
    const rules = tableRules(v4([], { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888,ftp' }), 'nat');
    expect(rules.slice(-3, -1)).toEqual([
      '-A ISTIO_OUTPUT -m owner --gid-owner 888 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner ftp -j RETURN',
    ]);
  });

  it('ignores the exclude list when the include list is not "*"', () => {
    expect(
      v4([], { ISTIO_OUTBOUND_OWNER_GROUPS: '5', ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '6' }),
    ).not.toContain('6 -j');
  });

  it('an empty include list returns everything (Istio: capture no group)', () => {
    expect(v4(['-i', '*'], { ISTIO_OUTBOUND_OWNER_GROUPS: '' })).toContain('-A ISTIO_OUTPUT -j RETURN\n');
  });
});

describe('DNS capture (--redirect-dns)', () => {
  const withServers = ['--redirect-dns', '--dns-servers=127.0.0.53,::127.0.0.53'];

  it('uses the multiport form for uids only, and keeps port 53 out of the lo RETURNs', () => {
    const text = v4(withServers);
    expect(text).toContain(
      '-o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 1337',
    );
    expect(text).toContain('-o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337');
    expect(text).toContain('-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 1337 -j RETURN');
    expect(text).toContain('-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --gid-owner 1337 -j RETURN');
  });

  it('redirects TCP (--to-ports) and UDP (--to-port) to each server of the family, before the loopback RETURN', () => {
    const rules = tableRules(v4(withServers), 'nat');
    expect(rules.slice(-4)).toEqual([
      '-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS',
      '-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d 127.0.0.53/32 -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 127.0.0.53/32 -j REDIRECT --to-port 15053',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    ]);
    expect(tableRules(v6(withServers), 'nat')).toContain(
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d ::127.0.0.53/128 -j REDIRECT --to-port 15053',
    );
  });

  it('splits DNS into conntrack zones in raw: per owner, then per server', () => {
    expect(tableRules(v4(withServers), 'raw')).toEqual([
      '-A OUTPUT -j ISTIO_OUTPUT_DNS',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1',
      '-A ISTIO_OUTPUT_DNS -p udp --sport 15053 -m owner --uid-owner 1337 -j CT --zone 2',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --gid-owner 1337 -j CT --zone 1',
      '-A ISTIO_OUTPUT_DNS -p udp --sport 15053 -m owner --gid-owner 1337 -j CT --zone 2',
      '-A PREROUTING -j ISTIO_INBOUND',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 127.0.0.53/32 -j CT --zone 2',
      '-A ISTIO_INBOUND -p udp --sport 53 -s 127.0.0.53/32 -j CT --zone 1',
    ]);
  });

  it('a family without servers gets no nat DNS jump and no raw PREROUTING', () => {
    const text = v6(['--redirect-dns', '--dns-servers=10.0.0.10']);
    expect(text).not.toContain('-j ISTIO_OUTPUT_DNS\n-A ISTIO_OUTPUT_DNS -p tcp');
    expect(tableRules(text, 'nat')).not.toContain('-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS');
    expect(tableRules(text, 'raw')).not.toContain('-A PREROUTING -j ISTIO_INBOUND');
    expect(tableRules(text, 'raw')).toContain('-A OUTPUT -j ISTIO_OUTPUT_DNS');
  });

  it('--capture-all-dns captures all port 53 traffic in both families', () => {
    for (const text of [
      v4(['--redirect-dns', '--capture-all-dns']),
      v6(['--redirect-dns', '--capture-all-dns']),
    ]) {
      expect(tableRules(text, 'nat')).toEqual(
        expect.arrayContaining([
          '-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS',
          '-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -j REDIRECT --to-ports 15053',
          '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053',
        ]),
      );
      expect(tableRules(text, 'raw').slice(-3)).toEqual([
        '-A PREROUTING -j ISTIO_INBOUND',
        '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j CT --zone 2',
        '-A ISTIO_INBOUND -p udp --sport 53 -j CT --zone 1',
      ]);
    }
  });

  it('is off when there are no servers and capture-all is off', () => {
    expect(v4(['--redirect-dns', '--dns-servers='])).toBe(v4([]));
  });
});

describe('drop-invalid, the loopback CIDR, and IPv6', () => {
  it('--drop-invalid adds mangle ISTIO_DROP, sorted before nat', () => {
    const text = v4(['--drop-invalid']);
    expect(text.startsWith('* mangle\n-N ISTIO_DROP\n')).toBe(true);
    expect(tableRules(text, 'mangle')).toEqual([
      '-A PREROUTING -m conntrack --ctstate INVALID -j ISTIO_DROP',
      '-A ISTIO_DROP -j DROP',
    ]);
  });

  it('ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR replaces 127.0.0.1/32 everywhere but the passthrough source', () => {
    const text = v4(['-m', 'TPROXY', '-b', '*'], { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8' });
    expect(text).not.toContain('127.0.0.1/32');
    expect(text).toContain('-A ISTIO_OUTPUT -d 127.0.0.1/8 -j RETURN');
    expect(text).toContain('-A ISTIO_TPROXY ! -d 127.0.0.1/8 -p tcp');
    expect(text).toContain('-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN');
  });

  it('IPv6 off: no IPv6 text at all', () => {
    expect(texts(['-b', '*']).ipv6).toBeUndefined();
  });

  it('IPv6 on: the same rules with ::1/128 and ::6/128', () => {
    const text = v6(['-b', '*', '-i', '*']);
    expect(text).toContain('-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN');
    expect(text).toContain('-A ISTIO_OUTPUT -d ::1/128 -j RETURN');
    expect(text).toContain('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
    expect(text).not.toContain('127.0.0.1');
  });
});
