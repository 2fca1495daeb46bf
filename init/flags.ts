/**
 * istio-iptables' command line and environment, bound as Istio binds them (pkg/flag): every flag but -p has an
 * environment variable named after it (UPPER_SNAKE of the long name), read before the command line so a flag
 * wins; a few have a second variable that wins over the first (ISTIO_META_DNS_CAPTURE, INVALID_DROP,
 * ISTIO_DUAL_STACK). Flags follow pflag's syntax: `--name=value`, `--name value`, `-p 15001`, `-p15001`, `-p=15001`,
 * `--bool`, `--bool=false`.
 *
 * Unlike Istio, every value is validated here, and a malformed environment value is an error instead of being
 * silently ignored. All problems are collected, so one run reports them all.
 */
import {
  IPV4_LOOPBACK_CIDR,
  PORTS,
  PROXY_UID,
  PROXY_USER_NAME,
  TPROXY_MARK,
  TPROXY_ROUTE_TABLE,
} from '../common/constants.js';
import type { CaptureConfig, DnsServers, RunSettings } from './config.js';
import {
  parseBool,
  parseDnsServers,
  parseDuration,
  parseForcedBinary,
  parseInterceptionMode,
  parseInterfaceList,
  parseIpRanges,
  parseListenerPort,
  parseLogLevel,
  parseLoopbackCidr,
  parseMark,
  parseOwnerGroupsInclude,
  parseOwnerList,
  parsePortList,
  parseRouteTable,
  quote,
  ValueProblem,
} from './validate.js';

interface FlagSpec {
  name: string;
  short?: string;
  bool: boolean;
  /** Environment variables, later ones winning over earlier ones. */
  env: readonly string[];
  /** undefined: "not given", for flags whose absence means "detect". */
  defaultValue: string | undefined;
  help: string;
}

function flag(
  name: string,
  short: string | undefined,
  defaultValue: string | undefined,
  help: string,
  options: { bool?: boolean; env?: readonly string[] } = {},
): FlagSpec {
  const spec: FlagSpec = {
    name,
    bool: options.bool ?? false,
    env: options.env ?? [name.toUpperCase().replaceAll('-', '_')],
    defaultValue,
    help,
  };
  if (short !== undefined) spec.short = short;
  return spec;
}

const bool = { bool: true };
const noEnv = { env: [] };

