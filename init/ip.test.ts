import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIpAddress, formatIpPrefix, isLoopback, parseIpAddress, parseIpPrefix } from './ip.js';

const canonical = (text: string) => {
  const address = parseIpAddress(text);
  return address === undefined ? undefined : formatIpAddress(address);
};

describe('IP addresses (as strict as Go netip.ParseAddr)', () => {
  it.each(['0.0.0.0', '10.1.2.3', '255.255.255.255'])('accepts IPv4 %s as written', (text) => {
    expect(canonical(text)).toBe(text);
  });

  it.each([
    '010.0.0.1',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.-4',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '0x1.2.3.4',
    '',
  ])('rejects %j', (text) => {
    expect(parseIpAddress(text)).toBeUndefined();
  });

  it.each([
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::127.0.0.53', '::7f00:35'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'],
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
    ['fe80::0001', 'fe80::1'],
  ])('renders IPv6 %s as %s (RFC 5952, IPv4-mapped dotted)', (text, expected) => {
    expect(canonical(text)).toBe(expected);
  });

  it.each([
    '1:2:3:4:5:6:7',
    '1::2::3',
    '12345::',
    'fe80::1%eth0',
    '1.2.3.4::',
    ':1',
    '1:',
    'g::1',
    '1:2:3:4:5:6:7:1.2.3.4',
  ])('rejects IPv6 %j', (text) => {
    expect(parseIpAddress(text)).toBeUndefined();
  });

  it('knows loopback addresses: 127/8, ::1 and IPv4-mapped 127/8', () => {
    const loopback = (text: string) => isLoopback(parseIpAddress(text)!);
    expect(['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1'].map(loopback)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(['128.0.0.1', '::2', '::', '10.0.0.1'].map(loopback)).toEqual([false, false, false, false]);
  });
});

describe('IP prefixes (Go netip.ParsePrefix)', () => {
  const prefix = (text: string) => {
    const parsed = parseIpPrefix(text);
    return parsed === undefined ? undefined : formatIpPrefix(parsed);
  };

  it('keeps IPv4 host bits and canonicalises IPv6', () => {
    expect(prefix('10.1.2.3/8')).toBe('10.1.2.3/8');
    expect(prefix('2001:DB8:0::/32')).toBe('2001:db8::/32');
    expect(prefix('0.0.0.0/0')).toBe('0.0.0.0/0');
  });

  it.each([
    '10.0.0.0',
    '10.0.0.0/33',
    '::/129',
    '10.0.0.0/08',
    '10.0.0.0/+8',
    '10.0.0.0/-1',
    'fe80::/10%eth0',
    'fe80::%eth0/64',
    '10.0.0.0/',
    '/8',
    '*',
  ])('rejects %j', (text) => {
    expect(parseIpPrefix(text)).toBeUndefined();
  });
});

describe('IP parsing against generated addresses (property)', () => {
  it('accepts every valid IPv4 and IPv6 address, and formatting is stable', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const address = parseIpAddress(text);
        expect(address, text).toBeDefined();
        const formatted = formatIpAddress(address!);
        expect(formatIpAddress(parseIpAddress(formatted)!)).toBe(formatted);
        expect(parseIpAddress(formatted)?.bytes).toEqual(address!.bytes);
      }),
      { numRuns: 1000 },
    );
  });
});
