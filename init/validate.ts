/**
 * Value parsers for mesh-iptables' flags and environment variables. Each returns the value's canonical form or
 * throws a ValueProblem saying what is wrong and what is accepted. They are stricter than istio-iptables, which
 * pastes ports, interfaces, owners and marks into the restore text unchecked: nothing that passes here can add a
 * token, a line or a quote to an iptables-restore input.
 */
import { OUTBOUND_MARK } from '../common/constants.js';
import { quote, ValueProblem } from '../common/value-problem.js';
import type { DnsServers, InterceptionMode, IpRanges, RunSettings } from './config.js';
import { formatIpAddress, formatIpPrefix, isLoopback, parseIpAddress, parseIpPrefix } from './ip.js';

export { quote, ValueProblem };

/** Istio's config.Split: comma-separated, empty items dropped, nothing trimmed. */
export function splitList(value: string): string[] {
  return value.split(',').filter((item) => item !== '');
}

/** The first item that fails `isValid`, reported as a ValueProblem. */
function requireEach(items: string[], isValid: (item: string) => boolean, what: string, accepted: string) {
  const bad = items.filter((item) => !isValid(item));
  if (bad.length > 0) {
    throw new ValueProblem(
      `${bad.map(quote).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not ${what}`,
      accepted,
    );
  }
}

const PORT = /^(0|[1-9][0-9]{0,4})$/;

function isPort(text: string): boolean {
  return PORT.test(text) && Number(text) <= 65535;
}

function isPortOrRange(text: string): boolean {
  const [first, last, ...rest] = text.split(':');
  if (last === undefined) return isPort(text);
  return rest.length === 0 && isPort(first ?? '') && isPort(last) && Number(first) <= Number(last);
}

/** A port a listener uses (-p, -z, -e, --iptables-probe-port): 1 to 65535. */
export function parseListenerPort(value: string): number {
  if (!isPort(value) || value === '0') {
    throw new ValueProblem(`${quote(value)} is not a port`, 'a port number from 1 to 65535, e.g. "15001"');
  }
  return Number(value);
}

const PORT_LIST =
  'a comma-separated list of ports (0-65535) or port ranges (first:last), e.g. "80,8080:8090"';

/** -b (with `*`), -d, -q, -o: ports and ranges, as iptables' `--dport` takes them. */
export function parsePortList(value: string, options: { wildcard: true }): '*' | string[];
export function parsePortList(value: string, options?: { wildcard: false }): string[];
export function parsePortList(value: string, options: { wildcard: boolean } = { wildcard: false }) {
  if (options.wildcard && value === '*') return '*';
  const accepted = options.wildcard ? `"*" (all ports) or ${PORT_LIST}` : PORT_LIST;
  const items = splitList(value);
  requireEach(items, isPortOrRange, 'a port or port range', accepted);
  return items;
}

const CIDR_LIST =
  'a comma-separated list of IPv4 or IPv6 CIDRs with a prefix length, e.g. "10.0.0.0/8,fd00::/8"';

/** -i (with `*`) and -x: Istio's SeparateV4V6 with netip's parsing, so the rules get netip's text forms. */
export function parseIpRanges(value: string, options: { wildcard: boolean }): IpRanges {
  if (value === '*') {
    if (options.wildcard) return { wildcard: true, ipv4: [], ipv6: [], hasLoopback: false };
    throw new ValueProblem('"*" is not allowed here (it would exclude every destination)', CIDR_LIST);
  }
  const ranges: IpRanges = { wildcard: false, ipv4: [], ipv6: [], hasLoopback: false };
  const accepted = options.wildcard ? `"*" (all destinations) or ${CIDR_LIST}` : CIDR_LIST;
  const items = splitList(value);
  requireEach(items, (item) => parseIpPrefix(item) !== undefined, 'a CIDR', accepted);
  for (const item of items) {
    const prefix = parseIpPrefix(item)!;
    (prefix.address.family === 4 ? ranges.ipv4 : ranges.ipv6).push(formatIpPrefix(prefix));
    if (isLoopback(prefix.address)) ranges.hasLoopback = true;
  }
  return ranges;
}