/** istio-iptables' flags (tools/istio-iptables/pkg/cmd/root.go), then mesh-iptables' own. */
export const FLAGS: readonly FlagSpec[] = [
  flag('envoy-port', 'p', String(PORTS.outboundCapture), "Envoy's outbound listener port", noEnv),
  flag('inbound-capture-port', 'z', String(PORTS.inboundCapture), "Envoy's inbound listener port"),
  flag('inbound-tunnel-port', 'e', String(PORTS.inboundTunnel), 'HBONE tunnel port, never captured'),
  flag('proxy-uid', 'u', '', `proxy uids, comma-separated (default: uid of $ENVOY_USER, else ${PROXY_UID})`),
  flag('proxy-gid', 'g', '', 'proxy gids, comma-separated (default: the proxy uids)'),
  flag('istio-inbound-interception-mode', 'm', '', 'REDIRECT or TPROXY'),
  flag('istio-inbound-tproxy-mark', 't', String(TPROXY_MARK), 'packet mark for TPROXY'),
  flag('istio-inbound-tproxy-route-table', 'r', String(TPROXY_ROUTE_TABLE), 'routing table for TPROXY'),
  flag('istio-inbound-ports', 'b', '', 'inbound ports to capture: "*", a list, or empty for none'),
  flag('istio-local-exclude-ports', 'd', '', 'inbound ports not captured when -b is "*"'),
  flag('istio-exclude-interfaces', 'c', '', 'interfaces whose traffic is never captured'),
  flag('istio-service-cidr', 'i', '', 'outbound CIDRs to capture: "*", a list, or empty for none'),
  flag('istio-service-exclude-cidr', 'x', '', 'outbound CIDRs never captured'),
  flag('istio-outbound-ports', 'q', '', 'outbound TCP ports always captured'),
  flag('istio-local-outbound-ports-exclude', 'o', '', 'outbound ports never captured'),
  flag('kube-virt-interfaces', 'k', '', 'virtual interfaces whose inbound traffic is treated as outbound'),
  flag('dry-run', 'n', 'false', 'print the iptables-restore input and change nothing', bool),
  flag('iptables-probe-port', undefined, String(PORTS.iptablesProbe), 'port for --run-validation'),
  flag('probe-timeout', undefined, '5s', 'timeout for --run-validation'),
  flag('skip-rule-apply', undefined, 'false', 'build the rules but do not apply them', bool),
  flag('run-validation', undefined, 'false', 'not supported by mesh-iptables', bool),
  flag('redirect-dns', undefined, 'false', 'capture DNS to the agent (15053)', {
    bool: true,
    env: ['REDIRECT_DNS', 'ISTIO_META_DNS_CAPTURE'],
  }),
  flag('drop-invalid', undefined, 'false', 'drop packets in conntrack state INVALID', {
    bool: true,
    env: ['DROP_INVALID', 'INVALID_DROP'],
  }),
  flag('dual-stack', undefined, 'false', 'detect IPv6 from any address, not only the first', {
    bool: true,
    env: ['DUAL_STACK', 'ISTIO_DUAL_STACK'],
  }),
  flag(
    'capture-all-dns',
    undefined,
    'false',
    'capture all port 53 traffic, not only to resolv.conf servers',
    bool,
  ),
  flag('network-namespace', undefined, '', 'not supported by mesh-iptables'),
  flag('cni-mode', undefined, 'false', 'not supported by mesh-iptables', bool),
  flag('reconcile', undefined, 'true', 'replace differing ISTIO_* state (Istio defaults to false)', bool),
  flag('cleanup-only', undefined, 'false', 'remove the rules of this configuration and apply nothing', bool),
  flag('force-apply', undefined, 'false', 'apply even if the rules look applied already', bool),
  flag('native-nftables', undefined, 'false', 'not supported by mesh-iptables', bool),
  flag('force-iptables-binary', undefined, '', 'legacy or nft (default: detect)'),
  flag('log_output_level', undefined, 'default:info', 'scope:level pairs, e.g. default:info', noEnv),
  flag('log_as_json', undefined, 'false', 'accepted for compatibility; logs are always JSON', {
    ...bool,
    ...noEnv,
  }),
  flag(
    'ipv6',
    undefined,
    undefined,
    'build IPv6 rules: true or false (default: detect); when given, nothing is detected',
    {
      ...bool,
      ...noEnv,
    },
  ),
  flag(
    'dns-servers',
    undefined,
    undefined,
    'DNS servers to capture, verbatim (default: /etc/resolv.conf unless --ipv6 is given)',
    noEnv,
  ),
  flag('help', 'h', 'false', 'print this help', { ...bool, ...noEnv }),
];

/** Variables Istio reads from the environment only (FillConfigFromEnvironment). */
export const ENV_ONLY = {
  ownerGroupsInclude: 'ISTIO_OUTBOUND_OWNER_GROUPS',
  ownerGroupsExclude: 'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE',
  ipv4LoopbackCidr: 'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR',
  envoyUser: 'ENVOY_USER',
  dryRunFilePath: 'DRY_RUN_FILE_PATH',
} as const;

export interface Problem {
  /** The flag or environment variable, as a user would look for it. */
  source: string;
  /** The rejected value, when there is one. */
  value?: string;
  reason: string;
  accepted?: string;
}

export function describeProblem(problem: Problem): string {
  const value = problem.value === undefined ? '' : ` invalid value ${quote(problem.value)}:`;
  const accepted = problem.accepted === undefined ? '' : `; use ${problem.accepted}`;
  return `${problem.source}:${value} ${problem.reason}${accepted}`;
}

