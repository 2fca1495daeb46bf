/**
 * The last step of Istio's FillConfigFromEnvironment: what the command line left to the pod is read from it.
 * The proxy uid defaults to ENVOY_USER's uid (else 1337) and the gid to the uid; IPv6 is detected from the
 * addresses unless --ipv6 says; DNS servers come from --dns-servers, or from /etc/resolv.conf when DNS capture
 * needs them. With --ipv6 the caller describes the pod's environment itself (tests, dry runs elsewhere), so the
 * host's interfaces and resolv.conf are not read at all.
 */
import type { CaptureConfig, DnsServers } from './config.js';
import { detectIpv6, dnsServersOf, RESOLV_CONF, uidOf, type Host } from './environment.js';
import { DEFAULT_PROXY_UID, FLAGS, type Problem, type Settings } from './flags.js';

export type ConfigResult =
  { ok: true; config: CaptureConfig; notes: string[] } | { ok: false; problems: Problem[] };

export function resolveConfig(settings: Settings, host: Host): ConfigResult {
  const problems: Problem[] = [];
  const notes: string[] = [];
  const { capture } = settings;

  const proxyUids = settings.proxyUids ?? [uidOf(host.passwd(), settings.envoyUser) ?? DEFAULT_PROXY_UID];
  const proxyGids = settings.proxyGids ?? proxyUids;

  let ipv6 = settings.ipv6;
  if (ipv6 === undefined) {
    ipv6 = detectIpv6(host.addresses(), settings.dualStack);
    if (ipv6 === undefined) {
      problems.push({
        source: 'local addresses',
        reason: 'no valid local IP address found (only loopback and link-local addresses)',
        accepted: '--ipv6=true or --ipv6=false to say whether to build IPv6 rules',
      });
    }
  }

  let dnsServers: DnsServers = settings.dnsServers ?? { ipv4: [], ipv6: [] };
  const needsResolvConf = capture.redirectDns && !capture.captureAllDns && settings.ipv6 === undefined;
  if (settings.dnsServers === undefined && needsResolvConf) {
    try {
      dnsServers = dnsServersOf(host.resolvConf());
    } catch (error) {
      problems.push({
        source: RESOLV_CONF,
        reason: `cannot be read (${(error as Error).message})`,
        accepted: '--dns-servers=LIST or --capture-all-dns',
      });
    }
  }
  if (
    capture.redirectDns &&
    !capture.captureAllDns &&
    dnsServers.ipv4.length + dnsServers.ipv6.length === 0
  ) {
    notes.push(
      'REDIRECT_DNS is set, but CAPTURE_ALL_DNS is false, and no DNS servers provided. DNS capture disabled.',
    );
  }

  if (Array.isArray(capture.ownerGroupsInclude) && capture.ownerGroupsInclude.length === 0) {
    notes.push(
      `${FLAGS.ownerGroupsInclude.env.join(', ')} is set but empty, so no group's traffic is included: outbound capture is ` +
        'effectively off. Unset it or set it to "*" to capture the outbound traffic of every group.',
    );
  }

  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config: { ...capture, proxyUids, proxyGids, ipv6: ipv6 ?? false, dnsServers }, notes };
}