/**
 * Istio's injector rule for interface annotations (ValidateInterfaceNames): a letter, then letters, digits, "_", "."
 * or "-", at most 15 characters. Linux allows more, but iptables reads a trailing "+" as a wildcard ("+" alone
 * matches every interface), so anything beyond this rule could widen an exclusion to all traffic.
 */
export function isInterfaceName(name: string): boolean {
  return name.length <= 15 && /^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(name);
}

/** -c and -k. */
export function parseInterfaceList(value: string): string[] {
  const items = splitList(value);
  requireEach(
    items,
    isInterfaceName,
    'an interface name',
    'a comma-separated list of interface names: a letter, then letters, digits, "_", "." or "-", at most 15 ' +
      'characters in all (no iptables wildcard such as "+"), e.g. "eth1,net1"',
  );
  return items;
}

const MAX_ID = 4294967294;
const ID = /^(0|[1-9][0-9]{0,9})$/;
const OWNER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;

function isId(text: string): boolean {
  return ID.test(text) && Number(text) <= MAX_ID;
}

/** What iptables' owner match takes: a numeric id, an id range "first-last", or a user/group name. */
function isOwner(text: string): boolean {
  if (OWNER_NAME.test(text)) return true;
  const [first, last, ...rest] = text.split('-');
  if (last === undefined) return isId(text);
  return rest.length === 0 && isId(first ?? '') && isId(last) && Number(first) <= Number(last);
}

/** -u, -g, and the owner-group lists; `what` ("user" or "group") names the kind of owner in the message. */
export function parseOwnerList(value: string, what: 'user' | 'group'): string[] {
  const items = splitList(value);
  requireEach(
    items,
    isOwner,
    `a ${what} id or name`,
    `a comma-separated list of numeric ${what} ids (0-${MAX_ID}), id ranges (first-last) or ${what} names ` +
      `(a letter or "_", then letters, digits, "_", "." or "-", at most 32 characters), e.g. "1337"`,
  );
  return items;
}

/** ISTIO_OUTBOUND_OWNER_GROUPS: `*` or at most 64 groups (Istio's limit, from iptables' rule size). */
export function parseOwnerGroupsInclude(value: string): '*' | string[] {
  if (value === '*') return '*';
  const groups = parseOwnerList(value, 'group');
  if (groups.length > 64) {
    throw new ValueProblem(
      `${groups.length} groups is more than 64`,
      '"*" (all groups) or at most 64 group ids or names, comma-separated',
    );
  }
  return groups;
}

/** -t: a decimal fwmark (Istio's route setup parses it with Atoi), appended with "/0xffffffff" in TPROXY rules. */
export function parseMark(value: string): number {
  const accepted = `a decimal packet mark from 1 to 4294967295 other than ${OUTBOUND_MARK}, e.g. "1337"`;
  if (!/^[1-9][0-9]{0,9}$/.test(value) || Number(value) > 4294967295) {
    throw new ValueProblem(`${quote(value)} is not a decimal mark`, accepted);
  }
  if (Number(value) === OUTBOUND_MARK) {
    throw new ValueProblem(`${value} is the mark of the proxy's own loopback traffic`, accepted);
  }
  return Number(value);
}

/** -r: a policy routing table for TPROXY; the kernel's own tables (253-255) are refused. */
export function parseRouteTable(value: string): number {
  const accepted = 'a routing table number from 1 to 4294967295, other than 253, 254 and 255, e.g. "133"';
  if (!/^[1-9][0-9]{0,9}$/.test(value) || Number(value) > 4294967295) {
    throw new ValueProblem(`${quote(value)} is not a routing table number`, accepted);
  }
  if ([253, 254, 255].includes(Number(value))) {
    throw new ValueProblem(`table ${value} is one of the kernel's own (default, main, local)`, accepted);
  }
  return Number(value);
}

