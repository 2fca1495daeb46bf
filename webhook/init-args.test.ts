import { describe, expect, it } from 'vitest';
import { renderInitArgs } from './init-args.js';
import { describeProblem, readPodSettings } from './pod-settings.js';
import { DEFAULT_VALUES, parseValues } from './values.js';

function argsFor(annotations: Record<string, string>, values = DEFAULT_VALUES): string[] {
  const result = readPodSettings(annotations, values);
  if (!result.ok) throw new Error(result.problems.map(describeProblem).join('; '));
  return renderInitArgs(result.settings);
}

/** The value following a flag, or undefined when the flag is absent. */
function flag(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index < 0 ? undefined : args[index + 1];
}

describe("istio-init arguments (Istio's injection template)", () => {
  it("renders the default flags in Istio's order, with an empty -x", () => {
    expect(argsFor({})).toEqual([
      '-p',
      '15001',
      '-z',
      '15006',
      '-u',
      '1337',
      '-m',
      'REDIRECT',
      '-i',
      '*',
      '-x',
      '',
      '-b',
      '*',
      '-d',
      '15090,15021,15020',
      '--log_output_level=default:info',
    ]);
  });

  it('passes the outbound IP range annotations', () => {
    const args = argsFor({
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8,fd00::/8',
      'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.96.0.1/32',
    });
    expect(flag(args, '-i')).toBe('10.0.0.0/8,fd00::/8');
    expect(flag(args, '-x')).toBe('10.96.0.1/32');
  });

  it('passes an empty include list as an empty value, disabling capture', () => {
    const args = argsFor({
      'traffic.sidecar.istio.io/includeInboundPorts': '',
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '',
    });
    expect(flag(args, '-b')).toBe('');
    expect(flag(args, '-i')).toBe('');
  });

  it('canonicalises port lists (Istio trims each item)', () => {
    expect(flag(argsFor({ 'traffic.sidecar.istio.io/includeInboundPorts': ' 80, 443 ' }), '-b')).toBe(
      '80,443',
    );
  });

  it("puts the user's excluded inbound ports before the status port", () => {
    expect(flag(argsFor({ 'traffic.sidecar.istio.io/excludeInboundPorts': '4,5,6' }), '-d')).toBe(
      '15090,15021,4,5,6,15020',
    );
  });

  it('does not repeat the status port when the user already excludes it', () => {
    expect(flag(argsFor({ 'traffic.sidecar.istio.io/excludeInboundPorts': '15020,7' }), '-d')).toBe(
      '15090,15021,15020,7',
    );
  });

  it('follows the status port annotation, and leaves it out when it is 0', () => {
    expect(flag(argsFor({ 'status.sidecar.istio.io/port': '123' }), '-d')).toBe('15090,15021,123');
    expect(flag(argsFor({ 'status.sidecar.istio.io/port': '0' }), '-d')).toBe('15090,15021');
  });

  it('adds -q and -o only when outbound ports are set, after -d', () => {
    expect(argsFor({})).not.toContain('-q');
    expect(argsFor({})).not.toContain('-o');
    const args = argsFor({
      'traffic.sidecar.istio.io/includeOutboundPorts': '8080',
      'traffic.sidecar.istio.io/excludeOutboundPorts': '3306,5432',
    });
    expect(args.slice(args.indexOf('-d') + 2, args.indexOf('-d') + 6)).toEqual([
      '-q',
      '8080',
      '-o',
      '3306,5432',
    ]);
  });

  it('takes outbound ports from the values when no annotation is set', () => {
    const values = parseValues({ traffic: { excludeOutboundPorts: '25' } });
    expect(flag(argsFor({}, values), '-o')).toBe('25');
  });

  it('adds -k for virtual interfaces and -c for excluded interfaces', () => {
    const args = argsFor({
      'traffic.sidecar.istio.io/kubevirtInterfaces': 'net1, net2',
      'traffic.sidecar.istio.io/excludeInterfaces': 'eth1',
    });
    expect(flag(args, '-k')).toBe('net1,net2');
    expect(flag(args, '-c')).toBe('eth1');
    expect(args.indexOf('-k')).toBeLessThan(args.indexOf('-c'));
  });

  it('passes the interception mode and the agent log level', () => {
    const args = argsFor({
      'sidecar.istio.io/interceptionMode': 'NONE',
      'sidecar.istio.io/agentLogLevel': 'default:debug',
    });
    expect(flag(args, '-m')).toBe('NONE');
    expect(args.at(-1)).toBe('--log_output_level=default:debug');
  });
});
