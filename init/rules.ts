/**
 * Istio's capture rules (tools/istio-iptables/pkg/capture/run.go, IptablesConfigurator.Run) for a validated
 * configuration, in Istio's emission order, as the rule model (one per family); rendered, they are the
 * iptables-restore input. Pure: the same configuration always gives the same rules.
 */
import {
  CHAINS,
  DNS_PORT,
  INBOUND_PASSTHROUGH_SOURCE_IPV4,
  INBOUND_PASSTHROUGH_SOURCE_IPV6,
  IPV6_LOOPBACK_CIDR,
  OUTBOUND_MARK,
  PORTS,
} from '../common/constants.js';
import { capturesInbound, type CaptureConfig, type IpRanges } from './config.js';
import { renderRestoreText, rulesetOf } from './restore-text.js';
import type { IptablesState, TableRule } from './ruleset.js';

type Table = 'filter' | 'mangle' | 'nat' | 'raw';

/** The configured rules of each family. */
export interface CaptureRules {
  ipv4: IptablesState;
  /** Absent when IPv6 is off. */
  ipv6?: IptablesState;
}

export interface RestoreTexts {
  ipv4: string;
  /** Absent when IPv6 is off. */
  ipv6?: string;
}

type Family = 'ipv4' | 'ipv6';
const BOTH: readonly Family[] = ['ipv4', 'ipv6'];

/** A token that differs per family (Istio's AppendVersionedRule placeholder). */
interface PerFamily {
  ipv4: string;
  ipv6: string;
}
type Token = string | PerFamily;

/**
 * Rule parameters written as iptables would read them: the literal text is split on spaces, and each
 * interpolated value (or list of values) becomes whole tokens, never split or joined with its neighbours.
 */
function ruleParams(
  literals: TemplateStringsArray,
  ...values: (string | number | PerFamily | readonly Token[])[]
): Token[] {
  const tokens: Token[] = [];
  literals.forEach((literal, i) => {
    tokens.push(...literal.split(' ').filter((token) => token !== ''));
    const value = values[i];
    if (value === undefined) return;
    if (Array.isArray(value)) tokens.push(...(value as readonly Token[]));
    else tokens.push(typeof value === 'number' ? String(value) : (value as string | PerFamily));
  });
  return tokens;
}

/** Istio's IptablesRuleBuilder: two ordered rule lists; IPv6 rules are dropped when IPv6 is off. */
class RuleLists {
  readonly ipv4: TableRule[] = [];
  readonly ipv6: TableRule[] = [];
  constructor(private readonly ipv6Enabled: boolean) {}

  append(table: Table, chain: string, params: readonly Token[], families = BOTH) {
    for (const family of families) this.add(family, { table, chain }, params);
  }

  insert(table: Table, chain: string, position: number, params: readonly Token[], families = BOTH) {
    for (const family of families) this.add(family, { table, chain, insertAt: position }, params);
  }

  private add(family: Family, at: Omit<TableRule, 'spec'>, params: readonly Token[]) {
    if (family === 'ipv6' && !this.ipv6Enabled) return;
    const tokens = params.map((token) => (typeof token === 'string' ? token : token[family]));
    this[family].push({ ...at, spec: tokens.join(' ') });
  }
}

/** The iptables-restore input of each family. */
export function renderRules(rules: CaptureRules): RestoreTexts {
  const ipv4 = renderRestoreText(rules.ipv4);
  return rules.ipv6 === undefined ? { ipv4 } : { ipv4, ipv6: renderRestoreText(rules.ipv6) };
}

export function buildRestoreTexts(config: CaptureConfig): RestoreTexts {
  return renderRules(buildRules(config));
}

/** The proxy's uids and gids with the owner-match option of each, uids first (Istio's loop order). */
function proxyOwners(config: CaptureConfig): [owner: '--uid-owner' | '--gid-owner', id: string][] {
  return [
    ...config.proxyUids.map((id) => ['--uid-owner', id] as ['--uid-owner', string]),
    ...config.proxyGids.map((id) => ['--gid-owner', id] as ['--gid-owner', string]),
  ];
}