/** Where a value came from, named for messages. */
function flagSource(spec: FlagSpec): string {
  return spec.short === undefined ? `--${spec.name}` : `--${spec.name} (-${spec.short})`;
}

interface SourcedValue {
  value: string;
  source: string;
}

export type Environment = Readonly<Record<string, string | undefined>>;

/** pflag's parse: the last occurrence of a flag wins; one leading "istio-iptables" (Istio's subcommand) is ignored. */
function readArgv(argv: readonly string[]): { given: Map<string, SourcedValue>; problems: Problem[] } {
  const byName = new Map(FLAGS.map((spec) => [spec.name, spec]));
  const byShort = new Map(FLAGS.filter((spec) => spec.short).map((spec) => [spec.short, spec]));
  const given = new Map<string, SourcedValue>();
  const problems: Problem[] = [];
  const set = (spec: FlagSpec, value: string) => given.set(spec.name, { value, source: flagSource(spec) });
  const args = argv[0] === 'istio-iptables' ? argv.slice(1) : [...argv];

  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') {
      for (const extra of args.slice(i + 1)) problems.push(unexpectedArgument(extra));
      break;
    }
    if (arg.startsWith('--')) {
      const equals = arg.indexOf('=');
      const name = equals < 0 ? arg.slice(2) : arg.slice(2, equals);
      const spec = byName.get(name);
      if (spec === undefined) {
        problems.push({
          source: `--${name}`,
          reason: 'unknown flag',
          accepted: 'the flags listed by --help',
        });
      } else if (equals >= 0) {
        set(spec, arg.slice(equals + 1));
      } else if (spec.bool) {
        set(spec, 'true');
      } else if (i + 1 < args.length) {
        set(spec, args[++i] ?? '');
      } else {
        problems.push({ source: flagSource(spec), reason: 'needs a value', accepted: `--${name}=VALUE` });
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // Shorthands may be combined (-np 15001) and take their value attached (-p15001, -p=15001) or next.
      for (let j = 1; j < arg.length; j++) {
        const spec = byShort.get(arg[j]);
        if (spec === undefined) {
          problems.push({
            source: `-${arg[j]}`,
            reason: `unknown shorthand flag in ${quote(arg)}`,
            accepted: 'the flags listed by --help',
          });
          break;
        }
        const rest = arg.slice(j + 1);
        if (rest.startsWith('=')) {
          set(spec, rest.slice(1));
          break;
        }
        if (spec.bool) {
          set(spec, 'true');
          continue;
        }
        if (rest !== '') set(spec, rest);
        else if (i + 1 < args.length) set(spec, args[++i] ?? '');
        else
          problems.push({
            source: flagSource(spec),
            reason: 'needs a value',
            accepted: `-${spec.short} VALUE`,
          });
        break;
      }
      continue;
    }
    problems.push(unexpectedArgument(arg));
  }
  return { given, problems };
}

function unexpectedArgument(arg: string): Problem {
  return {
    source: 'command line',
    value: arg,
    reason: 'mesh-iptables takes flags only, no arguments',
    accepted: 'flags only (a boolean takes its value as --flag=false)',
  };
}

/**
 * The value of each flag: the command line, else the winning environment variable, else the default. An empty
 * environment variable of a boolean flag counts as unset (Istio ignores it; ParseBool fails on "").
 */
function resolveFlags(argv: readonly string[], env: Environment) {
  const { given, problems } = readArgv(argv);
  const values = new Map<string, SourcedValue | undefined>();
  for (const spec of FLAGS) {
    const fromEnv = [...spec.env]
      .reverse()
      .map((name) => ({ name, value: env[name] }))
      .find(({ value }) => value !== undefined && !(spec.bool && value === ''));
    const value =
      given.get(spec.name) ??
      (fromEnv === undefined
        ? undefined
        : {
            value: fromEnv.value ?? '',
            source: `environment variable ${fromEnv.name} (${flagSource(spec)})`,
          });
    values.set(
      spec.name,
      value ??
        (spec.defaultValue === undefined
          ? undefined
          : { value: spec.defaultValue, source: flagSource(spec) }),
    );
  }
  return { values, problems };
}

