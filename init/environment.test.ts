import { describe, expect, it } from 'vitest';
import { detectIpv6, dnsServersOf, uidOf } from './environment.js';
import { describeProblem, parseSettings } from './flags.js';
import { resolveConfig } from './resolve-config.js';
import { fixedHost } from './test-support.js';

describe("IPv6 detection (Istio's getLocalIP)", () => {
  it('the first usable address decides', () => {
    expect(detectIpv6(['127.0.0.1', '::1', '10.0.0.5', 'fd00::5'], false)).toBe(false);
    expect(detectIpv6(['127.0.0.1', 'fd00::5', '10.0.0.5'], false)).toBe(true);
  });

  it('skips loopback, link-local unicast and link-local multicast addresses', () => {
    expect(
      detectIpv6(['127.0.0.1', '169.254.1.1', 'fe80::1', 'ff02::1', '224.0.0.251', 'fd00::5'], false),
    ).toBe(true);
    expect(detectIpv6(['::1', 'fe80::1%eth0', '10.0.0.5'], false)).toBe(false);
  });

  it('skips IPv4-mapped loopback addresses, and only those: ::ff00:7f00:1 is not IPv4-mapped', () => {
    expect(detectIpv6(['::ffff:127.0.0.1', '10.0.0.5'], false)).toBe(false);
    expect(detectIpv6(['::ff00:7f00:1', '10.0.0.5'], false)).toBe(true);
  });

  it('with dual stack, any usable IPv6 address turns IPv6 on', () => {
    expect(detectIpv6(['10.0.0.5', 'fd00::5'], true)).toBe(true);
    expect(detectIpv6(['10.0.0.5', 'fe80::5'], true)).toBe(false);
  });

  it('finds nothing when only loopback and link-local addresses exist', () => {
    expect(detectIpv6(['127.0.0.1', '::1', 'fe80::1'], false)).toBeUndefined();
  });
});

describe('resolv.conf nameservers', () => {
  it('splits them per family and renders them as netip does', () => {
    const text =
      '# comment\nsearch svc.cluster.local\nnameserver 10.96.0.10\nnameserver  ::127.0.0.53\n' +
      'nameserver 2001:DB8::A\noptions ndots:5\n';
    expect(dnsServersOf(text)).toEqual({ ipv4: ['10.96.0.10'], ipv6: ['::7f00:35', '2001:db8::a'] });
  });

  it('skips nameservers that are not addresses', () => {
    expect(dnsServersOf('nameserver dns.example\nnameserver 010.0.0.1\nnameserver\n')).toEqual({
      ipv4: [],
      ipv6: [],
    });
  });
});

describe('the proxy uid from /etc/passwd', () => {
  const passwd =
    'root:x:0:0:root:/root:/bin/bash\nistio-proxy:x:1337:1337::/home:/bin/false\nenvoy:x:101:101::/:/bin/false\n';
  it('is the uid of the named user, or undefined', () => {
    expect(uidOf(passwd, 'envoy')).toBe('101');
    expect(uidOf(passwd, 'nobody')).toBeUndefined();
  });
});

describe("completing the configuration from the pod (Istio's FillConfigFromEnvironment)", () => {
  function resolve(argv: string[], env: Record<string, string>, host = fixedHost()) {
    const parsed = parseSettings(argv, env);
    if (!parsed.ok) throw new Error(parsed.problems.map(describeProblem).join('\n'));
    return resolveConfig(parsed.settings, host);
  }
  function config(argv: string[], env: Record<string, string> = {}, host = fixedHost()) {
    const result = resolve(argv, env, host);
    if (!result.ok) throw new Error(result.problems.map(describeProblem).join('\n'));
    return result.config;
  }
  const passwd = 'envoy:x:101:101::/:/bin/false\n';

  it("defaults the uid to ENVOY_USER's, else 1337, and the gid to the uids", () => {
    expect(config([], { ENVOY_USER: 'envoy' }, fixedHost({ passwd }))).toMatchObject({
      proxyUids: ['101'],
      proxyGids: ['101'],
    });
    expect(config([], {}, fixedHost({ passwd }))).toMatchObject({ proxyUids: ['1337'], proxyGids: ['1337'] });
    expect(config(['-u', '3,4'])).toMatchObject({ proxyUids: ['3', '4'], proxyGids: ['3', '4'] });
    expect(config(['-u', '3', '-g', '5'])).toMatchObject({ proxyUids: ['3'], proxyGids: ['5'] });
  });

  it('detects IPv6 from the addresses unless --ipv6 says', () => {
    const ipv6Pod = fixedHost({ addresses: ['127.0.0.1', 'fd00::7', '10.0.0.7'] });
    expect(config([], {}, ipv6Pod).ipv6).toBe(true);
    expect(config(['--ipv6=false'], {}, ipv6Pod).ipv6).toBe(false);
    expect(config(['--dual-stack'], {}, fixedHost({ addresses: ['10.0.0.7', 'fd00::7'] })).ipv6).toBe(true);
  });

  it('fails like Istio when the pod has no usable address', () => {
    const result = resolve([], {}, fixedHost({ addresses: ['127.0.0.1', '::1'] }));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(describeProblem(result.problems[0]!)).toContain('no valid local IP address found');
    }
  });

  it('reads the DNS servers from resolv.conf when DNS capture needs them', () => {
    const host = fixedHost({ resolvConf: 'nameserver 10.96.0.10\n' });
    expect(config(['--redirect-dns'], {}, host).dnsServers).toEqual({ ipv4: ['10.96.0.10'], ipv6: [] });
    expect(config([], {}, host).dnsServers).toEqual({ ipv4: [], ipv6: [] });
    expect(config(['--redirect-dns', '--capture-all-dns'], {}, host).dnsServers).toEqual({
      ipv4: [],
      ipv6: [],
    });
  });

  it('--dns-servers replaces resolv.conf, verbatim', () => {
    const host = fixedHost({ resolvConf: 'nameserver 10.96.0.10\n' });
    expect(config(['--redirect-dns', '--dns-servers=::127.0.0.53'], {}, host).dnsServers).toEqual({
      ipv4: [],
      ipv6: ['::127.0.0.53'],
    });
  });

  it('with --ipv6 the pod is described by the flags: resolv.conf is not read', () => {
    const host = fixedHost({ resolvConf: 'nameserver 10.96.0.10\n' });
    expect(config(['--ipv6=true', '--redirect-dns'], {}, host).dnsServers).toEqual({ ipv4: [], ipv6: [] });
  });

  it('says so when DNS capture is on but there is nothing to capture', () => {
    const result = resolve(['--redirect-dns', '--dns-servers='], {});
    expect(result.ok && result.notes).toEqual([expect.stringContaining('DNS capture disabled')]);
  });

  it('fails, naming the file, when resolv.conf cannot be read', () => {
    const result = resolve(['--redirect-dns'], {}, fixedHost());
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(describeProblem(result.problems[0]!)).toMatch(
        /^\/etc\/resolv\.conf: cannot be read .*--dns-servers/,
      );
  });
});
