/**
 * What istio-iptables does to the pod's routing after the rules (capture/run.go configureIPv6Addresses and
 * tools/common/tproxy ConfigureRoutes): the IPv6 passthrough source ::6 on lo, which Envoy binds for inbound
 * upstream connections, and in TPROXY mode the policy route that delivers marked packets to lo. Running it again
 * changes nothing: the address and route are replaced, and a policy rule that exists is left alone.
 */
import { INBOUND_PASSTHROUGH_SOURCE_IPV6 } from '../common/constants.js';
import { capturesInbound, type CaptureConfig } from './config.js';
import { runCommand, type CommandRunner } from './command.js';

/** The `ip` commands for a configuration, in order; none when IPv6 is off and the mode is not TPROXY. */
export function routeCommands(config: CaptureConfig): string[][] {
  const commands: string[][] = [];
  if (config.ipv6)
    commands.push(['-6', 'addr', 'replace', `${INBOUND_PASSTHROUGH_SOURCE_IPV6}/128`, 'dev', 'lo']);
  if (config.interceptionMode === 'TPROXY' && capturesInbound(config)) {
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

/** An `ip` command failed; the message names it and the commands that ran before it, whose changes stay. */
export class RouteError extends Error {
  override name = 'RouteError';
}

/** Whether `ip rule show` output lists the rule `fwmark <mark> lookup <table>` (ip prints the mark in hex). */
export function hasFwmarkRule(ruleList: string, mark: string, table: string): boolean {
  const pattern = new RegExp(`\\bfwmark 0x${Number(mark).toString(16)}\\s+lookup ${table}\\b`);
  return ruleList.split('\n').some((line) => pattern.test(line));
}

/**
 * Runs the commands, skipping a policy rule that exists (`ip rule add` would duplicate it); returns those run.
 * Throws RouteError at the first command that fails.
 */
export async function configureRoutes(
  config: CaptureConfig,
  run: CommandRunner = runCommand,
): Promise<string[][]> {
  const ran: string[][] = [];
  const ip = async (args: readonly string[]) => {
    const result = await run('ip', args);
    if (result.exitCode !== 0) {
      const detail = result.stderr.trim() || `exit ${result.exitCode}`;
      const kept =
        ran.length === 0
          ? ''
          : ` (the ip commands that ran before it are not undone: ${ran.map((done) => `ip ${done.join(' ')}`).join('; ')})`;
      throw new RouteError(`failed to configure routes: ip ${args.join(' ')}: ${detail}${kept}`);
    }
    return result.stdout;
  };
  for (const args of routeCommands(config)) {
    const [family, object, , , mark, , table] = args;
    if (
      object === 'rule' &&
      hasFwmarkRule(await ip([family ?? '-4', 'rule', 'show']), mark ?? '', table ?? '')
    )
      continue;
    await ip(args);
    ran.push(args);
  }
  return ran;
}