export function buildRules(config: CaptureConfig): CaptureRules {
  const r = new RuleLists(config.ipv6);
  const { output, inbound, redirect, inRedirect, drop } = CHAINS;
  const loopback: PerFamily = { ipv4: config.ipv4LoopbackCidr, ipv6: IPV6_LOOPBACK_CIDR };
  const passthrough: PerFamily = {
    ipv4: `${INBOUND_PASSTHROUGH_SOURCE_IPV4}/32`,
    ipv6: `${INBOUND_PASSTHROUGH_SOURCE_IPV6}/128`,
  };
  const tunnel = config.inboundTunnelPort;
  const { dnsServers, captureAllDns } = config;
  const redirectDns =
    config.redirectDns && (captureAllDns || dnsServers.ipv4.length > 0 || dnsServers.ipv6.length > 0);

  // Interfaces never captured, then virtual interfaces' inbound traffic kept out of the inbound capture.
  for (const nic of config.excludeInterfaces) {
    r.append('nat', 'PREROUTING', ruleParams`-i ${nic} -j RETURN`);
    r.append('nat', 'OUTPUT', ruleParams`-o ${nic} -j RETURN`);
  }
  if (config.interceptionMode === 'TPROXY') {
    for (const nic of config.excludeInterfaces) {
      r.append('mangle', 'PREROUTING', ruleParams`-i ${nic} -j RETURN`);
      r.append('mangle', 'OUTPUT', ruleParams`-o ${nic} -j RETURN`);
    }
  }
  for (const nic of config.rerouteVirtualInterfaces)
    r.insert('nat', 'PREROUTING', 1, ruleParams`-i ${nic} -j RETURN`);

  if (config.dropInvalid) {
    r.append('mangle', 'PREROUTING', ruleParams`-m conntrack --ctstate INVALID -j ${drop}`);
    r.append('mangle', drop, ruleParams`-j DROP`);
  }

  r.append('nat', inbound, ruleParams`-p tcp --dport ${tunnel} -j RETURN`);
  r.append('nat', redirect, ruleParams`-p tcp -j REDIRECT --to-ports ${config.proxyPort}`);
  r.append('nat', inRedirect, ruleParams`-p tcp -j REDIRECT --to-ports ${config.inboundCapturePort}`);

  addInboundCapture(r, config, loopback);

  r.append('nat', 'OUTPUT', ruleParams`-j ${output}`);
  for (const port of config.outboundPortsExclude) {
    r.append('nat', output, ruleParams`-p tcp --dport ${port} -j RETURN`);
    r.append('nat', output, ruleParams`-p udp --dport ${port} -j RETURN`);
  }
  r.append('nat', output, ruleParams`-o lo -s ${passthrough} -j RETURN`);

  // The proxy's own traffic: to its own pod over lo it goes to the inbound listener; otherwise it is left alone.
  // Only the uid rule spares DNS (53) from the inbound redirect, as in Istio.
  for (const [owner, id] of proxyOwners(config)) {
    const notTunnel =
      redirectDns && owner === '--uid-owner'
        ? ruleParams`-m multiport ! --dports ${`${DNS_PORT},${tunnel}`}`
        : ruleParams`! --dport ${tunnel}`;
    r.append(
      'nat',
      output,
      ruleParams`-o lo ! -d ${loopback} -p tcp ${notTunnel} -m owner ${owner} ${id} -j ${inRedirect}`,
    );
    if (!config.outboundIpRangesInclude.hasLoopback) {
      const notDns = redirectDns ? ruleParams`-p tcp ! --dport ${DNS_PORT}` : [];
      r.append('nat', output, ruleParams`-o lo ${notDns} -m owner ! ${owner} ${id} -j RETURN`);
    }
    r.append('nat', output, ruleParams`-m owner ${owner} ${id} -j RETURN`);
  }

  if (config.ownerGroupsInclude === '*') {
    for (const group of config.ownerGroupsExclude)
      r.append('nat', output, ruleParams`-m owner --gid-owner ${group} -j RETURN`);
  } else {
    const noneOf = config.ownerGroupsInclude.flatMap((group) => ruleParams`-m owner ! --gid-owner ${group}`);
    r.append('nat', output, ruleParams`${noneOf} -j RETURN`);
  }

  if (redirectDns) addDnsCapture(r, config);

  r.append('nat', output, ruleParams`-d ${loopback} -j RETURN`);
  const exclude = config.outboundIpRangesExclude;
  for (const cidr of exclude.ipv4) r.append('nat', output, ruleParams`-d ${cidr} -j RETURN`, ['ipv4']);
  for (const cidr of exclude.ipv6) r.append('nat', output, ruleParams`-d ${cidr} -j RETURN`, ['ipv6']);
  for (const port of config.outboundPortsInclude)
    r.append('nat', output, ruleParams`-p tcp --dport ${port} -j ${redirect}`);
  addOutboundInclude(r, config, config.outboundIpRangesInclude, 'ipv4');
  addOutboundInclude(r, config, config.outboundIpRangesInclude, 'ipv6');

  if (config.interceptionMode === 'TPROXY') addTproxyTail(r, config, loopback, passthrough);
  const ipv4 = rulesetOf(r.ipv4);
  return config.ipv6 ? { ipv4, ipv6: rulesetOf(r.ipv6) } : { ipv4 };
}

