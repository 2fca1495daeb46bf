import { describe, expect, it } from 'vitest';
import type { CommandRunner } from './command.js';
import { configureRoutes, hasFwmarkRule, RouteError, routeCommands } from './routes.js';
import { configFor } from './test-support.js';

describe("the pod's routing after the rules (Istio's ConfigureRoutes)", () => {
  it('needs nothing for IPv4 REDIRECT', () => {
    expect(routeCommands(configFor(['-b', '*', '-i', '*']))).toEqual([]);
  });

  it('adds the IPv6 passthrough source ::6 to lo when IPv6 is on, in any mode', () => {
    expect(routeCommands(configFor(['--ipv6=true', '-b', '*']))).toEqual([
      ['-6', 'addr', 'replace', '::6/128', 'dev', 'lo'],
    ]);
  });

  it('in TPROXY mode routes marked packets to lo through the configured table, per family', () => {
    expect(
      routeCommands(configFor(['--ipv6=true', '-m', 'TPROXY', '-b', '*', '-t', '1444', '-r', '144'])),
    ).toEqual([
      ['-6', 'addr', 'replace', '::6/128', 'dev', 'lo'],
      ['-4', 'rule', 'add', 'fwmark', '1444', 'lookup', '144'],
      ['-4', 'route', 'replace', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '144'],
      ['-6', 'rule', 'add', 'fwmark', '1444', 'lookup', '144'],
      ['-6', 'route', 'replace', 'local', '::/0', 'dev', 'lo', 'table', '144'],
    ]);
  });

  it('adds no TPROXY route without inbound ports', () => {
    expect(routeCommands(configFor(['-m', 'TPROXY']))).toEqual([]);
  });
});

describe('finding the TPROXY policy rule in `ip rule show`', () => {
  const listing =
    '0:\tfrom all lookup local\n32765:\tfrom all fwmark 0x539 lookup 133\n32766:\tfrom all lookup main\n';
  it('matches the mark (printed in hex) and the table', () => {
    expect(hasFwmarkRule(listing, '1337', '133')).toBe(true);
    expect(hasFwmarkRule(listing, '1337', '13')).toBe(false);
    expect(hasFwmarkRule(listing, '1338', '133')).toBe(false);
    expect(hasFwmarkRule('', '1337', '133')).toBe(false);
  });
});

describe('running the `ip` commands', () => {
  const tproxy = configFor(['--ipv6=true', '-m', 'TPROXY', '-b', '*']);

  /** A runner that records the `ip` calls and fails the one whose arguments start with `failing`. */
  function recordingRunner(failing: string, ruleList = '') {
    const calls: string[] = [];
    const run: CommandRunner = (file, args) => {
      const line = args.join(' ');
      calls.push(`${file} ${line}`);
      if (line.startsWith(failing))
        return Promise.resolve({ exitCode: 2, stdout: '', stderr: 'RTNETLINK answers: Permission denied\n' });
      return Promise.resolve({ exitCode: 0, stdout: line.endsWith('rule show') ? ruleList : '', stderr: '' });
    };
    return { run, calls };
  }

  it('runs each command, and skips a policy rule that exists', async () => {
    const { run, calls } = recordingRunner('none', '32765:\tfrom all fwmark 0x539 lookup 133\n');
    const ran = await configureRoutes(tproxy, run);
    expect(ran.map((args) => args.join(' '))).toEqual([
      '-6 addr replace ::6/128 dev lo',
      '-4 route replace local 0.0.0.0/0 dev lo table 133',
      '-6 route replace local ::/0 dev lo table 133',
    ]);
    expect(calls).toContain('ip -4 rule show');
  });

  it('a failing command is a RouteError naming it, its output, and the commands that ran before it', async () => {
    const { run } = recordingRunner('-4 rule add');
    const error = await configureRoutes(tproxy, run).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RouteError);
    expect((error as Error).message).toBe(
      'failed to configure routes: ip -4 rule add fwmark 1337 lookup 133: RTNETLINK answers: Permission denied ' +
        '(the ip commands that ran before it are not undone: ip -6 addr replace ::6/128 dev lo)',
    );
  });
});
