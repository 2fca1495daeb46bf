/**
 * IP addresses and prefixes parsed as strictly as Go's net/netip (which istio-iptables uses) and rendered as
 * netip's `String()` does: IPv4 dotted decimal, IPv6 in RFC 5952 form, IPv4-mapped IPv6 as `::ffff:a.b.c.d`.
 * A value that netip would reject is rejected here too; `undefined` means "not an address/prefix".
 */

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: number[];
}

export interface IpPrefix {
  address: IpAddress;
  bits: number;
}

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4Bytes(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!DECIMAL_OCTET.test(part) || Number(part) > 255) return undefined;
    bytes.push(Number(part));
  }
  return bytes;
}

function parseIpv6Bytes(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string | undefined): number[][] | undefined => {
    if (half === undefined || half === '') return [];
    const pieces = half.split(':');
    const groups: number[][] = [];
    for (const [index, piece] of pieces.entries()) {
      if (index === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIpv4Bytes(piece);
        if (v4 === undefined) return undefined;
        groups.push([v4[0] ?? 0, v4[1] ?? 0], [v4[2] ?? 0, v4[3] ?? 0]);
        continue;
      }
      if (!HEX_GROUP.test(piece)) return undefined;
      const value = parseInt(piece, 16);
      groups.push([value >> 8, value & 0xff]);
    }
    return groups;
  };
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (head === undefined || tail === undefined) return undefined;
  // An embedded IPv4 address may only end the address.
  if (halves.length === 2 && (halves[0] ?? '').includes('.')) return undefined;
  const present = head.length + tail.length;
  if (halves.length === 1 ? present !== 8 : present > 7) return undefined;
  const zeros = Array.from({ length: 8 - present }, () => [0, 0]);
  return [...head, ...zeros, ...tail].flat();
}

/** netip.ParseAddr without zones: `a.b.c.d` (no leading zeros) or an IPv6 address. */
export function parseIpAddress(text: string): IpAddress | undefined {
  if (text.includes(':')) {
    const bytes = parseIpv6Bytes(text);
    return bytes === undefined ? undefined : { family: 6, bytes };
  }
  const bytes = parseIpv4Bytes(text);
  return bytes === undefined ? undefined : { family: 4, bytes };
}

/** netip.ParsePrefix: an address, "/", and decimal bits without sign or leading zeros, within the family's length. */
export function parseIpPrefix(text: string): IpPrefix | undefined {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return undefined;
  const address = parseIpAddress(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (address === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > (address.family === 4 ? 32 : 128)) return undefined;
  return { address, bits };
}

export function isIpv4MappedIpv6(address: IpAddress): boolean {
  const b = address.bytes;
  return (
    address.family === 6 && b.slice(0, 10).every((byte) => byte === 0) && b[10] === 0xff && b[11] === 0xff
  );
}

/** netip's IsLoopback: 127.0.0.0/8, ::1, and an IPv4-mapped 127.x address. */
export function isLoopback(address: IpAddress): boolean {
  const b = address.bytes;
  if (address.family === 4) return b[0] === 127;
  if (isIpv4MappedIpv6(address)) return b[12] === 127;
  return b.slice(0, 15).every((byte) => byte === 0) && b[15] === 1;
}

export function formatIpAddress(address: IpAddress): string {
  const b = address.bytes;
  if (address.family === 4) return b.join('.');
  if (isIpv4MappedIpv6(address)) return `::ffff:${b.slice(12).join('.')}`;
  const groups = Array.from({ length: 8 }, (_, i) => ((b[2 * i] ?? 0) << 8) | (b[2 * i + 1] ?? 0));
  // RFC 5952: compress the first longest run of two or more zero groups.
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8;) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function formatIpPrefix(prefix: IpPrefix): string {
  return `${formatIpAddress(prefix.address)}/${prefix.bits}`;
}
