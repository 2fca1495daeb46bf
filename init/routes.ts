/**
 * What istio-iptables does to the pod's routing after the rules (capture/run.go configureIPv6Addresses and
 * tools/common/tproxy ConfigureRoutes): the IPv6 passthrough source ::6 on lo, which Envoy binds for inbound
 * upstream connections, and in TPROXY mode the policy route that delivers marked packets to lo. Running it again
 * changes nothing: the address and route are replaced, and a policy rule that exists is left alone.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { INBOUND_PASSTHROUGH_SOURCE_IPV6 } from '../common/constants.js';
import type { CaptureConfig } from './config.js';

/** The `ip` commands for a configuration, in order; none when IPv6 is off and the mode is not TPROXY. */
export function routeCommands(config: CaptureConfig): string[][] {
  const commands: string[][] = [];
  if (config.ipv6)
    commands.push(['-6', 'addr', 'replace', `${INBOUND_PASSTHROUGH_SOURCE_IPV6}/128`, 'dev', 'lo']);
  const inbound = config.inboundPorts === '*' || config.inboundPorts.length > 0;
  if (config.interceptionMode === 'TPROXY' && inbound) {
    const [mark, table] = [String(config.tproxyMark), String(config.tproxyRouteTable)];
    const families = config.ipv6 ? (['-4', '-6'] as const) : (['-4'] as const);
    for (const family of families) {
      const everything = family === '-4' ? '0.0.0.0/0' : '::/0';
      commands.push([family, 'rule', 'add', 'fwmark', mark, 'lookup', table]);
      commands.push([family, 'route', 'replace', 'local', everything, 'dev', 'lo', 'table', table]);
    }
  }
  return commands;
}

export class RouteError extends Error {
  override name = 'RouteError';
}

/** Runs `ip` with these arguments and returns its stdout. */
export type IpRunner = (args: readonly string[]) => Promise<string>;

const runIp: IpRunner = async (args) => (await promisify(execFile)('ip', [...args])).stdout;

/** Whether `ip rule show` output lists the rule `fwmark <mark> lookup <table>` (ip prints the mark in hex). */
export function hasFwmarkRule(ruleList: string, mark: string, table: string): boolean {
  const pattern = new RegExp(`\\bfwmark 0x${Number(mark).toString(16)}\\s+lookup ${table}\\b`);
  return ruleList.split('\n').some((line) => pattern.test(line));
}

/** Runs the commands, skipping a policy rule that exists (`ip rule add` would duplicate it); returns those run. */
export async function configureRoutes(config: CaptureConfig, run: IpRunner = runIp): Promise<string[][]> {
  const ran: string[][] = [];
  for (const args of routeCommands(config)) {
    const [family, object, , , mark, , table] = args;
    try {
      if (
        object === 'rule' &&
        hasFwmarkRule(await run([family ?? '-4', 'rule', 'show']), mark ?? '', table ?? '')
      ) {
        continue;
      }
      await run(args);
      ran.push(args);
    } catch (error) {
      const detail = (error as { stderr?: string }).stderr ?? (error as Error).message;
      throw new RouteError(`failed to configure routes: ip ${args.join(' ')}: ${String(detail).trim()}`);
    }
  }
  return ran;
}