/** -m: Istio treats any value but exactly "TPROXY" as REDIRECT; here only Istio's three modes are accepted. */
export function parseInterceptionMode(value: string): InterceptionMode {
  if (value === '') return 'REDIRECT';
  if (value === 'REDIRECT' || value === 'TPROXY' || value === 'NONE') return value;
  throw new ValueProblem(
    `${quote(value)} is not an interception mode`,
    '"REDIRECT" or "TPROXY" ("NONE" and "" build the REDIRECT rules, as in Istio)',
  );
}

/** ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR, with Istio's three checks. */
export function parseLoopbackCidr(value: string): string {
  const accepted = 'an IPv4 loopback CIDR with a mask from 8 to 32, e.g. "127.0.0.1/32"';
  const prefix = parseIpPrefix(value);
  if (prefix === undefined) throw new ValueProblem(`${quote(value)} is not a CIDR`, accepted);
  if (prefix.address.family !== 4 || !isLoopback(prefix.address)) {
    throw new ValueProblem(`${formatIpAddress(prefix.address)} is not an IPv4 loopback address`, accepted);
  }
  if (prefix.bits < 8) throw new ValueProblem(`mask /${prefix.bits} is outside 8 to 32`, accepted);
  return formatIpPrefix(prefix);
}

/** --dns-servers: IPv4 and IPv6 addresses, kept as written (Istio's tests use them verbatim). */
export function parseDnsServers(value: string): DnsServers {
  const items = splitList(value);
  requireEach(
    items,
    (item) => parseIpAddress(item) !== undefined,
    'an IP address',
    'a comma-separated list of IPv4 and IPv6 addresses, e.g. "10.96.0.10,fd00::a"',
  );
  const servers: DnsServers = { ipv4: [], ipv6: [] };
  for (const item of items) (parseIpAddress(item)!.family === 4 ? servers.ipv4 : servers.ipv6).push(item);
  return servers;
}

/** FORCE_IPTABLES_BINARY / --force-iptables-binary. */
export function parseForcedBinary(value: string): 'legacy' | 'nft' | undefined {
  if (value === '') return undefined;
  if (value === 'legacy' || value === 'nft') return value;
  throw new ValueProblem(`${quote(value)} is not an iptables backend`, '"legacy", "nft", or empty to detect');
}

const ISTIO_LEVELS: Record<string, RunSettings['logLevel']> = {
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'fatal',
  none: 'silent',
};

/** --log_output_level: Istio's "scope:level,..." (or a bare level); the "default" scope sets the log level. */
export function parseLogLevel(value: string): RunSettings['logLevel'] {
  let level: RunSettings['logLevel'] = 'info';
  for (const pair of value.split(',')) {
    const [scope, name, ...rest] = pair.includes(':') ? pair.split(':') : ['default', pair];
    const mapped = ISTIO_LEVELS[name ?? ''];
    if (rest.length > 0 || !/^[a-z0-9_.-]+$/.test(scope ?? '') || mapped === undefined) {
      throw new ValueProblem(
        `${quote(pair)} is not a scope:level pair`,
        `comma-separated scope:level pairs with levels ${Object.keys(ISTIO_LEVELS).join(', ')}, e.g. "default:info"`,
      );
    }
    if (scope === 'default') level = mapped;
  }
  return level;
}

/** pflag's boolean syntax (Go's strconv.ParseBool). */
export function parseBool(value: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new ValueProblem(`${quote(value)} is not a boolean`, '"true" or "false" (or 1, 0, t, f)');
}

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** --probe-timeout: a positive Go duration such as "5s" or "1m30s"; returns milliseconds. */
export function parseDuration(value: string): number {
  const accepted = 'a positive duration such as "5s", "500ms" or "1m30s"';
  if (!/^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/.test(value)) {
    throw new ValueProblem(`${quote(value)} is not a duration`, accepted);
  }
  let total = 0;
  for (const [, amount, , unit] of value.matchAll(/([0-9]+(\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(amount) * (DURATION_UNITS_MS[unit ?? ''] ?? 0);
  }
  if (total <= 0) throw new ValueProblem(`${quote(value)} is not positive`, accepted);
  return total;
}