/** What the command line and environment say, before the host is consulted (user lookup, interfaces, resolv.conf). */
export interface Settings {
  capture: Omit<CaptureConfig, 'proxyUids' | 'proxyGids' | 'ipv6' | 'dnsServers'>;
  /** undefined: the uid of ENVOY_USER, else 1337. */
  proxyUids: string[] | undefined;
  /** undefined: the same as the proxy uids (Istio copies the -u string). */
  proxyGids: string[] | undefined;
  envoyUser: string;
  /** undefined: detect from the interfaces. */
  ipv6: boolean | undefined;
  dualStack: boolean;
  /** undefined: read /etc/resolv.conf if DNS capture needs servers. */
  dnsServers: DnsServers | undefined;
  run: RunSettings;
  help: boolean;
}

export type SettingsResult = { ok: true; settings: Settings } | { ok: false; problems: Problem[] };

export const DEFAULT_PROXY_UID = String(PROXY_UID);

export function parseSettings(argv: readonly string[], env: Environment): SettingsResult {
  const { values, problems } = resolveFlags(argv, env);

  /** Runs a parser on a flag's value, turning a ValueProblem into a Problem naming the flag and value. */
  function read<T>(name: string, parse: (value: string) => T, fallback: T): T {
    const sourced = values.get(name);
    if (sourced === undefined) return fallback;
    return attempt(sourced, parse, fallback);
  }
  function attempt<T>(sourced: SourcedValue, parse: (value: string) => T, fallback: T): T {
    try {
      return parse(sourced.value);
    } catch (error) {
      if (!(error instanceof ValueProblem)) throw error;
      problems.push({
        source: sourced.source,
        value: sourced.value,
        reason: error.reason,
        accepted: error.accepted,
      });
      return fallback;
    }
  }
  function readEnv<T>(name: string, defaultValue: string, parse: (value: string) => T, fallback: T): T {
    return attempt(
      { value: env[name] ?? defaultValue, source: `environment variable ${name}` },
      parse,
      fallback,
    );
  }
  const flagOn = (name: string) => read(name, parseBool, false);
  const optionalList = <T>(name: string, parse: (value: string) => T): T | undefined =>
    values.get(name)?.value === '' ? undefined : read<T | undefined>(name, parse, undefined);

  const none = { wildcard: false, ipv4: [], ipv6: [], hasLoopback: false };
  const capture: Settings['capture'] = {
    proxyPort: read('envoy-port', parseListenerPort, PORTS.outboundCapture),
    inboundCapturePort: read('inbound-capture-port', parseListenerPort, PORTS.inboundCapture),
    inboundTunnelPort: read('inbound-tunnel-port', parseListenerPort, PORTS.inboundTunnel),
    interceptionMode: read('istio-inbound-interception-mode', parseInterceptionMode, 'REDIRECT'),
    tproxyMark: read('istio-inbound-tproxy-mark', parseMark, TPROXY_MARK),
    tproxyRouteTable: read('istio-inbound-tproxy-route-table', parseRouteTable, TPROXY_ROUTE_TABLE),
    inboundPorts: read('istio-inbound-ports', (v) => parsePortList(v, { wildcard: true }), []),
    inboundPortsExclude: read('istio-local-exclude-ports', (v) => parsePortList(v), []),
    excludeInterfaces: read('istio-exclude-interfaces', parseInterfaceList, []),
    rerouteVirtualInterfaces: read('kube-virt-interfaces', parseInterfaceList, []),
    outboundIpRangesInclude: read('istio-service-cidr', (v) => parseIpRanges(v, { wildcard: true }), none),
    outboundIpRangesExclude: read(
      'istio-service-exclude-cidr',
      (v) => parseIpRanges(v, { wildcard: false }),
      none,
    ),
    outboundPortsInclude: read('istio-outbound-ports', (v) => parsePortList(v), []),
    outboundPortsExclude: read('istio-local-outbound-ports-exclude', (v) => parsePortList(v), []),
    ownerGroupsInclude: readEnv(ENV_ONLY.ownerGroupsInclude, '*', parseOwnerGroupsInclude, '*'),
    ownerGroupsExclude: readEnv(ENV_ONLY.ownerGroupsExclude, '', (v) => parseOwnerList(v, 'group'), []),
    ipv4LoopbackCidr: readEnv(
      ENV_ONLY.ipv4LoopbackCidr,
      IPV4_LOOPBACK_CIDR,
      parseLoopbackCidr,
      IPV4_LOOPBACK_CIDR,
    ),
    redirectDns: flagOn('redirect-dns'),
    captureAllDns: flagOn('capture-all-dns'),
    dropInvalid: flagOn('drop-invalid'),
  };

  const proxyUids = optionalList('proxy-uid', (v) => nonEmpty(parseOwnerList(v, 'user'), 'user'));
  const proxyGids = optionalList('proxy-gid', (v) => nonEmpty(parseOwnerList(v, 'group'), 'group'));
  read('iptables-probe-port', parseListenerPort, 0);
  read('probe-timeout', parseDuration, 0);
  for (const name of ['run-validation', 'cni-mode', 'native-nftables']) {
    if (flagOn(name))
      problems.push({
        source: `--${name}`,
        reason: 'not supported by mesh-iptables',
        accepted: `--${name}=false`,
      });
  }
  const namespace = values.get('network-namespace');
  if (namespace !== undefined && namespace.value !== '') {
    problems.push({
      source: namespace.source,
      value: namespace.value,
      reason: "not supported; run mesh-iptables inside the pod's network namespace instead",
      accepted: 'an empty value',
    });
  }

  const run: RunSettings = {
    dryRun: flagOn('dry-run'),
    cleanupOnly: flagOn('cleanup-only'),
    forceApply: flagOn('force-apply'),
    reconcile: flagOn('reconcile'),
    skipRuleApply: flagOn('skip-rule-apply'),
    logLevel: read('log_output_level', parseLogLevel, 'info'),
  };
  const forced = read('force-iptables-binary', parseForcedBinary, undefined);
  if (forced !== undefined) run.forceIptablesBinary = forced;
  const dryRunFile = env[ENV_ONLY.dryRunFilePath];
  if (dryRunFile !== undefined && dryRunFile !== '') run.dryRunFilePath = dryRunFile;
  flagOn('log_as_json');

  const settings: Settings = {
    capture,
    proxyUids,
    proxyGids,
    envoyUser: env[ENV_ONLY.envoyUser] ?? PROXY_USER_NAME,
    ipv6: read<boolean | undefined>('ipv6', parseBool, undefined),
    dualStack: flagOn('dual-stack'),
    dnsServers: read<DnsServers | undefined>('dns-servers', parseDnsServers, undefined),
    run,
    help: flagOn('help'),
  };
  return problems.length > 0 ? { ok: false, problems } : { ok: true, settings };
}

function nonEmpty(items: string[], what: 'user' | 'group'): string[] {
  if (items.length === 0) {
    throw new ValueProblem(
      `lists no ${what}`,
      `at least one ${what} id or name, or an empty value for the default`,
    );
  }
  return items;
}

export function usage(): string {
  const lines = FLAGS.map((spec) => {
    const names = spec.short === undefined ? `    --${spec.name}` : `-${spec.short}, --${spec.name}`;
    const env = spec.env.length > 0 ? ` [env ${spec.env.join(', ')}]` : '';
    return `  ${names.padEnd(44)} ${spec.help}${env}`;
  });
  return [
    'Usage: mesh-iptables [flags]',
    "Programs a pod's traffic capture rules; a drop-in for Istio's istio-iptables.",
    '',
    ...lines,
    '',
    `Environment only: ${Object.values(ENV_ONLY).join(', ')}.`,
  ].join('\n');
}
