/**
 * The istio-iptables arguments of the istio-init container, derived from the pod's settings exactly as Istio's
 * injection template does (flag set and order), so the same init container works with `mesh-iptables` and with
 * Istio's own `istio-iptables`. Values are the validated, canonical forms from PodSettings.
 */
import { PORTS, PROXY_UID } from '../common/constants.js';
import type { PodSettings } from './pod-settings.js';

export function renderInitArgs(settings: PodSettings): string[] {
  const list = (items: '*' | readonly (string | number)[]) => (items === '*' ? '*' : items.join(','));
  // prettier-ignore
  const args = [
    '-p', String(PORTS.outboundCapture),
    '-z', String(PORTS.inboundCapture),
    '-u', String(PROXY_UID),
    '-m', settings.interceptionMode,
    '-i', list(settings.includeOutboundIPRanges),
    '-x', list(settings.excludeOutboundIPRanges),
    '-b', list(settings.includeInboundPorts),
    '-d', excludedInboundPorts(settings),
  ];
  if (settings.includeOutboundPorts !== undefined) args.push('-q', list(settings.includeOutboundPorts));
  if (settings.excludeOutboundPorts !== undefined) args.push('-o', list(settings.excludeOutboundPorts));
  if (settings.rerouteVirtualInterfaces !== undefined)
    args.push('-k', list(settings.rerouteVirtualInterfaces));
  if (settings.excludeInterfaces !== undefined) args.push('-c', list(settings.excludeInterfaces));
  args.push(`--log_output_level=${settings.agentLogLevel}`);
  return args;
}

/**
 * `15090,15021,` + Istio's excludeInboundPort(statusPort, excludes): the user's list first, then the status port
 * unless it is 0 or already listed.
 */
function excludedInboundPorts({ statusPort, excludeInboundPorts }: PodSettings): string {
  const excludes = [...excludeInboundPorts];
  if (statusPort !== 0 && !excludes.includes(statusPort)) excludes.push(statusPort);
  return [PORTS.proxyStats, PORTS.readiness, ...excludes].join(',');
}
