import { describe, expect, it } from 'vitest';
import {
  isInterfaceName,
  parseDuration,
  parseIpRanges,
  parseListenerPort,
  parseLogLevel,
  parseOwnerList,
  parsePortList,
  splitList,
  ValueProblem,
} from './validate.js';

describe("list splitting (Istio's config.Split)", () => {
  it('drops empty items and trims nothing', () => {
    expect(splitList('6000,7000,')).toEqual(['6000', '7000']);
    expect(splitList(',,')).toEqual([]);
    expect(splitList(' 80')).toEqual([' 80']);
  });
});

describe('what is accepted', () => {
  it('listener ports: 1 to 65535 in plain decimal', () => {
    expect(parseListenerPort('1')).toBe(1);
    expect(parseListenerPort('65535')).toBe(65535);
    for (const bad of ['0', '65536', '015001', '+1', '1e3', ''])
      expect(() => parseListenerPort(bad)).toThrow(ValueProblem);
  });

  it('port lists: ports 0 to 65535 and ascending ranges; "*" only as the whole value where allowed', () => {
    expect(parsePortList('0,65535,1000:2000,5:5')).toEqual(['0', '65535', '1000:2000', '5:5']);
    expect(parsePortList('*', { wildcard: true })).toBe('*');
    expect(parsePortList('', { wildcard: true })).toEqual([]);
    for (const bad of ['*', '2000:1000', ':80', '80:', '08', '80;90'])
      expect(() => parsePortList(bad)).toThrow(ValueProblem);
  });

  it('CIDR lists: split per family; "*" only for includes; loopback addresses noted', () => {
    expect(parseIpRanges('10.0.0.0/8,::ffff:10.0.0.0/104,fd00::/8', { wildcard: false })).toEqual({
      wildcard: false,
      ipv4: ['10.0.0.0/8'],
      ipv6: ['::ffff:10.0.0.0/104', 'fd00::/8'],
      hasLoopback: false,
    });
    expect(parseIpRanges('::1/128', { wildcard: true }).hasLoopback).toBe(true);
    expect(parseIpRanges('*', { wildcard: true }).wildcard).toBe(true);
    expect(() => parseIpRanges('*', { wildcard: false })).toThrow(/not allowed/);
  });

  it("interface names: Istio's injector rule, so no iptables wildcard can widen an exclusion", () => {
    for (const good of [
      'eth0',
      'eth0.100',
      'net1',
      'a',
      'abcdefghijklmno',
      'br_0',
      'cali12ab-cd',
      'Eth-0.',
    ]) {
      expect(isInterfaceName(good), good).toBe(true);
    }
    for (const bad of [
      '',
      'abcdefghijklmnop',
      '.',
      '..',
      'eth/0',
      'eth:0',
      'eth 0',
      'eth\t0',
      '-j',
      '!eth0',
      '"eth0"',
      "e'0",
      'é',
      'e\\0',
      '+',
      'veth+',
      '*',
      'eth*',
      '0eth',
      '_eth',
      'eth@1',
      'eth%d',
    ]) {
      expect(isInterfaceName(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it('owners: ids up to 4294967294, ascending id ranges, and user/group names', () => {
    expect(parseOwnerList('0,1337,4294967294,1000-2000,istio-proxy,_svc,www.data', 'user')).toHaveLength(7);
    for (const bad of ['4294967295', '2000-1000', '-1', '1337 ', 'root;', 'a'.repeat(33), '9abc']) {
      expect(() => parseOwnerList(bad, 'user'), bad).toThrow(ValueProblem);
    }
  });

  it('durations: positive Go durations', () => {
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    for (const bad of ['5', '0s', '-5s', 's', '5 s']) expect(() => parseDuration(bad)).toThrow(ValueProblem);
  });

  it('log levels: scope:level pairs or a bare level; the default scope sets the level', () => {
    expect(parseLogLevel('default:info')).toBe('info');
    expect(parseLogLevel('ads:debug,default:none')).toBe('silent');
    expect(parseLogLevel('ads:debug')).toBe('info');
    for (const bad of ['', 'default:', 'default:info:x', 'default:trace', 'Default:info']) {
      expect(() => parseLogLevel(bad), bad).toThrow(ValueProblem);
    }
  });
});
