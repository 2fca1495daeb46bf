/**
 * Parsers for the value syntaxes pod annotations use, matching Istio's validate.go where Istio validates and
 * stricter where a value would otherwise reach a command line unchecked. Each returns the canonical form of the
 * value, or throws a ValueProblem saying what is accepted.
 */
import { isIPv6 } from 'node:net';
import { quote, ValueProblem } from '../common/value-problem.js';

export { quote, ValueProblem };

const PORTS_ACCEPTED = 'a comma-separated list of ports from 0 to 65535, e.g. "8080,9090"';
const CIDRS_ACCEPTED = 'a comma-separated list of CIDRs with a prefix length, e.g. "10.0.0.0/8,fd00::/8"';
const INTERFACES_ACCEPTED =
  'a comma-separated list of interface names: a letter, then letters, digits, "_", "." or "-", at most 15 characters';

/** Istio's parsePorts: items trimmed, each `ParseUint(item, 10, 16)`. The empty string is the empty list. */
export function parsePortList(value: string): number[] {
  const trimmed = value.trim();
  if (trimmed === '') return [];
  return trimmed.split(',').map((item) => parsePort(item.trim(), PORTS_ACCEPTED));
}

export function parsePort(value: string, accepted = 'a port from 0 to 65535'): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new ValueProblem(`${quote(value)} is not a port`, accepted);
  }
  return Number(value);
}

/** `*` or a port list, as for includeInboundPorts. */
export function parsePortListOrWildcard(value: string): '*' | number[] {
  return value === '*' ? '*' : parsePortList(value);
}

/** Istio's validateCIDRList: untrimmed items, each a Go netip prefix (host bits allowed, no zone). */
export function parseCidrList(value: string): string[] {
  if (value === '') return [];
  return value.split(',').map((item) => {
    if (!isCidr(item)) throw new ValueProblem(`${quote(item)} is not a CIDR`, CIDRS_ACCEPTED);
    return item;
  });
}

export function parseCidrListOrWildcard(value: string): '*' | string[] {
  return value === '*' ? '*' : parseCidrList(value);
}

function isCidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash < 0) return false;
  const address = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits)) return false;
  if (isIPv4(address)) return Number(bits) <= 32;
  return !address.includes('%') && isIPv6(address) && Number(bits) <= 128;
}

function isIPv4(value: string): boolean {
  const octets = value.split('.');
  return (
    octets.length === 4 &&
    octets.every((octet) => /^(0|[1-9][0-9]{0,2})$/.test(octet) && Number(octet) <= 255)
  );
}

/** pkg/util/net/ip.go IsValidInterfaceName, applied to each trimmed item. */
export function parseInterfaceList(value: string): string[] {
  return value.split(',').map((raw) => {
    const name = raw.trim();
    if (name.length === 0 || name.length > 15 || !/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(name)) {
      throw new ValueProblem(`${quote(name)} is not an interface name`, INTERFACES_ACCEPTED);
    }
    return name;
  });
}

/** `strconv.ParseUint(value, 10, 32)`: no trimming, no sign. */
export function parseUint32(value: string): number {
  if (!/^[0-9]{1,10}$/.test(value) || Number(value) > 0xffffffff) {
    throw new ValueProblem(`${quote(value)} is not a whole number`, 'a whole number from 0 to 4294967295');
  }
  return Number(value);
}

/** `strconv.ParseBool`. */
export function parseGoBool(value: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new ValueProblem(`${quote(value)} is not a boolean`, '"true" or "false"');
}

/**
 * A Kubernetes resource quantity (resource.ParseQuantity), non-negative. Returns the value as written; the
 * apiserver canonicalises it when it stores the pod.
 */
export function parseQuantity(value: string): string {
  if (!/^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([munkMGTPE]|[KMGTPE]i|[eE][-+]?[0-9]+)?$/.test(value)) {
    throw new ValueProblem(
      `${quote(value)} is not a resource quantity`,
      'a non-negative Kubernetes quantity, e.g. "100m", "0.5", "128Mi" or "1Gi"',
    );
  }
  return value;
}

const ENVOY_LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'warn', 'error', 'critical', 'off'];

