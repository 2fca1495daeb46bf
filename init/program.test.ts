import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runProgram } from './program.js';
import { fixedHost } from './test-support.js';

/**
 * Runs mesh-iptables in-process and collects what it writes where; `logs` are the JSON lines on stderr (with
 * --log_as_json), `summary` the other stderr lines.
 */
async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runProgram(argv, env, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    host: fixedHost({ resolvConf: 'nameserver 10.96.0.10\n' }),
  });
  const lines = stderr.split('\n').filter((line) => line !== '');
  const logs = lines
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const summary = lines.filter((line) => !line.startsWith('{'));
  return { code, stdout, stderr, logs, summary };
}

const json = '--log_as_json';

describe('mesh-iptables --dry-run', () => {
  it('prints only the restore input: IPv4, then IPv6 when IPv6 is on', async () => {
    const result = await run(['--dry-run', '--ipv6=true', '-b', '*', '-i', '*']);
    expect(result.code).toBe(0);
    const blocks = result.stdout.split(/^(?=\* nat$)/m);
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toContain('-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN');
    expect(blocks[1]).toContain('-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN');
    expect(result.stdout.split('\n').every((line) => /^(\* nat|-[NAI] .*|COMMIT|)$/.test(line))).toBe(true);
    expect(result.stderr).not.toContain('-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN\n* nat');
  });

  it('logs plain text on stderr, as istio-iptables: the configuration and the restore input on lines of their own', async () => {
    const { stderr, stdout } = await run(['--dry-run', '--ipv6=false', '-b', '80,81']);
    const entries = stderr.split(/^(?=\d{4}-\d\d-\d\dT[\d:.]+Z\t)/m);
    expect(entries.map((entry) => entry.split('\n')[0]?.replace(/^\S+\t/, ''))).toEqual([
      'info\teffective configuration',
      'info\tiptables-restore input family=ipv4',
      'info\tfinal state: dry run, nothing changed applied=false',
    ]);
    expect(entries[0]).toContain('\ninboundPorts=80,81\n');
    expect(entries[0]).toContain('\nipv6=false\n');
    expect(entries[0]).toContain('\ndryRun=true\n');
    expect(entries[1]?.split('\n').slice(1).join('\n')).toBe(stdout);
  });

  it('logs JSON lines with --log_as_json: ISO time, the level by name, the message and the fields', async () => {
    const { logs, stdout, summary } = await run(['--dry-run', '--ipv6=false', '-b', '80', json]);
    expect(summary).toEqual([]);
    expect(logs.map((entry) => entry.msg)).toEqual([
      'effective configuration',
      'iptables-restore input',
      'final state: dry run, nothing changed',
    ]);
    expect(logs[0]).toMatchObject({ level: 'info', config: { inboundPorts: '80', ipv6: false } });
    expect(new Date(String(logs[0]?.time)).toISOString()).toBe(logs[0]?.time);
    expect(logs[1]).toMatchObject({ family: 'ipv4', input: stdout });
  });

  it('follows --log_output_level', async () => {
    const quiet = await run(['--dry-run', '--ipv6=false', '--log_output_level=default:warn']);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
  });

  it('warns when DNS capture has nothing to capture', async () => {
    const { logs } = await run(['--dry-run', '--ipv6=false', '--redirect-dns', '--dns-servers=', json]);
    expect(logs[0]).toMatchObject({ level: 'warn', msg: expect.stringContaining('DNS capture disabled') });
  });

  describe('DRY_RUN_FILE_PATH', () => {
    let dir = '';
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("receives Istio's golden transcript: save calls around the restore lines", async () => {
      dir = mkdtempSync(join(tmpdir(), 'mesh-iptables-'));
      const path = join(dir, 'transcript');
      const { stdout } = await run(['--dry-run', '--ipv6=true'], { DRY_RUN_FILE_PATH: path });
      const restoreLines = stdout.trimEnd().split('\n');
      expect(readFileSync(path, 'utf8')).toBe(
        ['iptables-save', 'ip6tables-save', ...restoreLines, 'iptables-save', 'ip6tables-save', ''].join(
          '\n',
        ),
      );
    });
  });
});

