/**
 * istio-iptables' command line and environment, bound as Istio binds them (pkg/flag): every flag but -p has an
 * environment variable named after it (UPPER_SNAKE of the long name), read before the command line so a flag
 * wins; a few have a second variable that wins over the first (ISTIO_META_DNS_CAPTURE, INVALID_DROP,
 * ISTIO_DUAL_STACK). Flags follow pflag's syntax: `--name=value`, `--name value`, `-p 15001`, `-p15001`, `-p=15001`,
 * `--bool`, `--bool=false`.
 *
 * Every input is declared once, in FLAGS: its names, variables, parser, default and help, under the field it sets.
 * The table's type has one entry per field of `FlagValues`, each with a parser returning that field's type, and
 * values are read by walking the table, never looked up by name, so no input can be misspelt into its default.
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
import type { CaptureConfig, DnsServers, IpRanges, RunSettings } from './config.js';
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

/** What the command line and environment set, one field per input. */
export interface FlagValues {
  proxyPort: number;
  inboundCapturePort: number;
  inboundTunnelPort: number;
  /** undefined: the uid of ENVOY_USER, else 1337. */
  proxyUids: string[] | undefined;
  /** undefined: the same as the proxy uids (Istio copies the -u string). */
  proxyGids: string[] | undefined;
  interceptionMode: CaptureConfig['interceptionMode'];
  tproxyMark: number;
  tproxyRouteTable: number;
  inboundPorts: CaptureConfig['inboundPorts'];
  inboundPortsExclude: string[];
  excludeInterfaces: string[];
  outboundIpRangesInclude: IpRanges;
  outboundIpRangesExclude: IpRanges;
  outboundPortsInclude: string[];
  outboundPortsExclude: string[];
  rerouteVirtualInterfaces: string[];
  dryRun: boolean;
  iptablesProbePort: number;
  probeTimeoutMs: number;
  skipRuleApply: boolean;
  runValidation: false;
  redirectDns: boolean;
  dropInvalid: boolean;
  dualStack: boolean;
  captureAllDns: boolean;
  networkNamespace: '';
  cniMode: false;
  reconcile: boolean;
  cleanupOnly: boolean;
  forceApply: boolean;
  nativeNftables: false;
  forceIptablesBinary: RunSettings['forceIptablesBinary'];
  logLevel: RunSettings['logLevel'];
  logAsJson: boolean;
  /** undefined: detect from the interfaces. */
  ipv6: boolean | undefined;
  /** undefined: read /etc/resolv.conf if DNS capture needs servers. */
  dnsServers: DnsServers | undefined;
  help: boolean;
  version: boolean;
  ownerGroupsInclude: CaptureConfig['ownerGroupsInclude'];
  ownerGroupsExclude: string[];
  ipv4LoopbackCidr: string;
  envoyUser: string;
  dryRunFilePath: string | undefined;
}

export interface FlagSpec<T> {
  /** The long name; absent for the variables Istio reads from the environment only. */
  name?: string;
  short?: string;
  /** A boolean flag: `--name` alone means true. */
  bool?: boolean;
  /** Environment variables, later ones winning over earlier ones. */
  env: readonly string[];
  /** The value as given, or the default; throws ValueProblem for an invalid one. */
  parse: (value: string) => T;
  /** The text parsed when nothing sets the input; absent means "not given" (the field is undefined). */
  default: undefined extends T ? string | undefined : string;
  help: string;
}

export type FlagTable = { readonly [K in keyof FlagValues]: FlagSpec<FlagValues[K]> };

/** UPPER_SNAKE of a long name: Istio's BindEnv. */
const envOf = (name: string) => [name.toUpperCase().replaceAll('-', '_')];
const ports = (value: string) => parsePortList(value);
const unsupported =
  (name: string) =>
  (value: string): false => {
    if (parseBool(value))
      throw new ValueProblem(`--${name} is not supported by mesh-iptables`, `--${name}=false`);
    return false;
  };
const listOr = (what: 'user' | 'group') => (value: string) => {
  if (value === '') return undefined;
  const items = parseOwnerList(value, what);
  if (items.length === 0)
    throw new ValueProblem(
      `lists no ${what}`,
      `at least one ${what} id or name, or an empty value for the default`,
    );
  return items;
};

/** istio-iptables' flags (tools/istio-iptables/pkg/cmd/root.go) in its order, mesh-iptables' own, then Istio's
 * environment-only variables (FillConfigFromEnvironment). */
