/**
 * What istio-iptables reads from the pod (FillConfigFromEnvironment): whether IPv6 is on, judged from the local
 * addresses; the DNS servers of /etc/resolv.conf; the uid of the proxy user. Parsing is pure; `systemHost` reads.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { DnsServers } from './config.js';
import { formatIpAddress, isLoopback, parseIpAddress, type IpAddress } from './ip.js';

/** The facts of the machine the program runs on, as the configuration needs them. */
export interface Host {
  /** Local addresses in interface order (Go's net.InterfaceAddrs order). */
  addresses(): string[];
  /** The text of /etc/resolv.conf; throws when it cannot be read. */
  resolvConf(): string;
  /** The text of /etc/passwd, or "" when it cannot be read. */
  passwd(): string;
}

export const RESOLV_CONF = '/etc/resolv.conf';

export const systemHost: Host = {
  addresses: () =>
    Object.values(networkInterfaces()).flatMap((entries) => (entries ?? []).map((entry) => entry.address)),
  resolvConf: () => readFileSync(RESOLV_CONF, 'utf8'),
  passwd: () => {
    try {
      return readFileSync('/etc/passwd', 'utf8');
    } catch {
      return '';
    }
  },
};

/** Istio's getLocalIP filter: not loopback, not link-local unicast, not link-local multicast. */
function isUsable(address: IpAddress): boolean {
  if (isLoopback(address)) return false;
  const b = address.bytes;
  if (address.family === 4) {
    const linkLocalMulticast = b[0] === 224 && b[1] === 0 && b[2] === 0;
    return !(b[0] === 169 && b[1] === 254) && !linkLocalMulticast;
  }
  const linkLocalUnicast = b[0] === 0xfe && ((b[1] ?? 0) & 0xc0) === 0x80;
  const linkLocalMulticast = b[0] === 0xff && ((b[1] ?? 0) & 0x0f) === 0x02;
  return !linkLocalUnicast && !linkLocalMulticast;
}

/**
 * Istio's IPv6 detection: the first usable address decides, or with dual stack any usable IPv6 address.
 * undefined when there is no usable address (Istio fails with "no valid local IP address found").
 */
export function detectIpv6(addresses: readonly string[], dualStack: boolean): boolean | undefined {
  const usable = addresses
    .map((text) => parseIpAddress(text.split('%')[0] ?? ''))
    .filter((address): address is IpAddress => address !== undefined && isUsable(address));
  if (usable.length === 0) return undefined;
  return dualStack ? usable.some((address) => address.family === 6) : usable[0]?.family === 6;
}

/** The nameservers of a resolv.conf, re-rendered as netip does (IPv6 in RFC 5952 form); others are skipped. */
export function dnsServersOf(resolvConf: string): DnsServers {
  const servers: DnsServers = { ipv4: [], ipv6: [] };
  for (const line of resolvConf.split('\n')) {
    const [keyword, value] = line.trim().split(/\s+/);
    if (keyword !== 'nameserver' || value === undefined) continue;
    const address = parseIpAddress(value);
    if (address === undefined) continue;
    (address.family === 4 ? servers.ipv4 : servers.ipv6).push(formatIpAddress(address));
  }
  return servers;
}

/** The uid of `user` in an /etc/passwd text (Go's user.Lookup for local users). */
export function uidOf(passwd: string, user: string): string | undefined {
  for (const line of passwd.split('\n')) {
    const [name, , uid] = line.split(':');
    if (name === user && uid !== undefined && /^[0-9]+$/.test(uid)) return uid;
  }
  return undefined;
}
