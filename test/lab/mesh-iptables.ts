import { PORTS, PROXY_UID } from '../../common/constants.js';
import type { CommandResult } from './command.js';
import type { IptablesBackend } from './iptables.js';
import type { Pod } from './lab.js';
import { builtFile } from './paths.js';

/** The istio-init arguments the webhook renders for a pod without traffic annotations (Istio's defaults). */
// prettier-ignore
export const WEBHOOK_DEFAULT_ARGS: readonly string[] = [
  '-p', String(PORTS.outboundCapture),
  '-z', String(PORTS.inboundCapture),
  '-u', String(PROXY_UID),
  '-m', 'REDIRECT',
  '-i', '*',
  '-x', '',
  '-b', '*',
  '-d', [PORTS.proxyStats, PORTS.readiness, PORTS.status].join(','),
  '--log_output_level=default:info',
];

/**
 * Runs the built init program inside a pod with the given iptables backend and IPv6 on: the lab's pods are
 * dual-stack, where detection alone would pick IPv4 only, as Istio's does. The environment is only PATH plus `env`,
 * so variables of the test process (the program reads many, as Istio's does) cannot change its behaviour.
 */
export function runMeshIptables(
  pod: Pod,
  backend: IptablesBackend,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  return pod.exec('node', [builtFile('init/main.js'), '--ipv6=true', ...args], {
    env: { PATH: process.env.PATH, FORCE_IPTABLES_BINARY: backend, ...env },
    allowFailure: true,
  });
}