export const FLAGS: FlagTable = {
  proxyPort: {
    name: 'envoy-port',
    short: 'p',
    env: [],
    parse: parseListenerPort,
    default: String(PORTS.outboundCapture),
    help: "Envoy's outbound listener port",
  },
  inboundCapturePort: {
    name: 'inbound-capture-port',
    short: 'z',
    env: envOf('inbound-capture-port'),
    parse: parseListenerPort,
    default: String(PORTS.inboundCapture),
    help: "Envoy's inbound listener port",
  },
  inboundTunnelPort: {
    name: 'inbound-tunnel-port',
    short: 'e',
    env: envOf('inbound-tunnel-port'),
    parse: parseListenerPort,
    default: String(PORTS.inboundTunnel),
    help: 'HBONE tunnel port, never captured',
  },
  proxyUids: {
    name: 'proxy-uid',
    short: 'u',
    env: envOf('proxy-uid'),
    parse: listOr('user'),
    default: '',
    help: `proxy uids, comma-separated; empty: the uid of $ENVOY_USER, else ${PROXY_UID}`,
  },
  proxyGids: {
    name: 'proxy-gid',
    short: 'g',
    env: envOf('proxy-gid'),
    parse: listOr('group'),
    default: '',
    help: 'proxy gids, comma-separated; empty: the proxy uids',
  },
  interceptionMode: {
    name: 'istio-inbound-interception-mode',
    short: 'm',
    env: envOf('istio-inbound-interception-mode'),
    parse: parseInterceptionMode,
    default: '',
    help: 'REDIRECT or TPROXY (empty: REDIRECT)',
  },
  tproxyMark: {
    name: 'istio-inbound-tproxy-mark',
    short: 't',
    env: envOf('istio-inbound-tproxy-mark'),
    parse: parseMark,
    default: String(TPROXY_MARK),
    help: 'packet mark for TPROXY',
  },
  tproxyRouteTable: {
    name: 'istio-inbound-tproxy-route-table',
    short: 'r',
    env: envOf('istio-inbound-tproxy-route-table'),
    parse: parseRouteTable,
    default: String(TPROXY_ROUTE_TABLE),
    help: 'routing table for TPROXY',
  },
  inboundPorts: {
    name: 'istio-inbound-ports',
    short: 'b',
    env: envOf('istio-inbound-ports'),
    parse: (value) => parsePortList(value, { wildcard: true }),
    default: '',
    help: 'inbound ports to capture: "*", a list, or empty for none',
  },
  inboundPortsExclude: {
    name: 'istio-local-exclude-ports',
    short: 'd',
    env: envOf('istio-local-exclude-ports'),
    parse: ports,
    default: '',
    help: 'inbound ports not captured when -b is "*"',
  },
  excludeInterfaces: {
    name: 'istio-exclude-interfaces',
    short: 'c',
    env: envOf('istio-exclude-interfaces'),
    parse: parseInterfaceList,
    default: '',
    help: 'interfaces whose traffic is never captured',
  },
  outboundIpRangesInclude: {
    name: 'istio-service-cidr',
    short: 'i',
    env: envOf('istio-service-cidr'),
    parse: (value) => parseIpRanges(value, { wildcard: true }),
    default: '',
    help: 'outbound CIDRs to capture: "*", a list, or empty for none',
  },
  outboundIpRangesExclude: {
    name: 'istio-service-exclude-cidr',
    short: 'x',
    env: envOf('istio-service-exclude-cidr'),
    parse: (value) => parseIpRanges(value, { wildcard: false }),
    default: '',
    help: 'outbound CIDRs never captured',
  },
  outboundPortsInclude: {
    name: 'istio-outbound-ports',
    short: 'q',
    env: envOf('istio-outbound-ports'),
    parse: ports,
    default: '',
    help: 'outbound TCP ports always captured',
  },
  outboundPortsExclude: {
    name: 'istio-local-outbound-ports-exclude',
    short: 'o',
    env: envOf('istio-local-outbound-ports-exclude'),
    parse: ports,
    default: '',
    help: 'outbound ports never captured',
  },
  rerouteVirtualInterfaces: {
    name: 'kube-virt-interfaces',
    short: 'k',
    env: envOf('kube-virt-interfaces'),
    parse: parseInterfaceList,
    default: '',
    help: 'virtual interfaces whose inbound traffic is treated as outbound',
  },
  dryRun: {
    name: 'dry-run',
    short: 'n',
    bool: true,
    env: envOf('dry-run'),
    parse: parseBool,
    default: 'false',
    help: 'print the iptables-restore input and change nothing',
  },
  iptablesProbePort: {
    name: 'iptables-probe-port',
    env: envOf('iptables-probe-port'),
    parse: parseListenerPort,
    default: String(PORTS.iptablesProbe),
    help: 'port for --run-validation (accepted, unused)',
  },
  probeTimeoutMs: {
    name: 'probe-timeout',
    env: envOf('probe-timeout'),
    parse: parseDuration,
    default: '5s',
    help: 'timeout for --run-validation (accepted, unused)',
  },
  skipRuleApply: {
    name: 'skip-rule-apply',
    bool: true,
    env: envOf('skip-rule-apply'),
    parse: parseBool,
    default: 'false',
    help: 'build the rules but do not apply them',
  },
  runValidation: {
    name: 'run-validation',
    bool: true,
    env: envOf('run-validation'),
    parse: unsupported('run-validation'),
    default: 'false',
    help: 'not supported by mesh-iptables',
  },
  redirectDns: {
    name: 'redirect-dns',
    bool: true,
    env: ['REDIRECT_DNS', 'ISTIO_META_DNS_CAPTURE'],
    parse: parseBool,
    default: 'false',
    help: 'capture DNS to the agent (15053)',
  },
  dropInvalid: {
    name: 'drop-invalid',
    bool: true,
    env: ['DROP_INVALID', 'INVALID_DROP'],
    parse: parseBool,
    default: 'false',
    help: 'drop packets in conntrack state INVALID',
  },
  dualStack: {
    name: 'dual-stack',
    bool: true,
    env: ['DUAL_STACK', 'ISTIO_DUAL_STACK'],
    parse: parseBool,
    default: 'false',
    help: 'detect IPv6 from any address, not only the first',
  },
  captureAllDns: {
    name: 'capture-all-dns',
    bool: true,
    env: envOf('capture-all-dns'),
    parse: parseBool,
    default: 'false',
    help: 'capture all port 53 traffic, not only to resolv.conf servers',
  },
  networkNamespace: {
    name: 'network-namespace',
    env: envOf('network-namespace'),
    parse: (value) => {
      if (value !== '')
        throw new ValueProblem(
          "not supported; run mesh-iptables inside the pod's network namespace instead",
          'an empty value',
        );
      return '';
    },
    default: '',
    help: 'not supported by mesh-iptables',
  },
  cniMode: {
    name: 'cni-mode',
    bool: true,
    env: envOf('cni-mode'),
    parse: unsupported('cni-mode'),
    default: 'false',
    help: 'not supported by mesh-iptables',
  },
  reconcile: {
    name: 'reconcile',
    bool: true,
    env: envOf('reconcile'),
    parse: parseBool,
    default: 'true',
    help: 'replace differing ISTIO_* state (Istio defaults to false)',
  },
  cleanupOnly: {
    name: 'cleanup-only',
    bool: true,
    env: envOf('cleanup-only'),
    parse: parseBool,
    default: 'false',
    help: 'remove the rules of this configuration and apply nothing',
  },
  forceApply: {
    name: 'force-apply',
    bool: true,
    env: envOf('force-apply'),
    parse: parseBool,
    default: 'false',
    help: 'apply even if the rules look applied already',
  },
  nativeNftables: {
    name: 'native-nftables',
    bool: true,
    env: envOf('native-nftables'),
    parse: unsupported('native-nftables'),
    default: 'false',
    help: 'not supported by mesh-iptables',
  },
  forceIptablesBinary: {
    name: 'force-iptables-binary',
    env: envOf('force-iptables-binary'),
    parse: parseForcedBinary,
    default: '',
    help: 'legacy or nft (empty: detect)',
  },
  logLevel: {
    name: 'log_output_level',
    env: [],
    parse: parseLogLevel,
    default: 'default:info',
    help: 'scope:level pairs; the default scope sets the level (debug, info, warn, error, none)',
  },
  logAsJson: {
    name: 'log_as_json',
    bool: true,
    env: [],
    parse: parseBool,
    default: 'false',
    help: 'log JSON lines instead of plain text',
  },
  ipv6: {
    name: 'ipv6',
    bool: true,
    env: [],
    parse: parseBool,
    default: undefined,
    help: 'build IPv6 rules: true or false (default: detect); when given, nothing is detected',
  },
  dnsServers: {
    name: 'dns-servers',
    env: [],
    parse: parseDnsServers,
    default: undefined,
    help: 'DNS servers to capture, verbatim (default: /etc/resolv.conf unless --ipv6 is given)',
  },
  help: {
    name: 'help',
    short: 'h',
    bool: true,
    env: [],
    parse: parseBool,
    default: 'false',
    help: 'print this help',
  },
  version: {
    name: 'version',
    bool: true,
    env: [],
    parse: parseBool,
    default: 'false',
    help: 'print the version of mesh-iptables and of Node.js',
  },
  ownerGroupsInclude: {
    env: ['ISTIO_OUTBOUND_OWNER_GROUPS'],
    parse: parseOwnerGroupsInclude,
    default: '*',
    help: 'groups whose outbound traffic is captured: "*" or names and gids',
  },
  ownerGroupsExclude: {
    env: ['ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE'],
    parse: (value) => parseOwnerList(value, 'group'),
    default: '',
    help: 'groups whose outbound traffic is not captured (when the include list is "*")',
  },
  ipv4LoopbackCidr: {
    env: ['ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR'],
    parse: parseLoopbackCidr,
    default: IPV4_LOOPBACK_CIDR,
    help: 'the IPv4 loopback destinations the rules exempt',
  },
  envoyUser: {
    env: ['ENVOY_USER'],
    parse: (value) => value,
    default: PROXY_USER_NAME,
    help: 'the user whose uid is the proxy uid when -u is empty',
  },
  dryRunFilePath: {
    env: ['DRY_RUN_FILE_PATH'],
    parse: (value) => (value === '' ? undefined : value),
    default: undefined,
    help: "where a dry run writes Istio's golden-format transcript",
  },
};

