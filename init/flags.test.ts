import { describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../common/constants.js';
import { webhookInitArgs } from '../test/lab/mesh-iptables.js';
import { describeProblem, FLAGS, parseSettings, type Settings } from './flags.js';

function settingsOf(argv: readonly string[], env: Record<string, string> = {}): Settings {
  const result = parseSettings(argv, env);
  if (!result.ok) throw new Error(result.problems.map(describeProblem).join('\n'));
  return result.settings;
}

/** The messages for a command line that must be rejected. */
function problemsOf(argv: readonly string[], env: Record<string, string> = {}): string[] {
  const result = parseSettings(argv, env);
  if (result.ok) throw new Error(`accepted: ${argv.join(' ')}`);
  return result.problems.map(describeProblem);
}

describe("istio-iptables' defaults", () => {
  const { capture, run, ...rest } = settingsOf([]);

  it('ports 15001, 15006, 15008; mark 1337, table 133; REDIRECT; no capture', () => {
    expect(capture).toMatchObject({
      proxyPort: 15001,
      inboundCapturePort: 15006,
      inboundTunnelPort: 15008,
      tproxyMark: 1337,
      tproxyRouteTable: 133,
      interceptionMode: 'REDIRECT',
      inboundPorts: [],
      outboundIpRangesInclude: { wildcard: false, ipv4: [], ipv6: [] },
      ownerGroupsInclude: '*',
      ownerGroupsExclude: [],
      ipv4LoopbackCidr: '127.0.0.1/32',
      redirectDns: false,
      dropInvalid: false,
    });
  });

  it('leaves uid, gid, IPv6 and DNS servers to the pod, and the user to look up is istio-proxy', () => {
    expect(rest).toMatchObject({
      proxyUids: undefined,
      proxyGids: undefined,
      ipv6: undefined,
      dnsServers: undefined,
    });
    expect(rest.envoyUser).toBe('istio-proxy');
  });

  it('reconciles by default (Istio does not), and applies for real', () => {
    expect(run).toEqual({
      dryRun: false,
      cleanupOnly: false,
      forceApply: false,
      reconcile: true,
      skipRuleApply: false,
      logLevel: 'info',
      logFormat: 'text',
    });
  });
});

describe('command-line syntax (pflag)', () => {
  it.each([
    [['-p', '16001']],
    [['-p16001']],
    [['-p=16001']],
    [['--envoy-port', '16001']],
    [['--envoy-port=16001']],
  ])('%j sets the envoy port', (argv) => {
    expect(settingsOf(argv).capture.proxyPort).toBe(16001);
  });

  it('takes an empty value, attached or as the next argument', () => {
    expect(settingsOf(['-x', '', '-i', '*']).capture.outboundIpRangesExclude.ipv4).toEqual([]);
    expect(settingsOf(['--istio-service-cidr=', '-b', '*']).capture.outboundIpRangesInclude.wildcard).toBe(
      false,
    );
  });

  it.each([
    [['--dry-run'], true],
    [['-n'], true],
    [['--dry-run=true'], true],
    [['--dry-run=1'], true],
    [['--dry-run=false'], false],
    [['--dry-run=F'], false],
    [['-n=false'], false],
  ])('boolean %j is %s', (argv, expected) => {
    expect(settingsOf(argv).run.dryRun).toBe(expected);
  });

  it('combines shorthands: -np 15001', () => {
    const settings = settingsOf(['-np', '16001']);
    expect(settings.run.dryRun).toBe(true);
    expect(settings.capture.proxyPort).toBe(16001);
  });

  it('the last occurrence of a flag wins', () => {
    expect(settingsOf(['-p', '1', '-p', '2']).capture.proxyPort).toBe(2);
  });

  it("takes the next argument as the value even when it looks like a flag (pflag's rule)", () => {
    expect(problemsOf(['-x', '-b'])).toEqual([
      expect.stringContaining('--istio-service-exclude-cidr (-x): invalid value "-b"'),
    ]);
  });

  it('ignores a leading "istio-iptables" (Istio passes it to pilot-agent)', () => {
    expect(settingsOf(['istio-iptables', '-p', '16001']).capture.proxyPort).toBe(16001);
  });

  it('reads --ipv6 and --dns-servers, which replace detection', () => {
    const settings = settingsOf(['--ipv6=true', '--dns-servers=10.0.0.10,::127.0.0.53,fd00::a']);
    expect(settings.ipv6).toBe(true);
    expect(settings.dnsServers).toEqual({ ipv4: ['10.0.0.10'], ipv6: ['::127.0.0.53', 'fd00::a'] });
    expect(settingsOf(['--ipv6=false']).ipv6).toBe(false);
  });

  it('--reconcile=false turns reconciling off', () => {
    expect(settingsOf(['--reconcile=false']).run.reconcile).toBe(false);
  });

  it('maps --log_output_level to the default scope level', () => {
    expect(settingsOf(['--log_output_level=default:debug']).run.logLevel).toBe('debug');
    expect(settingsOf(['--log_output_level=all:warn,default:none']).run.logLevel).toBe('silent');
    expect(settingsOf(['--log_output_level=error']).run.logLevel).toBe('error');
  });

  it("parses the webhook's istio-init arguments for a pod without annotations", async () => {
    const settings = settingsOf(await webhookInitArgs());
    expect(settings.capture).toMatchObject({
      proxyPort: 15001,
      inboundCapturePort: 15006,
      interceptionMode: 'REDIRECT',
      inboundPorts: '*',
      inboundPortsExclude: ['15090', '15021', '15020'],
      outboundIpRangesInclude: { wildcard: true },
      outboundIpRangesExclude: { wildcard: false, ipv4: [], ipv6: [] },
    });
    expect(settings.proxyUids).toEqual(['1337']);
    expect(settings.run.logLevel).toBe('info');
  });

  it("parses the webhook's istio-init arguments for every traffic annotation", async () => {
    const args = await webhookInitArgs({
      [ANNOTATIONS.includeOutboundIPRanges]: '10.0.0.0/8,fd00::/8',
      [ANNOTATIONS.excludeOutboundIPRanges]: '10.96.0.1/32',
      [ANNOTATIONS.includeInboundPorts]: '80,443',
      [ANNOTATIONS.excludeInboundPorts]: '9000',
      [ANNOTATIONS.includeOutboundPorts]: '5432',
      [ANNOTATIONS.excludeOutboundPorts]: '6379',
      [ANNOTATIONS.excludeInterfaces]: 'eth9',
      [ANNOTATIONS.rerouteVirtualInterfaces]: 'net1',
      [ANNOTATIONS.statusPort]: '15021',
    });
    expect(settingsOf(args).capture).toMatchObject({
      inboundPorts: ['80', '443'],
      outboundIpRangesInclude: { ipv4: ['10.0.0.0/8'], ipv6: ['fd00::/8'] },
      outboundIpRangesExclude: { ipv4: ['10.96.0.1/32'] },
      outboundPortsInclude: ['5432'],
      outboundPortsExclude: ['6379'],
      excludeInterfaces: ['eth9'],
      rerouteVirtualInterfaces: ['net1'],
    });
  });
});

describe('environment variables (Istio binding)', () => {
  it('every flag but -p and the logging flags binds UPPER_SNAKE of its long name', () => {
    const flags = Object.values(FLAGS).filter((spec) => spec.name !== undefined);
    const bound = flags.filter((spec) => spec.env.length > 0);
    expect(bound.length).toBeGreaterThan(25);
    for (const spec of bound) expect(spec.env[0]).toBe(spec.name?.toUpperCase().replaceAll('-', '_'));
    expect(FLAGS.proxyPort).toMatchObject({ name: 'envoy-port', env: [] });
    expect(FLAGS.logLevel).toMatchObject({ name: 'log_output_level', env: [] });
  });

  it('an environment variable sets the value when the flag is absent', () => {
    const settings = settingsOf([], {
      INBOUND_CAPTURE_PORT: '16006',
      ISTIO_INBOUND_PORTS: '80,443',
      ISTIO_SERVICE_CIDR: '*',
      PROXY_UID: '1000',
      DRY_RUN: 'true',
    });
    expect(settings.capture.inboundCapturePort).toBe(16006);
    expect(settings.capture.inboundPorts).toEqual(['80', '443']);
    expect(settings.capture.outboundIpRangesInclude.wildcard).toBe(true);
    expect(settings.proxyUids).toEqual(['1000']);
    expect(settings.run.dryRun).toBe(true);
  });

  it('the command line wins over the environment', () => {
    const settings = settingsOf(['-z', '17006', '--dry-run=false'], {
      INBOUND_CAPTURE_PORT: '16006',
      DRY_RUN: 'true',
    });
    expect(settings.capture.inboundCapturePort).toBe(17006);
    expect(settings.run.dryRun).toBe(false);
  });

  it('ENVOY_PORT is not bound (only printed by Istio)', () => {
    expect(settingsOf([], { ENVOY_PORT: '9999' }).capture.proxyPort).toBe(15001);
  });

  it.each([
    ['redirectDns', 'REDIRECT_DNS', 'ISTIO_META_DNS_CAPTURE'],
    ['dropInvalid', 'DROP_INVALID', 'INVALID_DROP'],
  ] as const)('%s: %s, overridden by %s', (field, primary, alias) => {
    expect(settingsOf([], { [primary]: 'true' }).capture[field]).toBe(true);
    expect(settingsOf([], { [alias]: 'true' }).capture[field]).toBe(true);
    expect(settingsOf([], { [primary]: 'true', [alias]: 'false' }).capture[field]).toBe(false);
    expect(settingsOf([], { [primary]: 'false', [alias]: 'true' }).capture[field]).toBe(true);
  });

  it('dual stack: DUAL_STACK, overridden by ISTIO_DUAL_STACK', () => {
    expect(settingsOf([], { DUAL_STACK: 'true', ISTIO_DUAL_STACK: 'false' }).dualStack).toBe(false);
    expect(settingsOf([], { ISTIO_DUAL_STACK: '1' }).dualStack).toBe(true);
  });

  it('RECONCILE=false turns reconciling off; an empty boolean variable counts as unset', () => {
    expect(settingsOf([], { RECONCILE: 'false' }).run.reconcile).toBe(false);
    expect(settingsOf([], { RECONCILE: '' }).run.reconcile).toBe(true);
  });

  it('a string variable set to "" is the empty value (PROXY_UID="" means the default user)', () => {
    expect(settingsOf([], { PROXY_UID: '' }).proxyUids).toBeUndefined();
    expect(settingsOf(['-i', '*'], { ISTIO_SERVICE_CIDR: '' }).capture.outboundIpRangesInclude.wildcard).toBe(
      true,
    );
  });

  it('reads the environment-only variables', () => {
    const settings = settingsOf([], {
      ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202',
      ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888',
      ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8',
      ENVOY_USER: 'envoy',
      DRY_RUN_FILE_PATH: '/tmp/out',
    });
    expect(settings.capture.ownerGroupsInclude).toEqual(['java', '202']);
    expect(settings.capture.ownerGroupsExclude).toEqual(['888']);
    expect(settings.capture.ipv4LoopbackCidr).toBe('127.0.0.1/8');
    expect(settings.envoyUser).toBe('envoy');
    expect(settings.run.dryRunFilePath).toBe('/tmp/out');
  });

  it('FORCE_IPTABLES_BINARY selects the backend', () => {
    expect(settingsOf([], { FORCE_IPTABLES_BINARY: 'nft' }).run.forceIptablesBinary).toBe('nft');
    expect(settingsOf(['--force-iptables-binary=legacy']).run.forceIptablesBinary).toBe('legacy');
    expect(settingsOf([]).run.forceIptablesBinary).toBeUndefined();
  });
});

describe('invalid input: every problem names the flag or variable, the value and what is accepted', () => {
  it.each([
    [
      ['-p', '0'],
      '--envoy-port (-p): invalid value "0": "0" is not a port; use a port number from 1 to 65535',
    ],
    [['-z', '65536'], '--inbound-capture-port (-z): invalid value "65536"'],
    [['-e', '15008 '], '--inbound-tunnel-port (-e): invalid value "15008 "'],
    [
      ['-b', '80 -j ACCEPT'],
      '--istio-inbound-ports (-b): invalid value "80 -j ACCEPT": "80 -j ACCEPT" is not a port or port range; use "*" (all ports) or a comma-separated list',
    ],
    [['-b', '*,80'], '--istio-inbound-ports (-b): invalid value "*,80": "*" is not a port or port range'],
    [['-d', '*'], '--istio-local-exclude-ports (-d): invalid value "*"'],
    [
      ['-q', '90:80'],
      '--istio-outbound-ports (-q): invalid value "90:80": "90:80" is not a port or port range',
    ],
    [
      ['-o', '80\n-A OUTPUT -j ACCEPT'],
      '--istio-local-outbound-ports-exclude (-o): invalid value "80\\n-A OUTPUT -j ACCEPT"',
    ],
    [
      ['-i', '10.0.0.0'],
      '--istio-service-cidr (-i): invalid value "10.0.0.0": "10.0.0.0" is not a CIDR; use "*" (all destinations) or a comma-separated list of IPv4 or IPv6 CIDRs',
    ],
    [['-i', '*,10.0.0.0/8'], '--istio-service-cidr (-i): invalid value "*,10.0.0.0/8": "*" is not a CIDR'],
    [['-i', '10.0.0.0/08'], '"10.0.0.0/08" is not a CIDR'],
    [['-x', '*'], '--istio-service-exclude-cidr (-x): invalid value "*": "*" is not allowed here'],
    [['-x', 'fe80::/10%eth0'], '--istio-service-exclude-cidr (-x): invalid value "fe80::/10%eth0"'],
    [
      ['-c', 'a-very-long-interface'],
      '--istio-exclude-interfaces (-c): invalid value "a-very-long-interface": "a-very-long-interface" is not an interface name; use a comma-separated list of interface names: a letter, then letters, digits, "_", "." or "-", at most 15 characters',
    ],
    // iptables reads "+" as a wildcard: `-i + -j RETURN` would exempt every interface from capture.
    [
      ['-c', 'eth0,+'],
      '--istio-exclude-interfaces (-c): invalid value "eth0,+": "+" is not an interface name; use a comma-separated list of interface names: a letter',
    ],
    [['-k', 'veth+'], '--kube-virt-interfaces (-k): invalid value "veth+": "veth+" is not an interface name'],
    [['-c', '*'], '--istio-exclude-interfaces (-c): invalid value "*": "*" is not an interface name'],
    [['-c', 'eth0 -j ACCEPT'], '--istio-exclude-interfaces (-c): invalid value "eth0 -j ACCEPT"'],
    [['-k', 'net/1'], '--kube-virt-interfaces (-k): invalid value "net/1"'],
    [['-k', 'eth0:1'], '--kube-virt-interfaces (-k): invalid value "eth0:1"'],
    [['-k', '-j'], '--kube-virt-interfaces (-k): invalid value "-j"'],
    [['-k', '"x"'], '--kube-virt-interfaces (-k): invalid value "\\"x\\""'],
    [
      ['-u', '1337 -j ACCEPT'],
      '--proxy-uid (-u): invalid value "1337 -j ACCEPT": "1337 -j ACCEPT" is not a user id or name; use a comma-separated list of numeric user ids',
    ],
    [['-u', '4294967295'], '--proxy-uid (-u): invalid value "4294967295"'],
    [['-g', ','], '--proxy-gid (-g): invalid value ",": lists no group'],
    [
      ['-m', 'tproxy'],
      '--istio-inbound-interception-mode (-m): invalid value "tproxy": "tproxy" is not an interception mode; use "REDIRECT" or "TPROXY"',
    ],
    [
      ['-t', '0x539'],
      '--istio-inbound-tproxy-mark (-t): invalid value "0x539": "0x539" is not a decimal mark; use a decimal packet mark',
    ],
    [
      ['-t', '1338'],
      '--istio-inbound-tproxy-mark (-t): invalid value "1338": 1338 is the mark of the proxy\'s own loopback traffic',
    ],
    [
      ['-r', '254'],
      '--istio-inbound-tproxy-route-table (-r): invalid value "254": table 254 is one of the kernel\'s own',
    ],
    [
      ['--dry-run=maybe'],
      '--dry-run (-n): invalid value "maybe": "maybe" is not a boolean; use "true" or "false"',
    ],
    [['--ipv6=yes'], '--ipv6: invalid value "yes"'],
    [
      ['--dns-servers=10.0.0.10/32'],
      '--dns-servers: invalid value "10.0.0.10/32": "10.0.0.10/32" is not an IP address',
    ],
    [
      ['--force-iptables-binary=iptables'],
      '--force-iptables-binary: invalid value "iptables": "iptables" is not an iptables backend; use "legacy", "nft"',
    ],
    [
      ['--log_output_level=default:verbose'],
      '--log_output_level: invalid value "default:verbose": "default:verbose" is not a scope:level pair',
    ],
    [['--iptables-probe-port=70000'], '--iptables-probe-port: invalid value "70000"'],
    [['--probe-timeout=5'], '--probe-timeout: invalid value "5": "5" is not a duration'],
  ])('%j', (argv, message) => {
    expect(problemsOf(argv)).toEqual([expect.stringContaining(message)]);
  });

  it.each([
    [
      { INBOUND_CAPTURE_PORT: 'x' },
      'environment variable INBOUND_CAPTURE_PORT (--inbound-capture-port (-z)): invalid value "x"',
    ],
    [{ DRY_RUN: 'maybe' }, 'environment variable DRY_RUN (--dry-run (-n)): invalid value "maybe"'],
    [
      { ISTIO_META_DNS_CAPTURE: 'yes' },
      'environment variable ISTIO_META_DNS_CAPTURE (--redirect-dns): invalid value "yes"',
    ],
    [
      { ISTIO_OUTBOUND_OWNER_GROUPS: 'a b' },
      'environment variable ISTIO_OUTBOUND_OWNER_GROUPS: invalid value "a b": "a b" is not a group id or name',
    ],
    [
      { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '*' },
      'environment variable ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: invalid value "*"',
    ],
    [
      { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '10.0.0.1/32' },
      'environment variable ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: invalid value "10.0.0.1/32": 10.0.0.1 is not an IPv4 loopback address',
    ],
    [
      { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/7' },
      'invalid value "127.0.0.1/7": mask /7 is outside 8 to 32',
    ],
    [
      { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '::1/128' },
      'invalid value "::1/128": ::1 is not an IPv4 loopback address',
    ],
    [
      { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1' },
      'invalid value "127.0.0.1": "127.0.0.1" is not a CIDR',
    ],
    [
      { FORCE_IPTABLES_BINARY: 'x' },
      'environment variable FORCE_IPTABLES_BINARY (--force-iptables-binary): invalid value "x"',
    ],
  ])('%j', (env, message) => {
    expect(problemsOf([], env)).toEqual([expect.stringContaining(message)]);
  });

  it('an invalid variable does not matter when the flag overrides it', () => {
    expect(settingsOf(['-z', '15006'], { INBOUND_CAPTURE_PORT: 'x' }).capture.inboundCapturePort).toBe(15006);
  });

  it('more than 64 owner groups is refused (Istio\'s limit); "*" and exclude lists have none', () => {
    const groups = Array.from({ length: 65 }, (_, i) => String(i + 1)).join(',');
    expect(problemsOf([], { ISTIO_OUTBOUND_OWNER_GROUPS: groups })).toEqual([
      expect.stringContaining('65 groups is more than 64'),
    ]);
    expect(
      settingsOf([], { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: groups }).capture.ownerGroupsExclude,
    ).toHaveLength(65);
  });

  it('names an unknown flag, a missing value and a stray argument', () => {
    expect(problemsOf(['--envoy_port=1'])).toEqual([
      '--envoy_port: unknown flag; use the flags listed by --help',
    ]);
    expect(problemsOf(['-y'])).toEqual([expect.stringContaining('-y: unknown shorthand flag in "-y"')]);
    expect(problemsOf(['-p'])).toEqual(['--envoy-port (-p): needs a value; use -p VALUE']);
    expect(problemsOf(['--istio-service-cidr'])).toEqual([
      expect.stringContaining('--istio-service-cidr (-i): needs a value'),
    ]);
    expect(problemsOf(['--dry-run', 'false'])).toEqual([
      expect.stringContaining('command line: invalid value "false"'),
    ]);
  });

  it('refuses the features it does not implement', () => {
    expect(problemsOf(['--run-validation'])).toEqual([
      '--run-validation: invalid value "true": --run-validation is not supported by mesh-iptables; use --run-validation=false',
    ]);
    expect(problemsOf(['--cni-mode'])).toEqual([expect.stringContaining('--cni-mode is not supported')]);
    expect(problemsOf([], { NATIVE_NFTABLES: 'true' })).toEqual([
      expect.stringContaining(
        'environment variable NATIVE_NFTABLES (--native-nftables): invalid value "true"',
      ),
    ]);
    expect(problemsOf(['--network-namespace=/var/run/netns/x'])).toEqual([
      expect.stringContaining('--network-namespace: invalid value "/var/run/netns/x": not supported'),
    ]);
  });

  it('collects every problem, not only the first', () => {
    const problems = problemsOf(['-p', 'x', '-b', 'y', '-c', 'a b', '--bogus'], { DROP_INVALID: 'z' });
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(
      /--bogus[\s\S]*--envoy-port[\s\S]*--istio-inbound-ports[\s\S]*--istio-exclude-interfaces[\s\S]*DROP_INVALID/,
    );
  });
});

describe('the flag table', () => {
  const named = Object.entries(FLAGS).filter(([, spec]) => spec.name !== undefined);

  it('gives each input one long name, unique short forms and unique variables', () => {
    const names = named.map(([, spec]) => spec.name);
    expect(new Set(names).size).toBe(names.length);
    const shorts = named.flatMap(([, spec]) => (spec.short === undefined ? [] : [spec.short]));
    expect(new Set(shorts).size).toBe(shorts.length);
    const variables = Object.values(FLAGS).flatMap((spec) => spec.env);
    expect(new Set(variables).size).toBe(variables.length);
  });

  it.each(named.filter(([, spec]) => spec.default !== undefined))(
    '%s: its default, given on the command line, parses to what the default gives',
    (_field, spec) => {
      const argv = [`--${spec.name}=${spec.default}`];
      expect(settingsOf(argv)).toEqual(settingsOf([]));
    },
  );

  it('sets each field from its own flag: a changed value changes that field only', () => {
    const base = settingsOf([]);
    const changed = settingsOf(['--inbound-tunnel-port=16008']);
    expect(changed.capture.inboundTunnelPort).toBe(16008);
    expect({ ...changed, capture: { ...changed.capture, inboundTunnelPort: 15008 } }).toEqual(base);
  });
});