/** Inbound capture (-b): nat REDIRECT to the inbound listener, or mangle TPROXY. */
function addInboundCapture(r: RuleLists, config: CaptureConfig, loopback: PerFamily) {
  if (!capturesInbound(config)) return;
  const { inbound, inRedirect, divert, tproxy } = CHAINS;
  const useTproxy = config.interceptionMode === 'TPROXY';
  const mark = config.tproxyMark;
  const table: Table = useTproxy ? 'mangle' : 'nat';
  if (useTproxy) {
    r.append('mangle', divert, ruleParams`-j MARK --set-mark ${mark}`);
    r.append('mangle', divert, ruleParams`-j ACCEPT`);
    const tproxyMark = `${mark}/0xffffffff`;
    r.append(
      'mangle',
      tproxy,
      ruleParams`! -d ${loopback} -p tcp -j TPROXY --tproxy-mark ${tproxyMark} --on-port ${config.inboundCapturePort}`,
    );
  }
  r.append(table, 'PREROUTING', ruleParams`-p tcp -j ${inbound}`);
  const established = ruleParams`-m conntrack --ctstate RELATED,ESTABLISHED -j ${divert}`;
  if (config.inboundPorts === '*') {
    for (const port of config.inboundPortsExclude)
      r.append(table, inbound, ruleParams`-p tcp --dport ${port} -j RETURN`);
    if (useTproxy) {
      r.append('mangle', inbound, ruleParams`-p tcp ${established}`);
      r.append('mangle', inbound, ruleParams`-p tcp -j ${tproxy}`);
    } else {
      r.append('nat', inbound, ruleParams`-p tcp -j ${inRedirect}`);
    }
    return;
  }
  for (const port of config.inboundPorts) {
    if (useTproxy) {
      r.append('mangle', inbound, ruleParams`-p tcp --dport ${port} ${established}`);
      r.append('mangle', inbound, ruleParams`-p tcp --dport ${port} -j ${tproxy}`);
    } else {
      r.append('nat', inbound, ruleParams`-p tcp --dport ${port} -j ${inRedirect}`);
    }
  }
}

/** Outbound capture by destination (-i) for one family, with the virtual interfaces' traffic (-k) redirected too. */
function addOutboundInclude(r: RuleLists, config: CaptureConfig, include: IpRanges, family: Family) {
  const { output, redirect } = CHAINS;
  const virtual = config.rerouteVirtualInterfaces;
  if (include.wildcard) {
    r.append('nat', output, ruleParams`-j ${redirect}`, [family]);
    for (const nic of virtual)
      r.insert('nat', 'PREROUTING', 1, ruleParams`-i ${nic} -j ${redirect}`, [family]);
    return;
  }
  for (const cidr of include[family]) {
    for (const nic of virtual)
      r.insert('nat', 'PREROUTING', 1, ruleParams`-i ${nic} -d ${cidr} -j ${redirect}`, [family]);
    r.append('nat', output, ruleParams`-d ${cidr} -j ${redirect}`, [family]);
  }
}