export function parseProxyLogLevel(value: string): string {
  if (!ENVOY_LOG_LEVELS.includes(value)) {
    throw new ValueProblem(
      `${quote(value)} is not a proxy log level`,
      `one of ${ENVOY_LOG_LEVELS.join(', ')}`,
    );
  }
  return value;
}

/** Envoy's `--component-log-level`: `component:level` pairs, comma-separated. */
export function parseComponentLogLevels(value: string): string {
  const accepted = `comma-separated component:level pairs with levels ${ENVOY_LOG_LEVELS.join(', ')}, e.g. "misc:error"`;
  for (const pair of value.split(',')) {
    const [component, level, ...rest] = pair.split(':');
    if (rest.length > 0 || !/^[a-z0-9_]+$/.test(component ?? '') || !ENVOY_LOG_LEVELS.includes(level ?? '')) {
      throw new ValueProblem(`${quote(pair)} is not a component:level pair`, accepted);
    }
  }
  return value;
}

const SCOPE_LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal', 'none'];

/** Istio's `--log_output_level`: `scope:level` pairs, comma-separated, e.g. "default:info". */
export function parseScopeLogLevels(value: string): string {
  const accepted = `comma-separated scope:level pairs with levels ${SCOPE_LOG_LEVELS.join(', ')}, e.g. "default:info"`;
  for (const pair of value.split(',')) {
    const [scope, level, ...rest] = pair.split(':');
    if (rest.length > 0 || !/^[a-z0-9_-]+$/.test(scope ?? '') || !SCOPE_LOG_LEVELS.includes(level ?? '')) {
      throw new ValueProblem(`${quote(pair)} is not a scope:level pair`, accepted);
    }
  }
  return value;
}

const IMAGE_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_DOMAIN =
  '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?';
const IMAGE_REFERENCE = new RegExp(
  `^${IMAGE_DOMAIN}${IMAGE_COMPONENT}(?:/${IMAGE_COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`,
);

/** A container image reference (distribution/reference grammar, simplified to what registries accept). */
export function parseImageReference(value: string): string {
  if (value.length > 255 || !IMAGE_REFERENCE.test(value)) {
    throw new ValueProblem(
      `${quote(value)} is not an image reference`,
      'an image reference such as "registry.example.com/team/proxy:1.2.3"',
    );
  }
  return value;
}

/** A container customisation as the overrides annotation carries it: a JSON object with the container's name. */
export type ContainerOverride = { name: string; image?: string } & Record<string, unknown>;

const OVERRIDES_ACCEPTED =
  'the JSON the injector writes: {"containers":[...],"initContainers":[...]}, each item a container object with ' +
  'a "name" and, if set, an "image" that is "auto" or an image reference';

/**
 * proxy.istio.io/overrides, which the injector writes and reads back on re-injection. Istio rejects a pod whose
 * overrides are not valid JSON; here the shape and the images are checked too, since the items end up in the
 * injected containers.
 */
export function parseContainerOverrides(value: string): ContainerOverride[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ValueProblem('it is not valid JSON', OVERRIDES_ACCEPTED);
  }
  if (!isPlainObject(parsed)) throw new ValueProblem('it is not a JSON object', OVERRIDES_ACCEPTED);
  const overrides: ContainerOverride[] = [];
  for (const [key, list] of Object.entries(parsed)) {
    if (key !== 'containers' && key !== 'initContainers')
      throw new ValueProblem(`${quote(key)} is not a list of containers`, OVERRIDES_ACCEPTED);
    if (!Array.isArray(list)) throw new ValueProblem(`${key} is not a list`, OVERRIDES_ACCEPTED);
    for (const item of list as unknown[]) {
      if (!isPlainObject(item) || typeof item.name !== 'string')
        throw new ValueProblem(`an item of ${key} is not a container with a name`, OVERRIDES_ACCEPTED);
      if (item.image !== undefined && item.image !== 'auto') {
        if (typeof item.image !== 'string')
          throw new ValueProblem(`the image of ${quote(item.name)} is not a string`, OVERRIDES_ACCEPTED);
        parseImageReference(item.image);
      }
      overrides.push(item as ContainerOverride);
    }
  }
  return overrides;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
