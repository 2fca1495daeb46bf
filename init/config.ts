/**
 * The validated configuration of one `mesh-iptables` run. Every string in it has passed a validator in
 * validate.ts, so the rule builder may paste it into iptables-restore text as istio-iptables does.
 */
import type { LogFormat, LogLevel } from './log.js';

/** Istio's interception modes; only TPROXY changes the rules (NONE and REDIRECT build the same rules). */
export type InterceptionMode = 'REDIRECT' | 'TPROXY' | 'NONE';

/** An outbound CIDR list split per family, as Istio's SeparateV4V6 does. */
export interface IpRanges {
  /** The whole value was `*`: every destination, both families. */
  wildcard: boolean;
  /** IPv4 prefixes in netip's text form (as written). */
  ipv4: string[];
  /** IPv6 prefixes (including IPv4-mapped ones) in RFC 5952 form. */
  ipv6: string[];
  /** Some prefix's address is a loopback address (Istio's HasLoopBackIP, either family). */
  hasLoopback: boolean;
}

export interface DnsServers {
  ipv4: string[];
  ipv6: string[];
}

/** What the rules depend on: Istio's capture Config after FillConfigFromEnvironment. */
export interface CaptureConfig {
  /** -p: Envoy's outbound listener. */
  proxyPort: number;
  /** -z: Envoy's inbound listener. */
  inboundCapturePort: number;
  /** -e: the HBONE tunnel port, never captured. */
  inboundTunnelPort: number;
  /** -u: proxy users (uids or names, or uid ranges); one rule triple each. */
  proxyUids: string[];
  /** -g: proxy groups. */
  proxyGids: string[];
  /** -m */
  interceptionMode: InterceptionMode;
  /** -t */
  tproxyMark: number;
  /** -r */
  tproxyRouteTable: number;
  /** -b: `*`, or ports and port ranges; empty = no inbound capture. */
  inboundPorts: '*' | string[];
  /** -d: used only when inboundPorts is `*`. */
  inboundPortsExclude: string[];
  /** -c */
  excludeInterfaces: string[];
  /** -k */
  rerouteVirtualInterfaces: string[];
  /** -i: outbound capture destinations; neither wildcard nor any CIDR = no outbound capture. */
  outboundIpRangesInclude: IpRanges;
  /** -x: never a wildcard. */
  outboundIpRangesExclude: IpRanges;
  /** -q */
  outboundPortsInclude: string[];
  /** -o */
  outboundPortsExclude: string[];
  /** ISTIO_OUTBOUND_OWNER_GROUPS (`*` = all) and ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE. */
  ownerGroupsInclude: '*' | string[];
  ownerGroupsExclude: string[];
  /** ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR */
  ipv4LoopbackCidr: string;
  /** --redirect-dns; the rules use it only when capture-all is on or there are servers. */
  redirectDns: boolean;
  captureAllDns: boolean;
  /** DNS servers whose port 53 traffic is captured, verbatim (from --dns-servers) or from resolv.conf. */
  dnsServers: DnsServers;
  dropInvalid: boolean;
  /** Build and restore IPv6 rules. */
  ipv6: boolean;
}

/** How the run goes, apart from the rules. */
export interface RunSettings {
  dryRun: boolean;
  cleanupOnly: boolean;
  forceApply: boolean;
  reconcile: boolean;
  skipRuleApply: boolean;
  forceIptablesBinary?: 'legacy' | 'nft';
  /** The level of --log_output_level's default scope. */
  logLevel: LogLevel;
  /** Plain text as istio-iptables prints it, or JSON lines (--log_as_json). */
  logFormat: LogFormat;
  /** DRY_RUN_FILE_PATH: where a dry run writes Istio's golden-format transcript. */
  dryRunFilePath?: string;
}

/** Whether any inbound traffic is captured (-b is `*` or lists ports). */
export function capturesInbound(config: Pick<CaptureConfig, 'inboundPorts'>): boolean {
  return config.inboundPorts === '*' || config.inboundPorts.length > 0;
}