describe('mesh-iptables with invalid input', () => {
  it('exits 1 (as istio-iptables does), prints every problem, and builds nothing', async () => {
    const result = await run(['-o', '80 -j ACCEPT', '-c', 'eth0\n-A'], {
      DRY_RUN: 'true',
      INVALID_DROP: 'maybe',
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.logs).toEqual([]);
    expect(result.stderr.split('\n')).toEqual([
      'mesh-iptables: invalid configuration, nothing was changed:',
      expect.stringMatching(/^ {2}- --istio-exclude-interfaces \(-c\): invalid value "eth0\\n-A"/),
      expect.stringMatching(
        /^ {2}- --istio-local-outbound-ports-exclude \(-o\): invalid value "80 -j ACCEPT"/,
      ),
      expect.stringMatching(
        /^ {2}- environment variable INVALID_DROP \(--drop-invalid\): invalid value "maybe"/,
      ),
      '',
    ]);
  });

  it('exits 1 when the pod gives no address to decide IPv6 from', async () => {
    let stderr = '';
    const code = await runProgram(
      ['--dry-run'],
      {},
      {
        stdout: () => undefined,
        stderr: (text) => (stderr += text),
        host: fixedHost({ addresses: ['127.0.0.1'] }),
      },
    );
    expect(code).toBe(1);
    expect(stderr).toContain('no valid local IP address found');
  });

  it('--help prints the flags and their variables', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('-b, --istio-inbound-ports');
    expect(stdout).toContain('[env REDIRECT_DNS, ISTIO_META_DNS_CAPTURE]');
  });

  it('--help shows every flag with its default and its environment variables', async () => {
    const { stdout } = await run(['--help']);
    const line = (flag: string) => stdout.split('\n').find((text) => text.includes(flag)) ?? '';
    expect(line('--inbound-capture-port')).toMatch(/\(default "15006"\) \[env INBOUND_CAPTURE_PORT\]$/);
    expect(line('--envoy-port')).toMatch(/\(default "15001"\)$/);
    expect(line('--istio-service-cidr')).toMatch(/\(default empty\) \[env ISTIO_SERVICE_CIDR\]$/);
    expect(line('--reconcile')).toMatch(/\(default "true"\) \[env RECONCILE\]$/);
    expect(line('ISTIO_OUTBOUND_OWNER_GROUPS ')).toMatch(/\(default "\*"\)$/);
  });

  it.each([['--help=true'], ['-h'], ['-nh'], ['-hn'], ['--ipv6=false', '--help=1']])(
    '%s prints the help and runs nothing: no rules, no logs',
    async (...argv) => {
      const { code, stdout, stderr, logs } = await run(argv);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: mesh-iptables \[istio-iptables\] \[flags\]\n/);
      expect(stdout).not.toContain('* nat');
      expect(stderr).toBe('');
      expect(logs).toEqual([]);
    },
  );

  it('--help=false runs the program', async () => {
    const { code, stdout } = await run(['--help=false', '--dry-run', '--ipv6=false']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\* nat\n/);
  });
});

describe('mesh-iptables --dry-run --cleanup-only', () => {
  it('prints nothing on stdout (what cleanup removes depends on the kernel) and says what it would remove', async () => {
    const result = await run(['--dry-run', '--cleanup-only', '--ipv6=true', '-b', '*']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('final state: dry run of --cleanup-only, nothing changed');
    expect(result.summary.at(-1)).toBe(
      "mesh-iptables: dry run: --cleanup-only would remove every ISTIO_* chain, every jump into one and this configuration's rules in built-in chains (IPv4 and IPv6); nothing changed",
    );
    expect(result.logs).toEqual([]);
  });
});

describe('ISTIO_OUTBOUND_OWNER_GROUPS', () => {
  it('set but empty: warns that outbound capture is effectively off', async () => {
    const { code, logs } = await run(['--dry-run', '--ipv6=false', '-i', '*', json], {
      ISTIO_OUTBOUND_OWNER_GROUPS: '',
    });
    expect(code).toBe(0);
    expect(logs[0]).toMatchObject({
      level: 'warn',
      msg: expect.stringContaining('ISTIO_OUTBOUND_OWNER_GROUPS is set but empty'),
    });
    expect(logs[0]?.msg).toContain('outbound capture is effectively off');
  });

  it('unset or "*": no warning', async () => {
    for (const env of [{}, { ISTIO_OUTBOUND_OWNER_GROUPS: '*' }] as Record<string, string>[]) {
      const { logs } = await run(['--dry-run', '--ipv6=false', '-i', '*', json], env);
      expect(logs.filter((entry) => entry.level === 'warn')).toEqual([]);
    }
  });
});

describe('mesh-iptables --skip-rule-apply', () => {
  it('builds the rules, applies nothing and says so', async () => {
    const result = await run(['--skip-rule-apply', '--ipv6=false', json]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.summary).toEqual(['mesh-iptables: rules built for IPv4, not applied (--skip-rule-apply)']);
  });
});

describe("Istio's own template runs unchanged", () => {
  const args = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*'];
  it('mesh-iptables istio-iptables -p 15001 … is mesh-iptables -p 15001 … (the pilot-agent subcommand)', async () => {
    const direct = await run([...args, '--dry-run', '--ipv6=true']);
    const asIstio = await run(['istio-iptables', ...args, '--dry-run', '--ipv6=true']);
    expect(direct.code).toBe(0);
    expect(direct.stdout).toContain('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT');
    expect(asIstio).toMatchObject({ code: 0, stdout: direct.stdout });
  });

  it('only as the first argument', async () => {
    const result = await run([...args, 'istio-iptables', '--dry-run', '--ipv6=true']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('command line: invalid value "istio-iptables"');
  });
});

describe('mesh-iptables --version', () => {
  it("prints the package's version and Node's, and runs nothing", async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const result = await run(['--version', '--ipv6=false']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe(`mesh-iptables ${version} (Node.js ${process.version})\n`);
  });
});