/** Istio's SetupDNSRedir: DNS to the agent's listener, and conntrack zones that keep the two UDP legs apart. */
function addDnsCapture(r: RuleLists, config: CaptureConfig) {
  const { output, inbound } = CHAINS;
  const dnsChain = CHAINS.outputDns;
  const servers = { ipv4: config.dnsServers.ipv4, ipv6: config.dnsServers.ipv6 };
  const hostBits = { ipv4: '/32', ipv6: '/128' };
  const all = config.captureAllDns;
  const [dns, agent] = [DNS_PORT, PORTS.dnsCapture];

  r.append('raw', 'OUTPUT', ruleParams`-j ${dnsChain}`);
  for (const family of BOTH) {
    if (all || servers[family].length > 0) r.append('nat', output, ruleParams`-j ${dnsChain}`, [family]);
  }

  // TCP goes with --to-ports and UDP with --to-port, as Istio writes them.
  for (const [protocol, toPort] of [
    ['tcp', '--to-ports'],
    ['udp', '--to-port'],
  ] as const) {
    if (all) {
      r.append('nat', dnsChain, ruleParams`-p ${protocol} --dport ${dns} -j REDIRECT ${toPort} ${agent}`);
      continue;
    }
    for (const family of BOTH) {
      for (const server of servers[family]) {
        const destination = `${server}${hostBits[family]}`;
        r.append(
          'nat',
          dnsChain,
          ruleParams`-p ${protocol} --dport ${dns} -d ${destination} -j REDIRECT ${toPort} ${agent}`,
          [family],
        );
      }
    }
  }

  for (const [owner, id] of proxyOwners(config)) {
    r.append('raw', dnsChain, ruleParams`-p udp --dport ${dns} -m owner ${owner} ${id} -j CT --zone 1`);
    r.append('raw', dnsChain, ruleParams`-p udp --sport ${agent} -m owner ${owner} ${id} -j CT --zone 2`);
  }
  if (all) {
    r.append('raw', 'PREROUTING', ruleParams`-j ${inbound}`);
    r.append('raw', dnsChain, ruleParams`-p udp --dport ${dns} -j CT --zone 2`);
    r.append('raw', inbound, ruleParams`-p udp --sport ${dns} -j CT --zone 1`);
    return;
  }
  for (const family of BOTH) {
    if (servers[family].length > 0) r.append('raw', 'PREROUTING', ruleParams`-j ${inbound}`, [family]);
    for (const server of servers[family]) {
      const address = `${server}${hostBits[family]}`;
      r.append('raw', dnsChain, ruleParams`-p udp --dport ${dns} -d ${address} -j CT --zone 2`, [family]);
      r.append('raw', inbound, ruleParams`-p udp --sport ${dns} -s ${address} -j CT --zone 1`, [family]);
    }
  }
}

/** TPROXY's mangle rules: keep marks across the connection and let the proxy's own loopback traffic through. */
function addTproxyTail(r: RuleLists, config: CaptureConfig, loopback: PerFamily, passthrough: PerFamily) {
  const mark = config.tproxyMark;
  r.append('mangle', 'PREROUTING', ruleParams`-p tcp -m mark --mark ${mark} -j CONNMARK --save-mark`);
  r.append('mangle', 'OUTPUT', ruleParams`-p tcp -o lo -m mark --mark ${mark} -j RETURN`);
  for (const [owner, id] of proxyOwners(config)) {
    r.append(
      'mangle',
      'OUTPUT',
      ruleParams`! -d ${loopback} -p tcp -o lo -m owner ${owner} ${id} -j MARK --set-mark ${OUTBOUND_MARK}`,
    );
  }
  r.append('mangle', 'OUTPUT', ruleParams`-p tcp -m connmark --mark ${mark} -j CONNMARK --restore-mark`);
  r.insert('mangle', CHAINS.inbound, 1, ruleParams`-p tcp -m mark --mark ${mark} -j RETURN`);
  r.insert('mangle', CHAINS.inbound, 2, ruleParams`-p tcp -s ${passthrough} -i lo -j RETURN`);
  r.insert('mangle', CHAINS.inbound, 3, ruleParams`-p tcp -i lo -m mark ! --mark ${OUTBOUND_MARK} -j RETURN`);
}