type AnyFlag = FlagSpec<unknown>;
const FLAG_ENTRIES = Object.entries(FLAGS) as [keyof FlagValues, AnyFlag][];

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
function flagSource(spec: AnyFlag): string {
  if (spec.name === undefined) return `environment variable ${spec.env.join(', ')}`;
  return spec.short === undefined ? `--${spec.name}` : `--${spec.name} (-${spec.short})`;
}

interface SourcedValue {
  value: string;
  source: string;
}

export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * pflag's parse: the last occurrence of a flag wins. A leading `istio-iptables` (the pilot-agent subcommand that
 * Istio's own template passes) is ignored, so Istio's `args: [istio-iptables, -p, 15001, ...]` runs as is.
 */
function readArgv(argv: readonly string[]): { given: Map<AnyFlag, SourcedValue>; problems: Problem[] } {
  const flags = FLAG_ENTRIES.map(([, spec]) => spec);
  const byName = new Map(flags.filter((spec) => spec.name).map((spec) => [spec.name, spec]));
  const byShort = new Map(flags.filter((spec) => spec.short).map((spec) => [spec.short, spec]));
  const given = new Map<AnyFlag, SourcedValue>();
  const problems: Problem[] = [];
  const set = (spec: AnyFlag, value: string) => given.set(spec, { value, source: flagSource(spec) });
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
 * The text of an input: the command line, else the winning environment variable, else the default. An empty
 * environment variable of a boolean flag counts as unset (Istio ignores it; ParseBool fails on "").
 */
function sourcedValue(
  spec: AnyFlag,
  given: Map<AnyFlag, SourcedValue>,
  env: Environment,
): SourcedValue | undefined {
  const fromArgv = given.get(spec);
  if (fromArgv !== undefined) return fromArgv;
  for (const name of [...spec.env].reverse()) {
    const value = env[name];
    if (value === undefined || (spec.bool && value === '')) continue;
    const source =
      spec.name === undefined
        ? `environment variable ${name}`
        : `environment variable ${name} (${flagSource(spec)})`;
    return { value, source };
  }
  return spec.default === undefined ? undefined : { value: spec.default, source: flagSource(spec) };
}

/** Every input's value, parsed; or every problem with the command line and the environment. */
export function parseFlags(
  argv: readonly string[],
  env: Environment,
): { ok: true; values: FlagValues } | { ok: false; problems: Problem[] } {
  const { given, problems } = readArgv(argv);
  const values: Partial<Record<keyof FlagValues, unknown>> = {};
  for (const [field, spec] of FLAG_ENTRIES) {
    const sourced = sourcedValue(spec, given, env);
    if (sourced === undefined) {
      values[field] = undefined;
      continue;
    }
    try {
      values[field] = spec.parse(sourced.value);
    } catch (error) {
      if (!(error instanceof ValueProblem)) throw error;
      problems.push({
        source: sourced.source,
        value: sourced.value,
        reason: error.reason,
        accepted: error.accepted,
      });
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, values: values as FlagValues };
}

/** What the command line and environment say, before the host is consulted (user lookup, interfaces, resolv.conf). */
export interface Settings {
  capture: Omit<CaptureConfig, 'proxyUids' | 'proxyGids' | 'ipv6' | 'dnsServers'>;
  proxyUids: FlagValues['proxyUids'];
  proxyGids: FlagValues['proxyGids'];
  envoyUser: string;
  ipv6: FlagValues['ipv6'];
  dualStack: boolean;
  dnsServers: FlagValues['dnsServers'];
  run: RunSettings;
  help: boolean;
  version: boolean;
}

export type SettingsResult = { ok: true; settings: Settings } | { ok: false; problems: Problem[] };

export const DEFAULT_PROXY_UID = String(PROXY_UID);

export function parseSettings(argv: readonly string[], env: Environment): SettingsResult {
  const parsed = parseFlags(argv, env);
  if (!parsed.ok) return parsed;
  const v = parsed.values;
  const run: RunSettings = {
    dryRun: v.dryRun,
    cleanupOnly: v.cleanupOnly,
    forceApply: v.forceApply,
    reconcile: v.reconcile,
    skipRuleApply: v.skipRuleApply,
    logLevel: v.logLevel,
    logFormat: v.logAsJson ? 'json' : 'text',
  };
  if (v.forceIptablesBinary !== undefined) run.forceIptablesBinary = v.forceIptablesBinary;
  if (v.dryRunFilePath !== undefined) run.dryRunFilePath = v.dryRunFilePath;
  const settings: Settings = {
    capture: {
      proxyPort: v.proxyPort,
      inboundCapturePort: v.inboundCapturePort,
      inboundTunnelPort: v.inboundTunnelPort,
      interceptionMode: v.interceptionMode,
      tproxyMark: v.tproxyMark,
      tproxyRouteTable: v.tproxyRouteTable,
      inboundPorts: v.inboundPorts,
      inboundPortsExclude: v.inboundPortsExclude,
      excludeInterfaces: v.excludeInterfaces,
      rerouteVirtualInterfaces: v.rerouteVirtualInterfaces,
      outboundIpRangesInclude: v.outboundIpRangesInclude,
      outboundIpRangesExclude: v.outboundIpRangesExclude,
      outboundPortsInclude: v.outboundPortsInclude,
      outboundPortsExclude: v.outboundPortsExclude,
      ownerGroupsInclude: v.ownerGroupsInclude,
      ownerGroupsExclude: v.ownerGroupsExclude,
      ipv4LoopbackCidr: v.ipv4LoopbackCidr,
      redirectDns: v.redirectDns,
      captureAllDns: v.captureAllDns,
      dropInvalid: v.dropInvalid,
    },
    proxyUids: v.proxyUids,
    proxyGids: v.proxyGids,
    envoyUser: v.envoyUser,
    ipv6: v.ipv6,
    dualStack: v.dualStack,
    dnsServers: v.dnsServers,
    run,
    help: v.help,
    version: v.version,
  };
  return { ok: true, settings };
}

/** `--help`, generated from FLAGS: every flag with its default and environment variables. */
export function usage(): string {
  const entries = FLAG_ENTRIES.map(([, spec]) => spec);
  const describe = (spec: AnyFlag) => {
    const value =
      spec.default === undefined ? '' : ` (default ${spec.default === '' ? 'empty' : quote(spec.default)})`;
    return `${spec.help}${value}`;
  };
  const flagLines = entries
    .filter((spec) => spec.name !== undefined)
    .map((spec) => {
      const names = spec.short === undefined ? `    --${spec.name}` : `-${spec.short}, --${spec.name}`;
      const env = spec.env.length > 0 ? ` [env ${spec.env.join(', ')}]` : '';
      return `  ${names.padEnd(44)} ${describe(spec)}${env}`;
    });
  const envLines = entries
    .filter((spec) => spec.name === undefined)
    .map((spec) => `  ${spec.env.join(', ').padEnd(44)} ${describe(spec)}`);
  return [
    'Usage: mesh-iptables [istio-iptables] [flags]',
    "Programs a pod's traffic capture rules; a drop-in for Istio's istio-iptables.",
    '',
    ...flagLines,
    '',
    'Environment only:',
    ...envLines,
  ].join('\n');
}
